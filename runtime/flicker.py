"""Temporal stability of a video's deblurring: the warping error between consecutive frames, and a temporal
blend that lowers it.

Warping error (:func:`warping_error`, :class:`FlickerMeter`): for each pair of consecutive frames (t-1, t),
dense optical flow is estimated on the INPUT frames (OpenCV Farneback, both directions), frame t-1 is warped
onto frame t with the backward flow, and the mean absolute difference (8-bit levels, averaged over the three
colour channels) is taken over the pixels the flow can be trusted on: those whose forward-backward round trip
returns within ``0.01 * (|f|^2 + |b|^2) + 0.5`` px (Sundaram et al., ECCV 2010; what video style-transfer and
video-restoration papers use to mask occlusions) and that land inside the frame. The same flow and mask
measure the inputs and the outputs, so ``output - input`` is the flicker the model adds on top of the
scene's own changes (light, noise, motion the flow misses). Zero for a still stream.

Everything runs at an analysis width (default 480 px, INTER_AREA), where Farneback costs a few ms per pair:
the figures are comparable between inputs and outputs and between models, not with full-resolution figures
of other tools.

Temporal blend (:class:`TemporalBlend`, ``--temporal S``): the model's correction (its RESIDUAL, output -
input) is blended with the previous frame's blended correction warped along the flow,
``r_t' = (1 - w) r_t + w warp(r_{t-1}')``, ``w = S`` where the warped previous INPUT matches the current one
(within ``tolerance`` levels) and 0 elsewhere; the written frame is ``input_t + r_t'``. Blending the residual
rather than the image keeps new content of the input (no ghosts of moving objects), only the model's
correction is smoothed. Flow is computed at the analysis width and scaled up.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError

__all__ = ["FlickerConfig", "FlickerMeter", "FlickerWorker", "TemporalBlend", "consistent_mask", "farneback",
           "warp", "warping_error"]


@dataclass(frozen=True)
class FlickerConfig:
    """Analysis settings.

    Attributes:
        width: frames wider than this are reduced (INTER_AREA) before flow and error are computed.
        fb_alpha, fb_beta: the forward-backward test ``|f + b|^2 <= fb_alpha (|f|^2 + |b|^2) + fb_beta``.
    """

    width: int = 480
    fb_alpha: float = 0.01
    fb_beta: float = 0.5


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def farneback(previous_gray: np.ndarray, current_gray: np.ndarray) -> np.ndarray:
    """Dense Farneback flow ``(H, W, 2)`` float32 (dx, dy) with OpenCV's convention
    ``previous(x) ~ current(x + flow(x))``: ``farneback(frame_t, frame_t-1)`` finds, for each pixel of frame t,
    where it was in frame t-1."""
    if np.array_equal(previous_gray, current_gray):
        # Farneback finds up to ~0.1 px of motion between identical frames; a still frame has none
        return np.zeros(previous_gray.shape + (2,), np.float32)
    return cv2.calcOpticalFlowFarneback(previous_gray, current_gray, None, pyr_scale=0.5, levels=4, winsize=15,
                                        iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray, grid: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``image`` sampled at ``x + flow(x)`` (bilinear, edges replicated): with ``flow`` from frame t to frame
    t-1 this brings frame t-1 onto frame t."""
    height, width = flow.shape[:2]
    xs, ys = grid if grid is not None else _grid(height, width)
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistent_mask(backward: np.ndarray, forward: np.ndarray, alpha: float = 0.01, beta: float = 0.5,
                    grid: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Pixels of frame t whose flow is trusted: ``backward`` (t -> t-1) followed by ``forward`` (t-1 -> t)
    returns within ``alpha (|f|^2 + |b|^2) + beta`` squared pixels, and ``x + b(x)`` is inside the frame."""
    height, width = backward.shape[:2]
    xs, ys = grid if grid is not None else _grid(height, width)
    tx, ty = xs + backward[..., 0], ys + backward[..., 1]
    forward_at = cv2.remap(forward, tx, ty, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    round_trip = backward + forward_at
    error = (round_trip ** 2).sum(-1)
    bound = alpha * ((backward ** 2).sum(-1) + (forward_at ** 2).sum(-1)) + beta
    inside = (tx >= 0) & (tx <= width - 1) & (ty >= 0) & (ty <= height - 1)
    return (error <= bound) & inside


def _reduce(image: np.ndarray, width: int) -> np.ndarray:
    if image.shape[1] <= width:
        return image
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def warping_error(previous_input: np.ndarray, current_input: np.ndarray, previous_output: np.ndarray,
                  current_output: np.ndarray, config: FlickerConfig | None = None) -> dict[str, float]:
    """The warping error of one pair of consecutive frames (BGR uint8): ``{"input", "output", "valid"}``,
    errors in 8-bit levels and the share of pixels that were trusted. See the module docstring."""
    config = config or FlickerConfig()
    frames = [_reduce(f, config.width) for f in (previous_input, current_input, previous_output, current_output)]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise DeblurrtError(f"warping error needs four frames of one size, received {sorted(shapes)}")
    prev_in, cur_in, prev_out, cur_out = frames
    g_prev, g_cur = _gray(prev_in), _gray(cur_in)
    grid = _grid(*g_cur.shape)
    backward = farneback(g_cur, g_prev)  # t -> t-1
    forward = farneback(g_prev, g_cur)  # t-1 -> t
    mask = consistent_mask(backward, forward, config.fb_alpha, config.fb_beta, grid)
    count = int(mask.sum())
    result = {"valid": count / mask.size}
    for key, previous, current in (("input", prev_in, cur_in), ("output", prev_out, cur_out)):
        warped = warp(previous.astype(np.float32), backward, grid)
        difference = np.abs(current.astype(np.float32) - warped)
        if difference.ndim == 3:
            difference = difference.mean(axis=2)
        result[key] = float(difference[mask].mean(dtype=np.float64)) if count else float("nan")
    return result


class FlickerMeter:
    """Accumulates the warping error over consecutive (input, output) frames of one stream."""

    def __init__(self, config: FlickerConfig | None = None):
        self.config = config or FlickerConfig()
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self._sums = {"input": 0.0, "output": 0.0, "valid": 0.0}
        self.pairs = 0

    def add(self, input_frame: np.ndarray, output_frame: np.ndarray) -> None:
        """The next frame of the stream (its input and its output, BGR uint8 of one size)."""
        current = (_reduce(input_frame, self.config.width), _reduce(output_frame, self.config.width))
        if self._previous is not None and self._previous[0].shape == current[0].shape:
            pair = warping_error(self._previous[0], current[0], self._previous[1], current[1], self.config)
            if np.isfinite(pair["input"]):
                for key in self._sums:
                    self._sums[key] += pair[key]
                self.pairs += 1
        self._previous = current

    def break_chain(self) -> None:
        """The next frame does not follow the last one (a dropped frame): do not pair them."""
        self._previous = None

    def result(self) -> dict[str, Any] | None:
        """``{"input", "output", "ratio", "pairs", "valid", "width"}`` (means over pairs), None before a pair."""
        if not self.pairs:
            return None
        mean_in, mean_out = self._sums["input"] / self.pairs, self._sums["output"] / self.pairs
        return {"input": round(mean_in, 4), "output": round(mean_out, 4),
                "ratio": round(mean_out / mean_in, 4) if mean_in > 0 else None, "pairs": self.pairs,
                "valid": round(self._sums["valid"] / self.pairs, 4), "width": self.config.width,
                "unit": "mean |frame t - warped frame t-1| over flow-consistent pixels, 8-bit levels"}


class FlickerWorker:
    """A :class:`FlickerMeter` in its own thread, fed from the pipeline's write stage so the flow does not
    delay writing. The queue is bounded: :meth:`submit` blocks when it is full (file sources, every pair
    counts) or, with ``drop=True`` (live sources), drops the frame and breaks the chain."""

    def __init__(self, config: FlickerConfig | None = None, *, drop: bool = False, depth: int = 8):
        self.meter = FlickerMeter(config)
        self.drop = drop
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._dropped = False
        self._thread = threading.Thread(target=self._loop, name="deblurrt-flicker", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            input_frame, output_frame, follows = item
            try:
                if not follows:
                    self.meter.break_chain()
                self.meter.add(input_frame, output_frame)
            except Exception as error:  # noqa: BLE001 - kept and reported as the measure's absence
                self._error = error

    def submit(self, input_frame: np.ndarray, output_frame: np.ndarray) -> None:
        """Queue one frame pair (reduced here, so the queue holds small copies)."""
        width = self.meter.config.width
        item = (_reduce(input_frame, width).copy(), _reduce(output_frame, width).copy(), not self._dropped)
        if not self.drop:
            self._queue.put(item)
            return
        try:
            self._queue.put_nowait(item)
            self._dropped = False
        except queue.Full:
            self._dropped = True  # the next queued frame does not follow the last measured one

    def close(self) -> dict[str, Any] | None:
        """Finish the queued pairs and return :meth:`FlickerMeter.result` (None when measuring failed)."""
        self._queue.put(None)
        self._thread.join()
        return None if self._error is not None else self.meter.result()


class TemporalBlend:
    """``--temporal S``: smooth the model's residual along the flow (see the module docstring).

    Args:
        strength: ``S`` in [0, 1): the previous (warped) residual's weight where the flow is trusted.
        tolerance: the inputs must agree within this many 8-bit levels (mean over channels) after warping
            for a pixel to be blended; elsewhere (occlusions, wrong flow, scene cuts) the current residual
            is kept as it is.
        width: the flow's analysis width.
    """

    def __init__(self, strength: float = 0.5, tolerance: float = 6.0, width: int = 480):
        if not 0.0 <= strength < 1.0:
            raise DeblurrtError(f"temporal blend strength must be in [0, 1), received {strength}")
        self.strength, self.tolerance, self.width = float(strength), float(tolerance), int(width)
        self._previous_input: np.ndarray | None = None
        self._previous_gray: np.ndarray | None = None
        self._previous_residual: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame (a cut, a dropped frame)."""
        self._previous_input = self._previous_gray = self._previous_residual = None

    def __call__(self, input_frame: np.ndarray, output_frame: np.ndarray) -> np.ndarray:
        """The blended output of the next frame (BGR uint8, the input's size)."""
        image = input_frame.astype(np.float32)
        residual = output_frame.astype(np.float32) - image
        small = _gray(_reduce(input_frame, self.width))
        if (self.strength > 0.0 and self._previous_residual is not None
                and self._previous_residual.shape == residual.shape):
            backward = farneback(small, self._previous_gray)
            height, width = input_frame.shape[:2]
            if backward.shape[:2] != (height, width):  # flow in analysis pixels -> full-resolution pixels
                factor = np.float32(width / backward.shape[1]), np.float32(height / backward.shape[0])
                backward = cv2.resize(backward, (width, height), interpolation=cv2.INTER_LINEAR)
                backward[..., 0] *= factor[0]
                backward[..., 1] *= factor[1]
            grid = _grid(height, width)
            warped_input = warp(self._previous_input, backward, grid)
            agree = np.abs(image - warped_input).mean(axis=2) <= self.tolerance
            weight = (agree.astype(np.float32) * np.float32(self.strength))[..., None]
            residual += weight * (warp(self._previous_residual, backward, grid) - residual)
        self._previous_input, self._previous_gray, self._previous_residual = image, small, residual
        return np.clip(np.rint(image + residual), 0, 255).astype(np.uint8)
