"""The blur-only validation: does a model remove motion blur, and does it leave sharp frames alone?

Sets, all 480x640 crops of held-out photos (``configs/splits/val_photos.txt``; never trained on), blur ONLY
(no noise, JPEG, highlight boost or foreground layer: a set that carries them rewards denoising and tone
mapping instead of deblurring):

==================  ==========================================================================
``warp_mild``        the training recipe's camera shake (:mod:`deblurrt.synthesis`), 8-20 px streaks
``warp_moderate``    the same, 20-40 px
``warp_severe``      the same, 40-80 px
``kernel_moderate``  the independent kernel recipe (:mod:`deblurrt.kernels`), 20-40 px, light noise
``kernel_severe``    the same, 40-80 px
``sharp``            do no harm: a sharp photo in, the same photo expected out
``soft``             do no harm on soft content: the photo partly out of focus (a disk defocus of 2-6 px
                     radius over a smooth random depth mask, in linear light), the same expected out
==================  ==========================================================================

The ``soft`` set exists because crisp photos are the easy case of do-no-harm: a soft edge may be defocus or
motion, and a model that sharpens every soft edge passes ``sharp`` and still damages shallow-focus footage.

Streak lengths are absolute pixels at 480x640. Both recipes put the sharp target at the blur's centre of
mass. Every set is a pure function of (photo list, seed, count): the same pairs on every machine (to the
last bit of OpenCV's SIMD paths).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deblurrt.errors import DeblurrtError

VAL_SIZE = (480, 640)  # height, width


@dataclass(frozen=True)
class ValSet:
    """One validation set: its recipe and streak range in absolute pixels."""

    name: str
    recipe: str  # warp | kernel | sharp | soft
    #: streak lengths in pixels (warp, kernel); the defocus disk's radius range (soft)
    length_px: tuple[float, float]


VAL_SETS: tuple[ValSet, ...] = (
    ValSet("warp_mild", "warp", (8.0, 20.0)),
    ValSet("warp_moderate", "warp", (20.0, 40.0)),
    ValSet("warp_severe", "warp", (40.0, 80.0)),
    ValSet("kernel_moderate", "kernel", (20.0, 40.0)),
    ValSet("kernel_severe", "kernel", (40.0, 80.0)),
    ValSet("sharp", "sharp", (0.0, 0.0)),
    # last, so that the seeds of the earlier sets (their index here) stay what they were
    ValSet("soft", "soft", (2.0, 6.0)),
)
#: the do-no-harm sets (the input is the expected output) and the key prefix of their figures in verdicts
#: and headlines (``no_harm_psnr`` / ``no_harm_shift`` for sharp, ``soft_psnr`` / ``soft_shift`` for soft)
NO_HARM_KEYS = {"sharp": "no_harm", "soft": "soft"}
NO_HARM_SETS = tuple(NO_HARM_KEYS)
SET_NAMES = tuple(s.name for s in VAL_SETS)


def default_split_file() -> Path:
    """The repository's list of held-out validation photos."""
    return Path(__file__).resolve().parent.parent / "configs" / "splits" / "val_photos.txt"


