"""Score a model on (blurry, sharp) pairs exactly as the stream would show it: ``deblurrt eval``.

The model runs through the same backends (:func:`~deblurrt.runtime.backends.open_backend`) and the same
frame code as ``deblurrt run`` (:class:`~deblurrt.runtime.prepost.FrameAdapter`: pad to the model's
multiple, run whole or tiled, crop back, round to uint8), and the numbers come from
:mod:`deblurrt.metrics`, the one PSNR/SSIM implementation (8-bit RGB, the benchmarks' protocol). So an
``eval`` number, a ``run`` overlay and a training validation number can be compared.

Data layouts (:func:`find_pairs`), all torch-free (the training datasets need torch; the runtime must not):

- paired folder: ``DIR/blur/<name>`` and ``DIR/sharp/<name>`` matched by file name;
- GoPro: ``DIR/test/<scene>/blur|sharp/*.png`` or ``DIR/<scene>/blur|sharp/*.png`` (names ``scene/file``);
- RealBlur: ``DIR`` with a list file (``--list``) whose lines are ``gt_path blur_path`` relative to ``DIR``;
- blurry only (no reference): ``DIR/blur/<name>`` without ``DIR/sharp``, or a flat folder of images. There
  is no truth to score against, so PSNR/SSIM are ``None`` (null in JSON) and only the no-reference
  sharpness below is reported.

No-reference sharpness (:func:`sharpness`, reported for every layout): on the 8-bit luma (BT.601,
``cv2.COLOR_BGR2GRAY``, 0-255), ``gradient`` = the mean Sobel (3x3) gradient magnitude and
``laplacian_var`` = the variance of the 3x3 Laplacian. Both rise when edges get sharper; both also rise with
noise and ringing, so they say "sharper than the input", not "closer to the truth". Ratios are
output / input per image; the report's means are means of per-image values (ratios included).

Report keys (:func:`summarize`, ``deblurrt eval --json``): ``model``, ``backend``, ``n`` (= ``count``),
``psnr`` / ``ssim`` (means of the OUTPUT vs sharp), ``input_psnr`` / ``input_ssim`` (blurry vs sharp),
``gain_db``, ``reference`` (``"sharp"`` or ``"none"``), ``sharpness`` (``{"input", "output", "ratio"}``
of the gradient measure plus ``"laplacian_var": {"input", "output", "ratio"}``), ``per_image`` (each with
``name``, ``psnr``, ``ssim``, ``input_psnr``, ``input_ssim``, ``gain_db``, ``input_sharpness``,
``output_sharpness``, ``sharpness_ratio``, ``input_laplacian_var``, ``output_laplacian_var``,
``laplacian_var_ratio``, ``latency_ms``), and ``latency_ms``, ``environment``, ``layout``, ``data``,
``precision``, ``input`` / ``output`` (``{"psnr", "ssim"}``, the same means). Without sharp images every
PSNR/SSIM key is null.

Latency is model-only (the backend's inference on the prepared batch, tiles included), after one untimed
warm-up inference, per image.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from deblurrt import __version__
from deblurrt.errors import DeblurrtError
from deblurrt.metrics import psnr, ssim
from deblurrt.outputs import write_bytes_atomic
from deblurrt.pairs import match_folder_names, read_realblur_list
from deblurrt.runtime.backends.base import InputShapeError
from deblurrt.runtime.prepost import FrameAdapter
from deblurrt.runtime.sources import IMAGE_SUFFIXES, normalize_image

__all__ = ["EvalPair", "ImageResult", "evaluate", "find_pairs", "format_table", "match_names", "read_bgr",
           "sharpness", "summarize", "write_png_atomic"]


@dataclass(frozen=True)
class EvalPair:
    """One test image: ``name`` (relative, e.g. ``scene/000001.png``), the blurry file and the sharp one
    (``None`` when the data has no reference: only no-reference sharpness is measured)."""

    name: str
    blur: Path
    sharp: Path | None


@dataclass
class ImageResult:
    """Scores of one image: input = blurry vs sharp, output = deblurred vs sharp (``None`` without a sharp
    image); no-reference sharpness of input and output (:func:`sharpness`); latency in ms."""

    name: str
    width: int
    height: int
    input_psnr: float | None
    input_ssim: float | None
    output_psnr: float | None
    output_ssim: float | None
    latency_ms: float
    input_sharpness: float = float("nan")
    output_sharpness: float = float("nan")
    input_laplacian_var: float = float("nan")
    output_laplacian_var: float = float("nan")

    @property
    def gain_db(self) -> float | None:
        """Output PSNR minus input PSNR (``None`` without a reference)."""
        if self.output_psnr is None or self.input_psnr is None:
            return None
        return self.output_psnr - self.input_psnr

    @property
    def sharpness_ratio(self) -> float:
        """Output / input mean gradient magnitude (> 1: sharper edges than the input)."""
        return _ratio(self.output_sharpness, self.input_sharpness)

    @property
    def laplacian_var_ratio(self) -> float:
        """Output / input variance of the Laplacian."""
        return _ratio(self.output_laplacian_var, self.input_laplacian_var)


def _ratio(numerator: float, denominator: float) -> float:
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator <= 0:
        return float("nan")
    return numerator / denominator


def sharpness(image: np.ndarray) -> dict[str, float]:
    """No-reference sharpness of a BGR uint8 image, on its luma (0-255): ``gradient`` (mean Sobel 3x3
    gradient magnitude) and ``laplacian_var`` (variance of the 3x3 Laplacian). Higher is sharper; noise and
    ringing raise both too."""
    luma = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    luma = luma.astype(np.float32)
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3)
    gradient = float(np.mean(cv2.magnitude(gx, gy), dtype=np.float64))
    laplacian = cv2.Laplacian(luma, cv2.CV_32F, ksize=1)
    return {"gradient": gradient, "laplacian_var": float(laplacian.astype(np.float64).var())}


# ------------------------------------------------------------------------------------------------- data

def _images(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))




def match_names(blur_dir: Path, sharp_dir: Path) -> list[str]:
    """Image names present in both folders, sorted. Raises :class:`DeblurrtError` listing the names found
    on one side only, or when the folders hold no images."""
    return match_folder_names(_images(blur_dir), _images(sharp_dir), blur_dir, sharp_dir)


def _scene_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and (d / "blur").is_dir() and (d / "sharp").is_dir())


def _realblur_pairs(root: Path, list_file: str | os.PathLike) -> list[EvalPair]:
    return [EvalPair(name, blur, sharp) for name, blur, sharp in read_realblur_list(root, list_file)]


def find_pairs(data: str | os.PathLike, list_file: str | os.PathLike | None = None) -> tuple[str, list[EvalPair]]:
    """The test pairs under ``data`` and the layout's name (``paired``, ``gopro``, ``realblur``).

    Raises :class:`DeblurrtError` naming the layouts it looked for when none fits.
    """
    root = Path(data).expanduser()
    if not root.is_dir():
        raise DeblurrtError(f"data folder {root} does not exist. Fix: give --data a folder with blur/ and sharp/, "
                            "a GoPro root (test/<scene>/blur|sharp) or a RealBlur root with --list FILE")
    if list_file is not None:
        return "realblur", _realblur_pairs(root, list_file)
    if (root / "blur").is_dir() and (root / "sharp").is_dir():
        names = match_names(root / "blur", root / "sharp")
        return "paired", [EvalPair(n, root / "blur" / n, root / "sharp" / n) for n in names]
    if (root / "blur").is_dir():  # blurry images without their sharp versions: no-reference only
        names = _images(root / "blur")
        if not names:
            raise DeblurrtError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root / 'blur'}. Fix: put the "
                                "blurry images there (and sharp ones with the same names in sharp/ for PSNR/SSIM)")
        return "blur-only", [EvalPair(n, root / "blur" / n, None) for n in names]
    # GoPro_Large: evaluate the test split when given the root, or the scenes when given a split folder
    scenes = _scene_dirs(root / "test") if (root / "test").is_dir() else []
    scenes = scenes or _scene_dirs(root)
    if scenes:
        pairs = []
        for scene in scenes:
            for name in match_names(scene / "blur", scene / "sharp"):
                pairs.append(EvalPair(f"{scene.name}/{name}", scene / "blur" / name, scene / "sharp" / name))
        return "gopro", pairs
    names = _images(root)
    if names:  # a flat folder of (blurry) images: no-reference only
        return "images", [EvalPair(n, root / n, None) for n in names]
    raise DeblurrtError(
        f"{root} has no evaluation layout: expected {root}/blur + {root}/sharp (paired, same names), "
        f"{root}/test/<scene>/blur|sharp or {root}/<scene>/blur|sharp (GoPro), a RealBlur root with "
        "--list RealBlur_J_test_list.txt, or blurry images alone (in the folder or in blur/; no-reference "
        "sharpness only)")


def read_bgr(path: Path) -> np.ndarray:
    """An image file as BGR uint8 (16-bit files are reduced to 8 bits, grey expanded, alpha dropped)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)  # also non-ASCII paths
    except OSError as error:
        raise DeblurrtError(f"cannot read {path}: {error.strerror or error}") from error
    image = normalize_image(cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None)
    if image is None:
        raise DeblurrtError(f"cannot decode {path}: not an image OpenCV can read (truncated?). Fix: re-export "
                            "or remove the pair")
    return image


