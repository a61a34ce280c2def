"""``--target-fps N``: pick the best model and processing scale that sustain N frames per second here.

Reduced-resolution processing (:class:`ScaledAdapter`): the frame is reduced (INTER_AREA) to ``scale`` of its
size, the model runs on that, and the model's RESIDUAL (output - input, in 8-bit units) is upscaled (bilinear)
and added to the FULL-resolution input. The frame keeps all of its own detail and only the correction is
computed coarsely (a blurry upscale of the output would lose the detail the model was meant to restore). An
identity model gives the input back bit for bit. Bilinear rather than bicubic: the same gain on the blur sets
and 1.2-1.3 dB better on the do-no-harm set at scale 0.5 (bicubic overshoot amplifies the residual's noise);
a plain upscale of the reduced OUTPUT gains as much on blur but costs 2-3 dB on sharp frames (README).

Ranking (:func:`load_validation_table`): ``weights/validation.json`` holds each shipped model's blur-only
validation gain (``deblurrt validate``, mean over the blur sets) per processing scale; it is written by
``scripts/validation_table.py``. Its format (version 1)::

    {"version": 1,
     "metric": "mean gain in dB over the blurry input, mean of the blur sets' means",
     "sets": ["warp_mild", ...], "limit": null, "date": "2026-11-29",
     "models": {"unet_nano_prior": {"file": "unet_nano_prior.onnx", "sha256": "<hex of the file>",
                                    "gain_db": {"1": 1.31, "0.75": 1.02, "0.5": 0.61, "0.25": 0.2},
                                    "no_harm_psnr": 44.1, "sets": {"1": {"warp_mild": 1.9, ...}}}}}

Only ``models.<name>.gain_db`` (scale -> dB, scale written as in ``str(float)`` or ``"1"``) is required; the
rest documents the measurement. A model file whose sha256 differs from the table's gets a warning (its figures
are stale) but keeps them. A scale missing from the table is estimated as ``gain at 1 x scale`` and marked so.
Candidates are ranked by gain in steps of :data:`GAIN_STEP_DB` (gains in one step count as equal: the larger
scale, then the model listed first, wins), so measurement noise does not trade resolution for nothing.

Calibration (:func:`choose`): candidates (model x scale) in order of validation gain, best first; each is
timed on a frame of the input's size for about half a second, doing what the pipeline does per frame (reduce,
pad, infer, crop, residual upscale: the sequential time; the pipeline overlaps capture and writing in their
own threads). The first candidate whose frames per second reach the target is the choice, so the best one
that sustains N. If none does, the fastest is chosen and the message says so, with its fps. Measurements are
cached (:class:`CalibrationCache`) per (machine, backend and its options, model file sha256, input size,
scale), so the next start with the same setup measures nothing; a different target reuses them too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError
from deblurrt.runtime.prepost import FrameAdapter, Prepared

log = logging.getLogger("deblurrt.runtime.adaptive")

__all__ = ["SCALES", "CalibrationCache", "Candidate", "Choice", "Measurement", "ModelQuality", "ScaledAdapter",
           "ScaledPrepared", "candidates_for", "choose", "file_sha256", "format_table", "load_validation_table",
           "machine_id", "measure_frames", "processing_size", "upscale_residual"]

#: processing scales tried by --target-fps, largest first
SCALES: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
VALIDATION_FILE = "validation.json"
#: validation gains are compared in steps of this many dB (the noise of the blur-set means)
GAIN_STEP_DB = 0.05
CACHE_FILE = "target_fps.json"
CACHE_VERSION = 1


# ------------------------------------------------------------------------------------ scaled processing

def processing_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The (W, H) a ``width x height`` frame is processed at for ``scale`` (rounded, at least 8x8)."""
    if not 0.0 < scale <= 1.0:
        raise DeblurrtError(f"a processing scale must be in (0, 1], received {scale}. Fix: e.g. --scale 0.5")
    return max(8, round(width * scale)), max(8, round(height * scale))


@dataclass(frozen=True)
class ScaledPrepared(Prepared):
    """A :class:`Prepared` batch of the REDUCED frame, with the full-resolution frame kept for the residual."""

    full: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]