def read_photo_list(list_file: str | os.PathLike, data_root: str | os.PathLike) -> list[Path]:
    """Photo paths from a list file (one path per line relative to ``data_root``; ``#`` comments)."""
    list_file, data_root = Path(list_file), Path(data_root)
    if not list_file.is_file():
        raise DeblurrtError(f"photo list {list_file} not found. Fix: give the split file, e.g. "
                            f"{default_split_file()}")
    names = [line.strip() for line in list_file.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    paths = [data_root / name for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DeblurrtError(f"{len(missing)} photo(s) of {list_file} not found under {data_root}, e.g. "
                            f"{missing[0]}. Fix: point --data-root at the folder that holds them")
    return paths


def _get_set(name: str) -> ValSet:
    for val_set in VAL_SETS:
        if val_set.name == name:
            return val_set
    raise DeblurrtError(f"unknown validation set {name!r}. Fix: use one of {', '.join(SET_NAMES)}")


def pair_region(photo: np.ndarray, val_set: ValSet, seed: Sequence[int],
                size: tuple[int, int] = VAL_SIZE) -> tuple[np.ndarray, int, int]:
    """Where a pair of :func:`make_pair` comes from: ``(region, margin, blur_seed)``, the crop of ``size`` plus a
    margin of the set's longest streak on every side (less where the photo is too small), and the seed of its
    blur. A photo narrower than the crop is turned a quarter first."""
    height, width = size
    rng = np.random.default_rng(list(seed))
    margin = int(np.ceil(val_set.length_px[1])) + 2
    photo_h, photo_w = photo.shape[:2]
    if photo_h < height or photo_w < width:
        photo = np.ascontiguousarray(np.rot90(photo))
        photo_h, photo_w = photo.shape[:2]
    margin = max(min(margin, (photo_h - height) // 2, (photo_w - width) // 2), 0)
    outer_h, outer_w = height + 2 * margin, width + 2 * margin
    if photo_h < outer_h or photo_w < outer_w:
        raise DeblurrtError(f"a {photo_w}x{photo_h} photo is smaller than the {width}x{height} validation crop")
    y = int(rng.integers(0, photo_h - outer_h + 1))
    x = int(rng.integers(0, photo_w - outer_w + 1))
    return photo[y:y + outer_h, x:x + outer_w], margin, int(rng.integers(0, 2**62))


def make_pair(photo: np.ndarray, val_set: ValSet, seed: Sequence[int],
              size: tuple[int, int] = VAL_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One (blurry, sharp) pair of a set from a photo (uint8 RGB, already capped at 1280 px): a centre-
    weighted crop of ``size`` plus the margin of the longest streak, then the set's recipe."""
    from deblurrt.kernels import KernelRecipe, synthesize_kernel_pair
    from deblurrt.synthesis import BlurConfig, synthesize_pair

    height, width = size
    region, margin, blur_seed = pair_region(photo, val_set, seed, size)
    if val_set.recipe == "sharp":
        sharp = region[margin:margin + height, margin:margin + width].astype(np.float32) / 255.0
        return sharp.copy(), sharp
    if val_set.recipe == "soft":
        from deblurrt.synthesis import defocus, linear_to_srgb, srgb_to_linear

        linear = srgb_to_linear(region.astype(np.float32) / np.float32(255.0))
        soft = linear_to_srgb(defocus(linear, np.random.default_rng(blur_seed), val_set.length_px))
        soft = np.clip(soft[margin:margin + height, margin:margin + width], 0.0, 1.0).astype(np.float32)
        return soft.copy(), soft
    if val_set.recipe == "warp":
        config = BlurConfig.clean(val_set.length_px, reference_size=None, align="centroid")
        return synthesize_pair(region, blur_seed, config, out_size=size)
    recipe = KernelRecipe(length_px=val_set.length_px, noise_rms=(0.0, 1.0))
    blurry, sharp, _ = synthesize_kernel_pair(region, blur_seed, recipe, out_size=size)
    return blurry, sharp


def build_sets(out_dir: str | os.PathLike, photos: Sequence[Path], *, count: int = 24, seed: int = 0,
               sets: Sequence[str] = SET_NAMES, progress: bool = True) -> dict[str, Path]:
    """Write each set as a paired folder ``out_dir/<set>/{blur,sharp}/NNN_<photo>.png`` (8-bit PNG, as a
    camera delivers frames) with a ``set.json`` record. Existing complete sets are reused, not rebuilt.

    Image ``i`` of a set comes from photo ``i mod len(photos)``; seeds are ``(seed, set index, i)``.
    """
    from deblurrt.train.data.photos import PhotoPool, save_png

    if count <= 0:
        raise DeblurrtError(f"count must be positive, got {count}")
    out_dir = Path(out_dir)
    chosen = [_get_set(name) for name in sets]
    record_base = {"photos": [str(p.name) for p in photos], "count": count, "seed": seed,
                   "size_hw": list(VAL_SIZE), "version": 1}
    todo = []
    for val_set in chosen:
        folder = out_dir / val_set.name
        record = {**record_base, "set": val_set.name, "recipe": val_set.recipe, "length_px": list(val_set.length_px)}
        marker = folder / "set.json"
        existing = json.loads(marker.read_text()) if marker.is_file() else None
        if existing == record:
            continue
        if existing is not None and existing.get("seed", 0) != seed:
            # a fresh draw must never overwrite the reference sets that every recorded figure was measured on
            raise DeblurrtError(f"{folder} holds the sets of seed {existing.get('seed', 0)}, not {seed}: give a "
                                f"draw of another seed its own folder. Fix: --sets {out_dir}_seed{seed}")
        todo.append((val_set, folder, record))
    if todo:
        pool = PhotoPool(list(photos), max_side=1280, cache=True)
        iterator = [(v, f, r, i) for v, f, r in todo for i in range(count)]
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, desc="validation sets", unit="pair")
        for val_set, folder, record, i in iterator:
            (folder / "blur").mkdir(parents=True, exist_ok=True)
            (folder / "sharp").mkdir(parents=True, exist_ok=True)
            photo_index = i % len(photos)
            set_index = SET_NAMES.index(val_set.name)
            blurry, sharp = make_pair(pool.image(photo_index), val_set, (seed, set_index, i))
            name = f"{i:03d}_{Path(pool.names[photo_index]).stem}.png"
            save_png(folder / "blur" / name, blurry)
            save_png(folder / "sharp" / name, sharp)
            if i == count - 1:
                (folder / "set.json").write_text(json.dumps(record, indent=1))
    return {v.name: out_dir / v.name for v in chosen}


# ------------------------------------------------------------------------------------------- scoring

#: the quality issue's targets per model family: (moderate dB, severe dB) gains on BOTH recipes; do-no-harm
TARGETS: dict[str, tuple[float, float]] = {"small": (3.0, 2.0), "nano": (1.5, 1.0)}
NO_HARM_PSNR = 38.0
NO_HARM_SHIFT = 1.0


def cc0_sharp_crops(height: int = 192, width: int = 256) -> list[np.ndarray]:
    """Centre crops (BGR uint8) of scikit-image's CC0 astronaut, cat and coffee photos: sharp photos that may be
    published and tested against anywhere (the cat is soft-focus, the hard case for do-no-harm). Needs
    scikit-image (installed with the test extras)."""
    try:
        from skimage import data as skimage_data
    except ImportError as error:
        raise DeblurrtError("the CC0 photos need scikit-image. Fix: pip install scikit-image") from error
    crops = []
    for image in (skimage_data.astronaut(), skimage_data.chelsea(), skimage_data.coffee()):
        h, w = image.shape[:2]
        top, left = (h - height) // 2, (w - width) // 2
        crops.append(np.ascontiguousarray(image[top:top + height, left:left + width, ::-1]))  # RGB -> BGR
    return crops


def unsharp_mask(bgr: np.ndarray, sigma: float = 2.0, amount: float = 1.0) -> np.ndarray:
    """The classic baseline a deblurring model must beat: ``image + amount * (image - gaussian(image))``."""
    import cv2

    image = bgr.astype(np.float32)
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return np.clip(np.rint(image + amount * (image - blurred)), 0, 255).astype(np.uint8)


def architecture_of(backend, fallback: str) -> str:
    """The registry name a model file carries (``unet_nano_prior``), whatever the file is called; ``fallback``
    where the file names none."""
    name = backend.info.name
    return name if name and name != "unknown" else fallback


class Restorer:
    """Something that maps a blurry BGR uint8 frame to a restored one: a model through the runtime's backends
    and frame code (exactly what ``deblurrt run`` shows), or a baseline (``identity``, ``unsharp``)."""

    BASELINES = ("identity", "unsharp")

    def __init__(self, model: str, backend: str | None = None, threads: int | None = None,
                 label: str | None = None):
        self.name = model
        self._backend = None
        if model in self.BASELINES:
            self.label = self.architecture = model
            return
        from deblurrt.commands.run import lookup_model
        from deblurrt.runtime.backends import normalize_backend, open_backend
        from deblurrt.runtime.prepost import FrameAdapter

        path = lookup_model(model)
        options = {"threads": threads} if threads else {}
        self._backend = open_backend(path, normalize_backend(backend) if backend else None, **options)
        self._adapter = FrameAdapter.for_backend(self._backend)
        self.label = label or Path(path).name
        self.architecture = architecture_of(self._backend, Path(path).name)

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        if self._backend is None:
            return bgr.copy() if self.name == "identity" else unsharp_mask(bgr)
        prepared = self._adapter.prepare(bgr)
        return self._adapter.finish(self._adapter.run(self._backend.infer, prepared), prepared)[0]

    def close(self) -> None:
        """Release the backend."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None


def distinct_labels(models: Sequence[str]) -> list[str]:
    """Table labels for models given as names or paths: the file name, with as many parent folders as it takes
    to tell apart files of the same name (``A/last.safetensors``, ``B/last.safetensors``); pictures are named
    after the labels, so equal labels would also overwrite each other's pictures."""
    parts = [Path(m).parts or (m,) for m in models]
    depth = [1] * len(models)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depth, strict=True)]
        clashing = [i for i, label in enumerate(labels) if labels.count(label) > 1 and depth[i] < len(parts[i])]
        if not clashing:
            return labels
        for i in clashing:
            depth[i] += 1


def _summary(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": round(float(array.mean()), 3), "median": round(float(np.median(array)), 3),
            "min": round(float(array.min()), 3), "max": round(float(array.max()), 3)}


def tone_matched(image: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``image`` (uint8, HxWx3) offset per channel so that its mean equals ``target``'s: what is left of its error
    once a global brightness / colour shift is forgiven."""
    offset = target.reshape(-1, 3).mean(axis=0) - image.reshape(-1, 3).mean(axis=0)
    return np.clip(np.rint(image.astype(np.float64) + offset), 0, 255).astype(np.uint8)


def score_sets(restorer: Restorer, set_dirs: dict[str, Path], *, limit: int | None = None,
               keep_outputs: bool = False, progress: bool = True) -> dict:
    """Score one restorer on the sets: per image PSNR in/out, gain, SSIM out; on the do-no-harm set PSNR of
    output vs input and the mean brightness shift in 8-bit levels. Returns a JSON-ready report (and the
    outputs of the best and worst image per set under ``"_pictures"`` when ``keep_outputs``)."""
    import cv2

    from deblurrt.metrics import psnr, ssim

    report: dict = {"model": restorer.name, "label": restorer.label, "architecture": restorer.architecture,
                    "sets": {}}
    pictures: dict = {}
    for set_name, folder in set_dirs.items():
        names = sorted(p.name for p in (folder / "blur").iterdir() if p.suffix == ".png")[:limit]
        rows = []
        outputs = {}
        iterator = names
        if progress:
            from tqdm import tqdm

            iterator = tqdm(names, desc=f"{restorer.label} {set_name}", unit="img", leave=False)
        for name in iterator:
            blurry = cv2.imread(str(folder / "blur" / name), cv2.IMREAD_COLOR)
            sharp = cv2.imread(str(folder / "sharp" / name), cv2.IMREAD_COLOR)
            restored = restorer(blurry)
            rgb = (blurry[..., ::-1], restored[..., ::-1], sharp[..., ::-1])
            row = {"name": name, "output_psnr": round(min(psnr(rgb[1], rgb[2]), 100.0), 3),
                   "output_ssim": round(ssim(rgb[1], rgb[2]), 4)}
            if set_name in NO_HARM_SETS or np.array_equal(blurry, sharp):
                row["shift_levels"] = round(float(restored.astype(np.float64).mean() - blurry.mean()), 3)
            else:
                row["input_psnr"] = round(psnr(rgb[0], rgb[2]), 3)
                row["gain_db"] = round(row["output_psnr"] - row["input_psnr"], 3)
                # blur in linear light brightens a frame (the targets are 4-8 levels darker than their blurry
                # inputs on average), so a model gains a little by darkening alone: this gain forgives both
                # input and output any global per-channel shift, leaving what sharpening bought
                row["gain_beyond_tone_db"] = round(
                    min(psnr(tone_matched(rgb[1], rgb[2]), rgb[2]), 100.0)
                    - min(psnr(tone_matched(rgb[0], rgb[2]), rgb[2]), 100.0), 3)
            rows.append(row)
            if keep_outputs:
                outputs[name] = restored
        entry: dict = {"n": len(rows), "output_psnr": _summary([r["output_psnr"] for r in rows])}
        if rows and "gain_db" in rows[0]:
            entry["input_psnr"] = _summary([r["input_psnr"] for r in rows])
            entry["gain_db"] = _summary([r["gain_db"] for r in rows])
            entry["gain_beyond_tone_db"] = _summary([r["gain_beyond_tone_db"] for r in rows])
            key = "gain_db"
        else:
            entry["shift_levels"] = _summary([r["shift_levels"] for r in rows])
            entry["abs_shift_max"] = round(max(abs(r["shift_levels"]) for r in rows), 3)
            key = "output_psnr"
        entry["per_image"] = rows
        report["sets"][set_name] = entry
        if keep_outputs and rows:
            ordered = sorted(rows, key=lambda r: r[key])
            pictures[set_name] = {"worst": (ordered[0]["name"], outputs[ordered[0]["name"]]),
                                  "best": (ordered[-1]["name"], outputs[ordered[-1]["name"]])}
    if keep_outputs:
        report["_pictures"] = pictures
    return report


def verdict(report: dict, family: str | None) -> dict[str, bool | None]:
    """Which targets a report meets: do-no-harm (PSNR and shift) and, for a known family (``small``,
    ``nano``), moderate and severe gains on both recipes (means)."""
    sets = report["sets"]
    result: dict[str, bool | None] = {}
    for name, key in NO_HARM_KEYS.items():
        if name in sets:
            result[f"{key}_psnr"] = sets[name]["output_psnr"]["mean"] >= NO_HARM_PSNR
            result[f"{key}_shift"] = abs(sets[name]["shift_levels"]["mean"]) <= NO_HARM_SHIFT
    if family in TARGETS:
        moderate, severe = TARGETS[family]
        for recipe in ("warp", "kernel"):
            for level, target in (("moderate", moderate), ("severe", severe)):
                name = f"{recipe}_{level}"
                if name in sets:
                    result[f"{name}>={target:g}dB"] = sets[name]["gain_db"]["mean"] >= target
    return result


def family_of(report: dict) -> str | None:
    """``small`` / ``nano`` for a report's targets, from the registry name its model file carries (a
    checkpoint called ``best.safetensors`` is still judged as the nano it is), else from the file name."""
    name = report.get("architecture") or report["label"]
    for family in TARGETS:
        if f"_{family}" in name:
            return family
    return None


def headline(report: dict) -> dict:
    """One model's figures in one line: mean over the blur sets of the mean gain and output PSNR, the image
    count, and do-no-harm PSNR / shift (the keys scripts read: ``gain_db``, ``psnr``, ``n``, ...)."""
    blur = [e for name, e in report["sets"].items() if "gain_db" in e]
    line: dict = {"n": sum(e["n"] for e in report["sets"].values())}
    if blur:
        line["gain_db"] = round(float(np.mean([e["gain_db"]["mean"] for e in blur])), 3)
        if all("gain_beyond_tone_db" in e for e in blur):  # reports written before 2026-11-30 lack it
            line["gain_beyond_tone_db"] = round(float(np.mean([e["gain_beyond_tone_db"]["mean"] for e in blur])), 3)
        line["psnr"] = round(float(np.mean([e["output_psnr"]["mean"] for e in blur])), 3)
        line["input_psnr"] = round(float(np.mean([e["input_psnr"]["mean"] for e in blur])), 3)
    for name, key in NO_HARM_KEYS.items():
        if name in report["sets"]:
            line[f"{key}_psnr"] = report["sets"][name]["output_psnr"]["mean"]
            line[f"{key}_shift"] = report["sets"][name]["shift_levels"]["mean"]
    return line


def compare_per_image(reference: dict, other: dict) -> dict[str, dict[str, int]]:
    """Per set, on how many images ``other`` does better than ``reference`` (higher gain; on the do-no-harm sets
    higher PSNR of output vs input), worse, or the same to the thousandth of a dB; images are matched by name,
    so both reports must come from the same sets. A mean can sit on a few images: this says how many."""
    result: dict[str, dict[str, int]] = {}
    for name, entry in other["sets"].items():
        theirs = reference["sets"].get(name)
        if theirs is None:
            continue
        key = "output_psnr" if name in NO_HARM_SETS or "gain_db" not in entry else "gain_db"
        ours = {row["name"]: row[key] for row in theirs["per_image"]}
        counts = {"better": 0, "worse": 0, "same": 0}
        for row in entry["per_image"]:
            if row["name"] not in ours:
                raise ValueError(f"set {name}: image {row['name']} is not in {reference['label']}'s report: "
                                 "compare reports of the same sets")
            delta = row[key] - ours[row["name"]]
            counts["better" if delta > 5e-4 else "worse" if delta < -5e-4 else "same"] += 1
        result[name] = counts
    return result


def ship_rule(candidate: dict, incumbent: dict) -> dict:
    """The project's rule for replacing a model in service (MODELS.md): ``candidate`` must be better than
    ``incumbent`` on every blur set's mean gain, and on each do-no-harm set both in mean PSNR and in the size of
    the mean brightness shift; every set the incumbent was measured on must be measured for the candidate too.
    Returns ``{"passes": bool, "not_better": [one line per failed comparison]}``. Medians and per-image counts
    are left to the reader on purpose: a mean that falls on a few photos is a real loss there."""
    not_better = []
    for name, theirs in incumbent["sets"].items():
        ours = candidate["sets"].get(name)
        if ours is None:
            not_better.append(f"{name}: not measured")
        elif name in NO_HARM_SETS:
            psnr, their_psnr = ours["output_psnr"]["mean"], theirs["output_psnr"]["mean"]
            if psnr <= their_psnr:
                not_better.append(f"{name} PSNR {psnr:.2f} vs {their_psnr:.2f} dB")
            shift, their_shift = abs(ours["shift_levels"]["mean"]), abs(theirs["shift_levels"]["mean"])
            if shift > their_shift:
                # no "|x|" here: the line goes into a Markdown table cell
                not_better.append(f"{name} shift of {shift:.3f} vs {their_shift:.3f} levels (size)")
        else:
            gain, their_gain = ours["gain_db"]["mean"], theirs["gain_db"]["mean"]
            if gain <= their_gain:
                not_better.append(f"{name} {gain:+.3f} vs {their_gain:+.3f} dB")
    return {"passes": not not_better, "not_better": not_better}


def format_ship_rule(reports: list[dict], incumbent: dict) -> str:
    """A Markdown table: for every report but ``incumbent``, whether :func:`ship_rule` lets it replace it."""
    lines = [f"Ship rule against {incumbent['label']} (better on every blur set's mean gain, and on sharp and soft "
             "in mean PSNR and in the size of the mean brightness shift):", "",
             "| model | replaces it? | not better on |", "|---|---|---|"]
    for report in reports:
        if report is incumbent:
            continue
        result = ship_rule(report, incumbent)
        lines.append(f"| {report['label']} | {'yes' if result['passes'] else 'no'} | "
                     f"{'; '.join(result['not_better']) or '-'} |")
    return "\n".join(lines) + "\n"


def format_markdown(reports: list[dict]) -> str:
    """One table: rows = models, columns = sets (mean / median gain in dB; do-no-harm PSNR, mean shift and, in
    brackets, the largest shift of any one image, in levels)."""
    set_names = [s for s in SET_NAMES if any(s in r["sets"] for r in reports)]
    header = ["model"] + [s if s not in NO_HARM_SETS else f"{s}: PSNR / shift (worst)" for s in set_names] + \
        ["targets"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for report in reports:
        cells = [report["label"]]
        for name in set_names:
            entry = report["sets"].get(name)
            if entry is None:
                cells.append("")
            elif name in NO_HARM_SETS:
                # the worst photo's shift beside the mean: a mean can hide one frame coming back much darker
                worst = entry.get("abs_shift_max")
                cells.append(f"{entry['output_psnr']['mean']:.1f} / {entry['shift_levels']['mean']:+.2f}"
                             + (f" ({worst:.1f})" if worst is not None else ""))
            else:
                cells.append(f"{entry['gain_db']['mean']:+.2f} / {entry['gain_db']['median']:+.2f}")
        checks = verdict(report, family_of(report))
        missed = [k for k, ok in checks.items() if ok is False]
        cells.append("all met" if checks and not missed else ("missed: " + ", ".join(missed) if missed else "-"))
        lines.append("| " + " | ".join(cells) + " |")
    blur_sets = [s for s in set_names if s not in NO_HARM_SETS]
    if any("gain_beyond_tone_db" in r["sets"].get(s, {}) for r in reports for s in blur_sets):
        lines += ["", "Gain beyond a global tone shift (input and output each offset per channel to the target's "
                  "mean; what sharpening bought), mean / median dB:", "",
                  "| model | " + " | ".join(blur_sets) + " |", "|" + "---|" * (len(blur_sets) + 1)]
        for report in reports:
            cells = [report["label"]]
            for name in blur_sets:
                entry = report["sets"].get(name, {}).get("gain_beyond_tone_db")
                cells.append(f"{entry['mean']:+.2f} / {entry['median']:+.2f}" if entry else "")
            lines.append("| " + " | ".join(cells) + " |")
    if len(reports) > 1:
        first = reports[0]
        lines += ["", f"Per image against {first['label']} (images better / worse, same in brackets; blur sets by "
                  "gain, do-no-harm sets by PSNR):", "",
                  "| model | " + " | ".join(set_names) + " |", "|" + "---|" * (len(set_names) + 1)]
        for report in reports[1:]:
            counts = compare_per_image(first, report)
            cells = [report["label"]]
            for name in set_names:
                c = counts.get(name)
                cells.append(f"{c['better']} / {c['worse']}" + (f" ({c['same']})" if c["same"] else "") if c else "")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_pictures(report: dict, set_dirs: dict[str, Path], out_dir: Path, crop: int = 240) -> list[Path]:
    """Per set, the worst and best image (by gain; do-no-harm by PSNR): blurry | output | sharp, a centre
    crop at full resolution, labelled. Returns the written PNG paths."""
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for set_name, cases in report.get("_pictures", {}).items():
        strips = []
        for which, (name, output) in cases.items():
            blurry = cv2.imread(str(set_dirs[set_name] / "blur" / name), cv2.IMREAD_COLOR)
            sharp = cv2.imread(str(set_dirs[set_name] / "sharp" / name), cv2.IMREAD_COLOR)
            height, width = blurry.shape[:2]
            y, x = (height - crop) // 2, (width - crop) // 2
            tiles = [image[y:y + crop, x:x + crop].copy() for image in (blurry, output, sharp)]
            row = next(r for r in report["sets"][set_name]["per_image"] if r["name"] == name)
            score = f"{row['gain_db']:+.2f} dB" if "gain_db" in row else f"{row['output_psnr']:.1f} dB"
            for tile, text in zip(tiles, (f"{which} {name[:14]}", f"output {score}", "sharp"), strict=True):
                cv2.putText(tile, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
                cv2.putText(tile, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            strips.append(np.hstack(tiles))
        path = out_dir / f"{Path(report['label'].replace('/', '_')).stem}_{set_name}.png"
        cv2.imwrite(str(path), np.vstack(strips))
        written.append(path)
    return written