def write_png_atomic(path: Path, image: np.ndarray) -> None:
    """Write a BGR uint8 image as PNG via a temporary name and a rename: a reader (or an interrupted run)
    never sees half a file under the real name, and a failed write leaves no temporary file behind."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise DeblurrtError(f"OpenCV could not encode {path} as PNG")
    write_bytes_atomic(path, encoded.tobytes())


def output_name(name: str) -> str:
    """Where an output goes under ``--save``: the same relative name, as PNG (lossless, what is scored)."""
    return str(Path(name).with_suffix(".png"))


# ------------------------------------------------------------------------------------------- evaluation

def _rgb(image: np.ndarray) -> np.ndarray:
    return image[:, :, ::-1]


def evaluate(backend: Any, pairs: Iterable[EvalPair], *, adapter: FrameAdapter | None = None,
             save_dir: str | os.PathLike | None = None,
             on_image: Callable[[ImageResult], None] | None = None) -> list[ImageResult]:
    """Run every pair's blurry image through ``backend`` and score input and output against the sharp one
    (PSNR/SSIM; ``None`` for pairs without a sharp image) and without reference (:func:`sharpness`).

    Args:
        backend: an open :class:`~deblurrt.runtime.backends.Backend`.
        pairs: from :func:`find_pairs`.
        adapter: the frame adapter (default: configured from the backend, as ``deblurrt run`` does).
        save_dir: write each output as PNG under its name (atomically, as soon as it is scored, so an
            interrupted run keeps what it wrote).
        on_image: called after each image (progress).
    """
    adapter = adapter or FrameAdapter.for_backend(backend)
    save = Path(save_dir) if save_dir is not None else None
    results: list[ImageResult] = []
    warmed = False
    for pair in pairs:
        blurry = read_bgr(pair.blur)
        sharp = read_bgr(pair.sharp) if pair.sharp is not None else None
        if sharp is not None and blurry.shape != sharp.shape:
            raise DeblurrtError(f"pair {pair.name!r} differs in size: {pair.blur} is "
                                f"{blurry.shape[1]}x{blurry.shape[0]}, {pair.sharp} is "
                                f"{sharp.shape[1]}x{sharp.shape[0]}. Fix: the images of a pair must be aligned "
                                "and the same size")
        prepared = adapter.prepare(blurry)
        try:
            if not warmed:
                # the first inference allocates and plans (ONNX Runtime, cuDNN, TensorRT contexts): not latency
                adapter.run(backend.infer, prepared)
                warmed = True
            start = time.perf_counter()
            output = adapter.run(backend.infer, prepared)
            latency = (time.perf_counter() - start) * 1e3
        except InputShapeError as error:
            raise DeblurrtError(f"the model cannot take {pair.name} ({blurry.shape[1]}x{blurry.shape[0]}): "
                                f"{error}") from error
        restored = adapter.finish(output, prepared)[0]
        if sharp is not None:
            scores = (psnr(_rgb(blurry), _rgb(sharp)), ssim(_rgb(blurry), _rgb(sharp)),
                      psnr(_rgb(restored), _rgb(sharp)), ssim(_rgb(restored), _rgb(sharp)))
        else:
            scores = (None, None, None, None)
        sharp_in, sharp_out = sharpness(blurry), sharpness(restored)
        result = ImageResult(pair.name, blurry.shape[1], blurry.shape[0], *scores, latency,
                             input_sharpness=sharp_in["gradient"], output_sharpness=sharp_out["gradient"],
                             input_laplacian_var=sharp_in["laplacian_var"],
                             output_laplacian_var=sharp_out["laplacian_var"])
        if save is not None:
            write_png_atomic(save / output_name(pair.name), restored)
        results.append(result)
        if on_image is not None:
            on_image(result)
    return results


def _number(value: float | None, digits: int = 4) -> float | None:
    """JSON has no inf/NaN: identical images (PSNR inf) and missing values are written as null."""
    return round(float(value), digits) if value is not None and math.isfinite(value) else None


def _mean(values: list[float | None]) -> float:
    # a plain mean of per-image values, as benchmark tables (and deblurrt.metrics) average a test set;
    # images without the value (no reference) are left out
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else float("nan")


def _finite_mean(values: list[float]) -> float:
    # sharpness ratios are NaN for a flat input (zero gradient): left out of the mean
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def environment(backend: Any) -> dict[str, Any]:
    """Where the numbers were measured: machine, library versions, the backend's description."""
    libraries = {}
    for name in ("onnxruntime", "torch", "tensorrt"):
        module = sys.modules.get(name)
        if module is not None:
            libraries[name] = str(getattr(module, "__version__", "unknown"))
    return {"deblurrt": __version__, "python": sys.version.split()[0], "numpy": np.__version__,
            "opencv": str(cv2.__version__), "platform": platform.platform(),
            "machine": platform.machine(), "cpu": platform.processor() or None, "cpu_count": os.cpu_count(),
            "libraries": libraries, "backend": backend.describe()}


