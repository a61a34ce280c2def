"""A cheap per-frame blur estimate (no reference) and the pass-through gate of ``--skip-sharp``.

Scores, all on the frame's luma reduced to at most :attr:`BlurScoreConfig.max_width` pixels wide (INTER_AREA),
higher = blurrier:

``detail`` (the default)
    How much of the frame's gradient lives at the finest scale: ``G(half) / G(full)``, the mean Sobel
    gradient magnitude of the frame reduced 2x (``cv2.pyrDown``) over that of the frame itself. Blur removes
    the finest scale first, so the ratio rises; a scene's coarser structure changes it less than the
    gradient energy itself (the ratio of two energies of one frame cancels most of the contrast and texture).
``reblur``
    The re-blur measure of Crete-Roffet et al. (SPIE 2007): blur the frame again with a 1x9 box, vertically
    and horizontally, and take the share of the neighbour differences that survives, the larger direction.
``gradient``
    The mean Sobel gradient magnitude, negated: the plain sharpness energy (scene-dependent).

No absolute threshold on any of them holds across scenes (a smooth sky and a brick wall differ more than a
sharp and a blurred view of either). The gate therefore compares each frame with the SAME camera's recent
past: ``level = score - min(score over the last window frames)`` ("gradient energy relative to a running
reference"); a frame whose level reaches the threshold is blurry. ``scripts/blur_score_roc.py`` measures the
separation (ROC AUC) of every score, absolute and relative, on the blur-only validation sets, mostly-sharp
synthetic streams with blurry bursts over the shared photos, and the real footage; the README has the table
and the default threshold comes from it.

Limits: the running reference assumes the stream shows a sharp frame now and then (a camera that is mostly
still): a stream blurry from start to end has a blurry reference and passes its least blurry frames through;
a burst longer than the window becomes its own reference. The first frame is its own reference (it passes).

The gate (:class:`PassThroughGate`) turns scores into a decision per frame: a frame judged sharp passes
straight through (no inference), a blurry one is deblurred. With ``blend_frames`` K > 0 the output fades back
to the input over K frames after a blurry stretch (the model keeps running during the fade), so a model that
shifts colours or adds texture does not switch off in one visible step; a blurry frame is deblurred at full
strength at once (fading in would leave blur in it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError

__all__ = ["DEFAULT_THRESHOLD", "SCORES", "BlurScoreConfig", "BlurScorer", "GateDecision", "PassThroughGate",
           "blend", "detail_ratio", "gradient_energy", "luma", "reblur_score"]

SCORES = ("detail", "reblur", "gradient")

#: the gate's default: a frame whose ``detail`` score exceeds the recent minimum by this much is blurry
#: (scripts/blur_score_roc.py: every blurry frame of the synthetic burst streams flagged, ~87% of sharp ones passed)
DEFAULT_THRESHOLD = 0.10


def luma(bgr: np.ndarray, max_width: int = 640) -> np.ndarray:
    """The BT.601 luma of a BGR uint8 frame as float32 (0-255), reduced (INTER_AREA) to at most ``max_width``."""
    if not isinstance(bgr, np.ndarray) or bgr.ndim not in (2, 3) or bgr.dtype != np.uint8:
        got = f"{bgr.dtype} array of shape {bgr.shape}" if isinstance(bgr, np.ndarray) else type(bgr).__name__
        raise DeblurrtError(f"a blur score needs a BGR uint8 frame (HxWx3) or a gray one (HxW), received {got}")
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    height, width = gray.shape
    if width > max_width:
        gray = cv2.resize(gray, (max_width, max(1, round(height * max_width / width))), interpolation=cv2.INTER_AREA)
    return gray.astype(np.float32)


def reblur_score(gray: np.ndarray, taps: int = 9) -> float:
    """Crété-Roffet's no-reference blur in [0, 1] (1 = blurry) of a float32 luma: the share of the
    neighbour differences that survives a ``taps``-pixel box re-blur, the larger of the two directions.
    A flat frame (no variation at all) scores 1: there is nothing sharp in it to keep."""
    scores = []
    for axis, kernel in ((0, (1, taps)), (1, (taps, 1))):
        # kernel (w, h): (1, taps) blurs vertically and is compared with vertical differences (axis 0)
        blurred = cv2.blur(gray, kernel, borderType=cv2.BORDER_REFLECT)
        d_frame = np.abs(np.diff(gray, axis=axis))
        d_blur = np.abs(np.diff(blurred, axis=axis))
        total = float(d_frame.sum(dtype=np.float64))
        if total <= 0.0:
            scores.append(1.0)
            continue
        kept = float(np.maximum(d_frame - d_blur, 0.0).sum(dtype=np.float64))
        scores.append((total - kept) / total)
    return max(scores)


def gradient_energy(gray: np.ndarray) -> float:
    """The mean Sobel (3x3) gradient magnitude of a float32 luma (higher = sharper, scene-dependent)."""
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.mean(cv2.magnitude(gx, gy), dtype=np.float64))


def detail_ratio(gray: np.ndarray) -> float:
    """``G(pyrDown(gray)) / G(gray)`` with G = :func:`gradient_energy` (higher = blurrier); a flat frame
    (no gradient at all) scores ``inf``: nothing sharp in it."""
    full = gradient_energy(gray)
    if full <= 0.0:
        return float("inf")
    return gradient_energy(cv2.pyrDown(gray)) / full


@dataclass(frozen=True)
class BlurScoreConfig:
    """How frames are scored and compared.

    Attributes:
        method: one of :data:`SCORES`.
        max_width: frames are reduced to at most this width before scoring (cost, and one scale for all inputs).
        window: the running reference is the minimum score of this many most recent frames (this one included).
        relative: gate on ``score - reference`` (True) or on the score itself (False).
    """

    method: str = "detail"
    max_width: int = 640
    window: int = 30
    relative: bool = True

    def __post_init__(self) -> None:
        if self.method not in SCORES:
            raise DeblurrtError(f"blur score method must be one of {', '.join(SCORES)}, received {self.method!r}")
        if self.max_width < 16 or self.window < 1:
            raise DeblurrtError(f"blur score needs max_width >= 16 and window >= 1, received {self.max_width}, "
                                f"{self.window}")


class BlurScorer:
    """Scores frames one after another; :meth:`level` keeps the running reference, so call it in stream order."""

    def __init__(self, config: BlurScoreConfig | None = None):
        self.config = config or BlurScoreConfig()
        self._recent: deque[float] = deque(maxlen=self.config.window)

    def __call__(self, bgr: np.ndarray) -> float:
        """The frame's blur score (higher = blurrier), absolute."""
        gray = luma(bgr, self.config.max_width)
        method = self.config.method
        if method == "detail":
            return detail_ratio(gray)
        if method == "reblur":
            return reblur_score(gray)
        return -gradient_energy(gray)

    def level(self, bgr: np.ndarray) -> tuple[float, float]:
        """``(score, level)``: the absolute score and what the gate compares with its threshold (the score
        above the minimum of the recent window when ``relative``, else the score)."""
        score = self(bgr)
        finite = score if np.isfinite(score) else (max(self._recent) if self._recent else 0.0)
        self._recent.append(finite)
        if not self.config.relative:
            return score, score
        return score, (finite - min(self._recent)) if np.isfinite(score) else float("inf")