def upscale_residual(output: np.ndarray, batch: np.ndarray, small_hw: tuple[int, int], full: np.ndarray, *,
                     value_range: tuple[float, float] = (0.0, 1.0), color: str = "RGB",
                     interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``full`` (BGR uint8) plus the model's residual ``output - batch`` (one NCHW item each, model range),
    cropped to ``small_hw``, converted to 8-bit units and BGR, and resized to ``full``'s size. Rounded half to
    even and clipped like :func:`~deblurrt.runtime.prepost.batch_to_frames`; a zero residual returns ``full``
    exactly."""
    height, width = small_hw
    lo, hi = value_range
    residual = (output[0, :, :height, :width].astype(np.float32) - batch[0, :, :height, :width].astype(np.float32))
    residual *= np.float32(255.0 / (hi - lo))
    order = (2, 1, 0) if color == "RGB" else (0, 1, 2)
    residual = np.ascontiguousarray(residual[list(order)].transpose(1, 2, 0))
    full_h, full_w = full.shape[:2]
    if (height, width) != (full_h, full_w):
        residual = cv2.resize(residual, (full_w, full_h), interpolation=interpolation)
    work = full.astype(np.float32)
    work += residual
    np.clip(work, 0.0, 255.0, out=work)
    np.rint(work, out=work)
    return work.astype(np.uint8)


class ScaledAdapter:
    """A :class:`FrameAdapter` that processes frames at ``scale`` of their size and adds the upscaled residual
    to the full-resolution frame (see the module docstring). Same interface: ``prepare``, ``run``, ``finish``.

    Args:
        inner: the model's adapter (pad multiple, dtype, value range, tiling).
        scale: in (0, 1].
        interpolation: how the residual is upscaled (``cv2.INTER_LINEAR`` by default; scripts/validation_table.py
            --compare-upscale measures the alternatives).
    """

    def __init__(self, inner: FrameAdapter, scale: float, interpolation: int = cv2.INTER_LINEAR):
        processing_size(64, 64, scale)  # validates the scale
        self.inner, self.scale, self.interpolation = inner, float(scale), interpolation

    def prepare(self, frames: Sequence[np.ndarray] | np.ndarray) -> ScaledPrepared:
        """Reduce one BGR uint8 frame and make the model batch of it."""
        frame = frames if isinstance(frames, np.ndarray) and frames.ndim == 3 else frames[0]
        if not isinstance(frames, np.ndarray) and len(frames) != 1:
            raise DeblurrtError(f"scaled processing takes one frame at a time, received {len(frames)}")
        height, width = frame.shape[:2]
        small_w, small_h = processing_size(width, height, self.scale)
        small = frame if (small_w, small_h) == (width, height) else cv2.resize(
            frame, (small_w, small_h), interpolation=cv2.INTER_AREA)
        inner = self.inner.prepare(small)
        return ScaledPrepared(inner.batch, inner.frame_size, inner.tiled, full=frame)

    def run(self, infer: Callable[[np.ndarray], np.ndarray], prepared: Prepared) -> np.ndarray:
        """Run the model on the reduced batch (whole or tiled, as the inner adapter decides)."""
        return self.inner.run(infer, prepared)

    def finish(self, output: np.ndarray, prepared: ScaledPrepared) -> list[np.ndarray]:
        """The full-resolution frame plus the upscaled residual (BGR uint8)."""
        return [upscale_residual(output, prepared.batch, prepared.frame_size, prepared.full,
                                 value_range=self.inner.value_range, color=self.inner.color,
                                 interpolation=self.interpolation)]

    def __call__(self, infer: Callable[[np.ndarray], np.ndarray], frame: np.ndarray) -> np.ndarray:
        """One frame through ``infer``: prepare, run, finish."""
        prepared = self.prepare(frame)
        return self.finish(self.run(infer, prepared), prepared)[0]


def adapter_for(backend: Any, scale: float = 1.0, **options: Any) -> FrameAdapter | ScaledAdapter:
    """The backend's :class:`FrameAdapter`, wrapped in a :class:`ScaledAdapter` when ``scale < 1``."""
    inner = FrameAdapter.for_backend(backend, **options)
    return inner if scale >= 1.0 else ScaledAdapter(inner, scale)


# -------------------------------------------------------------------------------------------- ranking

@dataclass(frozen=True)
class ModelQuality:
    """One model's row of ``weights/validation.json``: gain (dB) per processing scale."""

    name: str
    gain_db: dict[float, float]
    file: str | None = None
    sha256: str | None = None


def load_validation_table(path: str | os.PathLike) -> dict[str, ModelQuality]:
    """Read a validation table (format in the module docstring); {} when the file does not exist. Raises
    :class:`DeblurrtError` naming the file, what was expected and the fix when it is malformed."""
    path = Path(path)
    if not path.is_file():
        return {}
    fix = "Fix: regenerate it with 'python scripts/validation_table.py' (format: deblurrt.runtime.adaptive)"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DeblurrtError(f"cannot read the validation table {path}: {error}. {fix}") from error
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("models"), dict):
        raise DeblurrtError(f"{path} is not a version-1 validation table (expected an object with \"version\": 1 "
                            f"and \"models\"), received keys {sorted(data) if isinstance(data, dict) else type(data).__name__}. {fix}")
    table = {}
    for name, row in data["models"].items():
        try:
            gains = {float(scale): float(value) for scale, value in row["gain_db"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise DeblurrtError(f"{path}: model {name!r} needs \"gain_db\": {{scale: dB}} such as "
                                f"{{\"1\": 1.3, \"0.5\": 0.7}}, received {row!r}. {fix}") from error
        table[name] = ModelQuality(name, gains, row.get("file"), row.get("sha256"))
    return table


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Candidate:
    """One option of the choice: a model file at a processing scale, with its expected quality."""

    model: str  # the model's name (file stem)
    path: str
    scale: float
    quality_db: float | None  # validation gain; None when the model is not in the table
    estimated: bool = False  # quality_db extrapolated from another scale

    @property
    def label(self) -> str:
        """``unet_nano_prior@0.5``."""
        return f"{self.model}@{self.scale:g}"


def candidates_for(models: Iterable[str | os.PathLike], table: dict[str, ModelQuality],
                   scales: Sequence[float] = SCALES, *, hashes: dict[str, str] | None = None) -> list[Candidate]:
    """Every (model, scale), best expected quality first: validation gain in steps of ``GAIN_STEP_DB`` (or
    ``gain at 1 x scale`` where the table lacks the scale), then the larger scale, then the model listed first;
    models missing from the table last, larger scales first.
    ``hashes`` (path -> sha256) flags models whose table row was measured on other weights (a warning)."""
    candidates = []
    for model in models:
        path = str(model)
        name = Path(path).stem
        row = table.get(name)
        if row is not None and hashes is not None and row.sha256 and hashes.get(path) not in (None, row.sha256):
            log.warning("the validation table's figures for %s were measured on other weights (sha256 differs): "
                        "the ranking may be stale. Fix: regenerate weights/validation.json with "
                        "scripts/validation_table.py", name)
        for scale in scales:
            if row is None:
                candidates.append(Candidate(name, path, float(scale), None))
            elif float(scale) in row.gain_db:
                candidates.append(Candidate(name, path, float(scale), row.gain_db[float(scale)]))
            else:
                full = row.gain_db.get(1.0)
                candidates.append(Candidate(name, path, float(scale), None if full is None else full * scale, True))
    order = {str(m): i for i, m in enumerate(models)}

    def rank(candidate: Candidate) -> tuple:
        step = math.floor((candidate.quality_db or 0.0) / GAIN_STEP_DB + 1e-9)
        return candidate.quality_db is None, -step, -candidate.scale, order.get(candidate.path, 0)

    return sorted(candidates, key=rank)


# ------------------------------------------------------------------------------------------ measuring

@dataclass(frozen=True)
class Measurement:
    """How fast one candidate ran: per-frame processing time (ms) and the fps it sustains (1000 / mean)."""

    fps: float
    mean_ms: float
    p50_ms: float
    iters: int
    processing_size: tuple[int, int]  # (W, H) the model ran at
    precision: str = "fp32"
    cached: bool = False


def measure_frames(step: Callable[[], Any], *, seconds: float = 0.5, min_iters: int = 3, warmup: int = 1,
                   clock: Callable[[], float] = time.perf_counter) -> tuple[float, float, int]:
    """Time ``step`` (one frame's processing) for about ``seconds`` and at least ``min_iters`` times after
    ``warmup`` untimed calls. Returns ``(mean_ms, p50_ms, iterations)``."""
    for _ in range(warmup):
        step()
    samples: list[float] = []
    deadline = clock() + seconds
    while len(samples) < min_iters or clock() < deadline:
        start = clock()
        step()
        samples.append((clock() - start) * 1e3)
    return float(np.mean(samples)), float(np.median(samples)), len(samples)


def measure_candidate(backend: Any, scale: float, frame: np.ndarray, *, seconds: float = 0.5) -> Measurement:
    """Time one frame's processing at ``scale`` through ``backend``: reduce, pad, infer, crop, residual."""
    adapter = adapter_for(backend, scale)

    def step() -> None:
        prepared = adapter.prepare(frame)
        adapter.finish(adapter.run(backend.infer, prepared), prepared)

    mean_ms, p50_ms, iters = measure_frames(step, seconds=seconds)
    height, width = frame.shape[:2]
    return Measurement(round(1000.0 / mean_ms, 3), round(mean_ms, 3), round(p50_ms, 3), iters,
                       processing_size(width, height, scale), backend.info.precision)


# --------------------------------------------------------------------------------------------- caching

def machine_id() -> dict[str, Any]:
    """What identifies this machine for timing purposes: host, architecture, CPU model and count, and the
    GPU where ``nvidia-smi``-free hints exist (``CUDA_VISIBLE_DEVICES``)."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"host": platform.node(), "arch": platform.machine(), "cpu": cpu, "cores": os.cpu_count(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def default_cache_path() -> Path:
    """``$DEBLURRT_CACHE_DIR/target_fps.json``, default ``~/.cache/deblurrt/target_fps.json``."""
    root = os.environ.get("DEBLURRT_CACHE_DIR")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "deblurrt") / CACHE_FILE


class CalibrationCache:
    """Measurements per (machine, backend setup, model file sha256, input size, scale), in one JSON file.

    Args:
        path: the JSON file (created on first store; a corrupt file is ignored with a warning and replaced).
        machine: :func:`machine_id` by default (tests pass their own).
    """

    def __init__(self, path: str | os.PathLike | None = None, machine: dict[str, Any] | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        self.machine = machine if machine is not None else machine_id()
        self._entries: dict[str, Any] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
                if data.get("version") == CACHE_VERSION:
                    self._entries = dict(data.get("entries", {}))
            except (OSError, json.JSONDecodeError, AttributeError) as error:
                log.warning("ignoring the unreadable calibration cache %s (%s); it will be rewritten", self.path,
                            error)

    def key(self, backend: dict[str, Any], model_sha256: str, size: tuple[int, int], scale: float) -> str:
        """The entry key: sha256 of the JSON of every part (machine, backend, model, size (W, H), scale)."""
        parts = {"machine": self.machine, "backend": backend, "model_sha256": model_sha256,
                 "size": [int(size[0]), int(size[1])], "scale": float(scale)}
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    def get(self, key: str) -> Measurement | None:
        """The cached measurement, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        try:
            values = {**entry["measurement"], "processing_size": tuple(entry["measurement"]["processing_size"]),
                      "cached": True}
            return Measurement(**values)
        except (KeyError, TypeError):
            return None

    def put(self, key: str, measurement: Measurement, note: dict[str, Any] | None = None) -> None:
        """Store a measurement (and write the file atomically)."""
        record = asdict(measurement)
        record.pop("cached", None)
        self._entries[key] = {"measurement": record, "note": note or {}, "date": date.today().isoformat()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "entries": self._entries}, indent=1) + "\n")
        tmp.replace(self.path)