def summarize(results: list[ImageResult], *, backend: Any, data: str | os.PathLike, layout: str) -> dict[str, Any]:
    """The report ``--json`` writes (keys in the module docstring): model, backend, n, psnr/ssim (output
    means), input_psnr/input_ssim, gain, no-reference sharpness, per-image rows, latency and environment.
    PSNR/SSIM values are null when no image has a sharp reference."""
    in_psnr, out_psnr = _mean([r.input_psnr for r in results]), _mean([r.output_psnr for r in results])
    in_ssim, out_ssim = _mean([r.input_ssim for r in results]), _mean([r.output_ssim for r in results])
    referenced = any(r.output_psnr is not None for r in results)
    latencies = np.array([r.latency_ms for r in results], dtype=np.float64)
    latency = None
    if latencies.size:
        p50, p90 = np.percentile(latencies, [50, 90])
        latency = {"p50": round(float(p50), 3), "p90": round(float(p90), 3),
                   "mean": round(float(latencies.mean()), 3)}
    per_image = []
    for result in results:
        row = asdict(result)
        row.update({key: _number(row[key]) for key in ("input_psnr", "input_ssim", "output_psnr", "output_ssim")})
        row = {"name": row.pop("name"), "psnr": row["output_psnr"], "ssim": row["output_ssim"], **row}
        row["gain_db"] = _number(result.gain_db)
        for key in ("input_sharpness", "output_sharpness", "input_laplacian_var", "output_laplacian_var"):
            row[key] = _number(row[key], 3)
        row["sharpness_ratio"] = _number(result.sharpness_ratio)
        row["laplacian_var_ratio"] = _number(result.laplacian_var_ratio)
        row["latency_ms"] = round(result.latency_ms, 3)
        per_image.append(row)
    info = backend.info
    return {
        "model": str(backend.path),
        "model_name": info.name,
        "backend": backend.name,
        "precision": info.precision,
        "data": str(data),
        "layout": layout,
        "reference": "sharp" if referenced else "none",
        "n": len(results),
        "count": len(results),
        "psnr": _number(out_psnr),
        "ssim": _number(out_ssim),
        "input_psnr": _number(in_psnr),
        "input_ssim": _number(in_ssim),
        "input": {"psnr": _number(in_psnr), "ssim": _number(in_ssim)},
        "output": {"psnr": _number(out_psnr), "ssim": _number(out_ssim)},
        "gain_db": _number(out_psnr - in_psnr),
        "sharpness": {
            "measure": "mean Sobel 3x3 gradient magnitude of the 8-bit luma; ratio = mean of per-image output/input",
            "input": _number(_finite_mean([r.input_sharpness for r in results]), 3),
            "output": _number(_finite_mean([r.output_sharpness for r in results]), 3),
            "ratio": _number(_finite_mean([r.sharpness_ratio for r in results])),
            "laplacian_var": {
                "input": _number(_finite_mean([r.input_laplacian_var for r in results]), 3),
                "output": _number(_finite_mean([r.output_laplacian_var for r in results]), 3),
                "ratio": _number(_finite_mean([r.laplacian_var_ratio for r in results])),
            },
        },
        "latency_ms": latency,
        "per_image": per_image,
        "environment": environment(backend),
    }