@dataclass(frozen=True)
class GateDecision:
    """What to do with one frame: its blur ``score`` and ``level`` (score over the running reference: what
    the threshold applies to), whether the model runs, and ``alpha``, the weight of the model's output in the
    written frame (0 = the input passes through, 1 = the model's output)."""

    score: float
    level: float
    run_model: bool
    alpha: float


class PassThroughGate:
    """``--skip-sharp``: decide per frame, in stream order, whether to deblur it.

    Args:
        threshold: frames whose level (score over the running reference) is below it are judged sharp.
        blend_frames: after a blurry stretch, fade from the model's output back to the input over this many
            frames (0: switch at once).
        config: the blur score.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, blend_frames: int = 0,
                 config: BlurScoreConfig | None = None):
        if blend_frames < 0:
            raise DeblurrtError(f"blend frames must be >= 0, received {blend_frames}")
        self.threshold = float(threshold)
        self.blend_frames = int(blend_frames)
        self.scorer = BlurScorer(config)
        self._since_blurry: int | None = None  # frames since the last blurry one (None: none yet)
        self.frames = 0
        self.skipped = 0

    def decide(self, bgr: np.ndarray) -> GateDecision:
        """Score the frame and decide (updates the fade state and the counters)."""
        score, level = self.scorer.level(bgr)
        if level >= self.threshold:
            self._since_blurry = 0
        elif self._since_blurry is not None:
            self._since_blurry += 1
        # counted in whole frames, so the fade ends exactly after blend_frames frames (no float residue)
        since = self._since_blurry
        alpha = 0.0 if since is None or since > self.blend_frames else 1.0 - since / (self.blend_frames + 1)
        self.frames += 1
        run = alpha > 0.0
        if not run:
            self.skipped += 1
        return GateDecision(score, level, run, alpha)


def blend(image: np.ndarray, output: np.ndarray, alpha: float) -> np.ndarray:
    """``alpha * output + (1 - alpha) * image`` as uint8 (rounded); exact copies at alpha 0 and 1."""
    if alpha >= 1.0:
        return output
    if alpha <= 0.0:
        return image.copy()
    return cv2.addWeighted(output, float(alpha), image, 1.0 - float(alpha), 0.0)
