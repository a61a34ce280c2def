"""Frames <-> model tensors, and tiled inference for frames larger than an engine accepts.

A camera frame is BGR uint8 ``H x W x 3`` (OpenCV's convention); a deblurrt model takes an NCHW RGB float
batch in its value range ([0, 1]) whose H and W are multiples of the model's pad multiple. The conversion
pads by edge replication (no artificial black border for the network to "deblur"), and the way back crops
the padding, clips, rounds half-to-even and returns BGR uint8. Everything is whole-array numpy/OpenCV.

Exactness: for every 8-bit value ``v``, ``rint(float32(v) * float32(1/255) * 255) == v`` (and likewise through
float16, whose 11-bit mantissa keeps the error below 0.125 of a step), so a frame that goes through an identity
model comes back bit-identical.

Tiling (:func:`tiled_infer`): overlapping tiles of a size the engine accepts, the last one of each row/column
aligned to the far edge, blended with feathered (linear ramp) weights across the overlaps so seams do not show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError

__all__ = ["FrameAdapter", "Prepared", "batch_to_frames", "feather_weights", "frames_to_batch", "padded_size",
           "tile_origins", "tiled_infer"]


def padded_size(height: int, width: int, multiple: int, min_hw: tuple[int, int] | None = None) -> tuple[int, int]:
    """The smallest (H, W) >= the frame (and >= ``min_hw``) with both sides multiples of ``multiple``."""
    if min_hw is not None:
        height, width = max(height, min_hw[0]), max(width, min_hw[1])
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        got = (f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray)
               else type(frame).__name__)
        raise DeblurrtError(f"a frame must be a BGR uint8 array of shape HxWx3, received {got}")


def frames_to_batch(frames: Sequence[np.ndarray] | np.ndarray, multiple: int, *, dtype=np.float32,
                    value_range: tuple[float, float] = (0.0, 1.0), color: str = "RGB",
                    size: tuple[int, int] | None = None) -> np.ndarray:
    """BGR uint8 frames (all one size) -> an NCHW batch in ``value_range``, padded by edge replication.

    Args:
        frames: one ``HxWx3`` frame or a sequence of them.
        multiple: the model's pad multiple.
        dtype: float32 or float16 (what the backend computes with).
        value_range: the model's pixel range.
        color: ``"RGB"`` (deblurrt models) or ``"BGR"``.
        size: pad to exactly this (H, W) instead (must be >= the frame and multiples of ``multiple``).
    """
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        frames = [frames]
    if len(frames) == 0:
        raise DeblurrtError("frames_to_batch needs at least one frame")
    for frame in frames:
        _check_frame(frame)
    height, width = frames[0].shape[:2]
    if any(f.shape != frames[0].shape for f in frames):
        raise DeblurrtError(f"frames of one batch must share a size, received {sorted({f.shape for f in frames})}")
    out_h, out_w = size if size is not None else padded_size(height, width, multiple)
    if out_h < height or out_w < width or out_h % multiple or out_w % multiple:
        raise DeblurrtError(f"cannot pad a {height}x{width} frame to {out_h}x{out_w} (multiple of {multiple})")
    lo, hi = value_range
    scale = np.float32((hi - lo) / 255.0)
    order = (2, 1, 0) if color == "RGB" else (0, 1, 2)
    batch = np.empty((len(frames), 3, out_h, out_w), dtype=dtype)
    for i, frame in enumerate(frames):
        if (out_h, out_w) != (height, width):
            # pad the uint8 frame (cheap) rather than the float tensor; replication keeps edges natural
            frame = cv2.copyMakeBorder(frame, 0, out_h - height, 0, out_w - width, cv2.BORDER_REPLICATE)
        for channel, source in enumerate(order):
            # uint8 * float32 computes in float32, then casts to the batch dtype (float16 for FP16 models)
            np.multiply(frame[:, :, source], scale, out=batch[i, channel], casting="unsafe")
            if lo:
                batch[i, channel] += np.float32(lo)
    return batch


def batch_to_frames(batch: np.ndarray, size: tuple[int, int], *, value_range: tuple[float, float] = (0.0, 1.0),
                    color: str = "RGB") -> list[np.ndarray]:
    """An NCHW model output -> BGR uint8 frames of ``size`` (H, W): crop the padding, clip, round, reorder."""
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise DeblurrtError(f"model output must be NCHW with 3 channels, received shape {batch.shape}")
    height, width = size
    if batch.shape[2] < height or batch.shape[3] < width:
        raise DeblurrtError(f"model output {batch.shape[2]}x{batch.shape[3]} is smaller than the frame "
                            f"{height}x{width}: the model must keep the input size")
    lo, hi = value_range
    scale = np.float32(255.0 / (hi - lo))
    order = (2, 1, 0) if color == "RGB" else (0, 1, 2)
    frames = []
    for item in batch:
        cropped = item[:, :height, :width]
        work = np.empty((height, width, 3), np.float32)
        for channel, source in enumerate(order):
            plane = cropped[source]
            if lo:
                plane = plane - np.float32(lo)
            np.multiply(plane, scale, out=work[:, :, channel], casting="unsafe")
        np.clip(work, 0.0, 255.0, out=work)
        np.rint(work, out=work)  # half to even, as deblurrt.metrics quantises
        frames.append(work.astype(np.uint8))
    return frames


# ------------------------------------------------------------------------------------------------- tiling

def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with at least ``overlap`` shared pixels.

    Tiles step by ``tile - overlap``; the last one is aligned to the end (so it may overlap more).
    """
    if tile <= 0 or overlap < 0 or overlap >= tile:
        raise DeblurrtError(f"tiles need 0 <= overlap < tile, received tile {tile}, overlap {overlap}")
    if length <= tile:
        return [0]
    origins = list(range(0, length - tile, tile - overlap))
    origins.append(length - tile)
    return sorted(set(origins))