# -------------------------------------------------------------------------------------------- choosing

@dataclass
class Choice:
    """The outcome of a calibration: the chosen candidate and its measurement, whether it meets the target,
    a message for the user, and every candidate measured (in quality order) for the table."""

    candidate: Candidate
    measurement: Measurement
    target_fps: float
    met: bool
    message: str
    measured: list[tuple[Candidate, Measurement]]

    def stats(self) -> dict[str, Any]:
        """The ``chosen`` block of ``--stats-json``: model, precision, scale, measured_fps (and more)."""
        return {"model": self.candidate.model, "precision": self.measurement.precision,
                "scale": self.candidate.scale, "measured_fps": self.measurement.fps,
                "path": self.candidate.path, "processing_size": list(self.measurement.processing_size),
                "meets_target": self.met, "validation_gain_db": self.candidate.quality_db,
                "cached": self.measurement.cached}


def choose(candidates: Sequence[Candidate], measure: Callable[[Candidate], Measurement], target_fps: float, *,
           exhaustive: bool = False) -> Choice:
    """The best candidate (``candidates`` are in quality order, best first) whose measured fps reaches
    ``target_fps``; measuring stops at the first that does unless ``exhaustive``. If none does, the fastest,
    with a message that says so. ``measure`` may come from a cache (its measurements are free)."""
    if not candidates:
        raise DeblurrtError("--target-fps has no candidate model. Fix: ship weights/*.onnx or give --model")
    if target_fps <= 0:
        raise DeblurrtError(f"--target-fps must be > 0, received {target_fps}")
    measured: list[tuple[Candidate, Measurement]] = []
    chosen: tuple[Candidate, Measurement] | None = None
    for candidate in candidates:
        measurement = measure(candidate)
        measured.append((candidate, measurement))
        if chosen is None and measurement.fps >= target_fps:
            chosen = (candidate, measurement)
            if not exhaustive:
                break
    if chosen is not None:
        candidate, measurement = chosen
        quality = "" if candidate.quality_db is None else f", validation gain {candidate.quality_db:+.2f} dB" + (
            " (estimated)" if candidate.estimated else "")
        message = (f"target {target_fps:g} fps: {candidate.model} at scale {candidate.scale:g} "
                   f"({measurement.processing_size[0]}x{measurement.processing_size[1]}, {measurement.precision}) "
                   f"measured {measurement.fps:.1f} fps{quality}")
        return Choice(candidate, measurement, target_fps, True, message, measured)
    candidate, measurement = max(measured, key=lambda item: item[1].fps)
    message = (f"target {target_fps:g} fps: no candidate reaches it here (best {measurement.fps:.1f} fps); "
               f"picking the fastest, {candidate.model} at scale {candidate.scale:g} "
               f"({measurement.processing_size[0]}x{measurement.processing_size[1]}), which will run at about "
               f"{measurement.fps:.1f} fps. Fix: a lower --target-fps, a smaller input, or a faster backend "
               "(TensorRT on a GPU)")
    return Choice(candidate, measurement, target_fps, False, message, measured)