def format_table(report: dict[str, Any], max_rows: int = 40) -> str:
    """The report as a text table: per-image rows (all up to ``max_rows``, else the lowest gains), then means.
    Without a reference the columns are the no-reference sharpness of input and output and their ratio."""
    def cell(value: float | None, fmt: str, missing: str = "inf") -> str:
        return missing if value is None else format(value, fmt)

    rows = report["per_image"]
    referenced = report.get("reference", "sharp") != "none"
    order_key = "gain_db" if referenced else "sharpness_ratio"
    shown, note = rows, ""
    if len(rows) > max_rows:
        shown = sorted(rows, key=lambda r: (r[order_key] is None, r[order_key] or 0.0))[:max_rows // 2]
        lowest = "lowest gains" if referenced else "lowest sharpness ratios"
        note = f"({len(shown)} of {len(rows)} images shown: the {lowest}; every row is in --json)"
    width = max([len("mean"), *(len(r["name"]) for r in shown)])
    p50 = report["latency_ms"]["p50"] if report["latency_ms"] else float("nan")
    if referenced:
        header = (f"{'image':<{width}}  {'in PSNR':>8} {'out PSNR':>8} {'gain':>7}  {'in SSIM':>7} "
                  f"{'out SSIM':>8}  {'ms':>7}")
        lines = [header, "-" * len(header)]
        for r in shown:
            lines.append(f"{r['name']:<{width}}  {cell(r['input_psnr'], '8.2f')} {cell(r['output_psnr'], '8.2f')} "
                         f"{cell(r['gain_db'], '+7.2f')}  {cell(r['input_ssim'], '7.4f')} "
                         f"{cell(r['output_ssim'], '8.4f')}  {r['latency_ms']:7.1f}")
        lines.append("-" * len(header))
        lines.append(f"{'mean':<{width}}  {cell(report['input']['psnr'], '8.2f')} "
                     f"{cell(report['output']['psnr'], '8.2f')} {cell(report['gain_db'], '+7.2f')}  "
                     f"{cell(report['input']['ssim'], '7.4f')} {cell(report['output']['ssim'], '8.4f')}  "
                     f"{p50:7.1f} (p50)")
    else:
        header = (f"{'image':<{width}}  {'in grad':>8} {'out grad':>8} {'ratio':>6}  {'in LapVar':>10} "
                  f"{'out LapVar':>10}  {'ms':>7}")
        lines = ["no sharp images: no-reference sharpness only (gradient = mean Sobel magnitude of luma, "
                 "LapVar = variance of the Laplacian; higher is sharper, noise raises both)", header,
                 "-" * len(header)]
        for r in shown:
            lines.append(f"{r['name']:<{width}}  {cell(r['input_sharpness'], '8.2f', '-')} "
                         f"{cell(r['output_sharpness'], '8.2f', '-')} {cell(r['sharpness_ratio'], '6.3f', '-')}  "
                         f"{cell(r['input_laplacian_var'], '10.1f', '-')} "
                         f"{cell(r['output_laplacian_var'], '10.1f', '-')}  {r['latency_ms']:7.1f}")
        lines.append("-" * len(header))
        sharp = report["sharpness"]
        lines.append(f"{'mean':<{width}}  {cell(sharp['input'], '8.2f', '-')} {cell(sharp['output'], '8.2f', '-')} "
                     f"{cell(sharp['ratio'], '6.3f', '-')}  {cell(sharp['laplacian_var']['input'], '10.1f', '-')} "
                     f"{cell(sharp['laplacian_var']['output'], '10.1f', '-')}  {p50:7.1f} (p50)")
    if note:
        lines.append(note)
    return "\n".join(lines)