def feather_weights(tile: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """1-D blending weights of one tile: a linear ramp over ``overlap`` pixels at each side that has a
    neighbour (none at the image border), 1 elsewhere; strictly positive, so every pixel is covered."""
    weights = np.ones(tile, np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + np.float32(0.5)) / np.float32(overlap)
        if not first:
            weights[:overlap] = np.minimum(weights[:overlap], ramp)
        if not last:
            weights[tile - overlap:] = np.minimum(weights[tile - overlap:], ramp[::-1])
    return weights


def tiled_infer(infer: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, tile: tuple[int, int],
                overlap: int = 32) -> np.ndarray:
    """Run ``infer`` on overlapping tiles of an NCHW ``batch`` and blend them into one NCHW output.

    ``tile`` (H, W) must be what ``infer`` accepts (multiples of the pad multiple, within any engine profile);
    it shrinks to the batch where the batch is smaller. The output is float32.
    """
    _, _, height, width = batch.shape
    tile_h, tile_w = min(tile[0], height), min(tile[1], width)
    overlap_h, overlap_w = min(overlap, tile_h - 1), min(overlap, tile_w - 1)
    ys, xs = tile_origins(height, tile_h, overlap_h), tile_origins(width, tile_w, overlap_w)
    if len(ys) == 1 and len(xs) == 1:
        return np.asarray(infer(batch), dtype=np.float32)
    out = np.zeros((batch.shape[0], 3, height, width), np.float32)
    total = np.zeros((height, width), np.float32)
    for iy, y in enumerate(ys):
        wy = feather_weights(tile_h, overlap_h, iy == 0, iy == len(ys) - 1)
        for ix, x in enumerate(xs):
            wx = feather_weights(tile_w, overlap_w, ix == 0, ix == len(xs) - 1)
            weight = wy[:, None] * wx[None, :]
            result = infer(np.ascontiguousarray(batch[:, :, y:y + tile_h, x:x + tile_w]))
            out[:, :, y:y + tile_h, x:x + tile_w] += result * weight
            total[y:y + tile_h, x:x + tile_w] += weight
    out /= total
    return out


# ---------------------------------------------------------------------------------------- frame adapter

@dataclass(frozen=True)
class Prepared:
    """A model-ready batch and what is needed to turn the output back into frames."""

    batch: np.ndarray
    frame_size: tuple[int, int]
    tiled: bool


class FrameAdapter:
    """Everything between a BGR frame and a backend: pad/convert, run (whole or tiled), crop/convert back.

    Args:
        multiple: the model's pad multiple.
        dtype: the backend's input dtype.
        value_range, color: from :class:`~deblurrt.runtime.backends.ModelInfo`.
        min_hw, max_hw: the smallest/largest input (H, W) the backend accepts (engine profiles); frames are
            padded up to ``min_hw`` and run in tiles of at most ``max_hw`` when larger.
        tile: force tiles of this (H, W) (rounded down to the multiple) even when the backend is unbounded.
        overlap: tile overlap in pixels.
    """

    def __init__(self, multiple: int, *, dtype=np.float32, value_range: tuple[float, float] = (0.0, 1.0),
                 color: str = "RGB", min_hw: tuple[int, int] | None = None,
                 max_hw: tuple[int, int] | None = None, tile: tuple[int, int] | None = None, overlap: int = 32):
        self.multiple = int(multiple)
        self.dtype = np.dtype(dtype)
        self.value_range = value_range
        self.color = color
        self.min_hw = min_hw
        limit = tile or max_hw
        if limit is not None:
            limit = (limit[0] // self.multiple * self.multiple, limit[1] // self.multiple * self.multiple)
            if min(limit) < self.multiple:
                height, width = tile or max_hw
                least = f"{self.multiple}x{self.multiple}"
                if tile:
                    problem, fix = f"--tile {width}x{height}", f"--tile of at least {least}"
                else:
                    problem, fix = (f"the engine's largest input {width}x{height}",
                                    f"rebuild the engine with --max-shape of at least {least}")
                raise DeblurrtError(f"{problem} is smaller than the model's pad multiple {self.multiple} on a side "
                                    f"(sides are rounded down to multiples of it). Fix: {fix}")
        self.tile = limit
        self.overlap = int(overlap)

    @classmethod
    def for_backend(cls, backend, *, tile: tuple[int, int] | None = None, overlap: int = 32) -> FrameAdapter:
        """An adapter configured from a backend's :class:`ModelInfo` and :class:`InputSpec`."""
        return cls(backend.info.pad_multiple, dtype=backend.input_dtype, value_range=backend.info.value_range,
                   color=backend.info.color, min_hw=backend.input_spec.min_hw(),
                   max_hw=backend.input_spec.max_hw(), tile=tile, overlap=overlap)

    def prepare(self, frames: Sequence[np.ndarray] | np.ndarray) -> Prepared:
        """BGR uint8 frame(s) -> a padded model batch (one size for the batch)."""
        first = frames if isinstance(frames, np.ndarray) and frames.ndim == 3 else frames[0]
        _check_frame(first)
        height, width = first.shape[:2]
        size = padded_size(height, width, self.multiple, self.min_hw)
        tiled = self.tile is not None and (size[0] > self.tile[0] or size[1] > self.tile[1])
        batch = frames_to_batch(frames, self.multiple, dtype=self.dtype, value_range=self.value_range,
                                color=self.color, size=size)
        return Prepared(batch, (height, width), tiled)

    def run(self, infer: Callable[[np.ndarray], np.ndarray], prepared: Prepared) -> np.ndarray:
        """Run ``infer`` on the prepared batch: whole, or in overlapping tiles when it exceeds the limit."""
        if prepared.tiled:
            return tiled_infer(infer, prepared.batch, self.tile, self.overlap)
        return infer(prepared.batch)

    def finish(self, output: np.ndarray, prepared: Prepared) -> list[np.ndarray]:
        """The model output -> BGR uint8 frames of the original size."""
        return batch_to_frames(output, prepared.frame_size, value_range=self.value_range, color=self.color)

    def __call__(self, infer: Callable[[np.ndarray], np.ndarray], frame: np.ndarray) -> np.ndarray:
        """One frame through ``infer``: prepare, run, finish."""
        prepared = self.prepare(frame)
        return self.finish(self.run(infer, prepared), prepared)[0]