def format_table(choice: Choice, candidates: Sequence[Candidate] | None = None) -> str:
    """The Markdown table behind a choice: every candidate, its quality, size, timing and verdict."""
    lines = ["| candidate | validation gain dB | processing size | precision | ms/frame (mean / p50) | fps | "
             f"{choice.target_fps:g} fps? |", "|---|---|---|---|---|---|---|"]
    measured = {c: m for c, m in choice.measured}
    for candidate in candidates or [c for c, _ in choice.measured]:
        measurement = measured.get(candidate)
        gain = "n/a" if candidate.quality_db is None else f"{candidate.quality_db:+.2f}" + (
            " (est.)" if candidate.estimated else "")
        mark = " **chosen**" if candidate == choice.candidate else ""
        if measurement is None:
            lines.append(f"| {candidate.label}{mark} | {gain} | | | not measured | | |")
            continue
        size = f"{measurement.processing_size[0]}x{measurement.processing_size[1]}"
        verdict = "yes" if measurement.fps >= choice.target_fps else "no"
        lines.append(f"| {candidate.label}{mark} | {gain} | {size} | {measurement.precision} | "
                     f"{measurement.mean_ms:.1f} / {measurement.p50_ms:.1f} | {measurement.fps:.1f} | {verdict} |")
    return "\n".join(lines) + "\n"
