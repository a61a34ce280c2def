"""Motion-blur synthesis: (blurry, sharp) training pairs from one sharp photo, numpy + OpenCV only.

The model of a blurry exposure:

1. Camera shake is a smooth random trajectory over the exposure (an inertial random walk with occasional
   jerks): translation, in-plane rotation and a small zoom, sampled at N sub-frames. With ``align="centroid"``
   (the default) the trajectory is shifted so that its MEAN pose is the identity: the sharp target is the
   input itself (never resampled) and sits at the centre of mass of the blur, where a deblurring network can
   find it. With ``align="middle"`` (GoPro's convention) the middle sub-frame is the identity instead; the
   blur's centre of mass then lies 20 % of the streak length away from the target on average (35 % at the
   90th percentile), an offset the blurry image does not reveal, so a network trained on it learns to
   hedge (to blur) rather than to deconvolve.
2. Optionally a foreground layer (a soft-masked crop of the same image) moves with its own trajectory on top
   of the camera motion, like an object crossing the scene; its target is placed at its own mean pose.
3. Sub-frames are warped with ``cv2.warpAffine`` (bilinear, ``BORDER_REFLECT``) and averaged in LINEAR
   light (the sRGB curve is undone first and re-applied after), as a sensor integrates photons.
   Light sources may be boosted above 1 before averaging (a lamp is brighter than the white the 8-bit photo
   could record), so they paint light streaks; the sensor clips after. Only small blobs whose every channel
   is near clipping count as light sources (not white walls, not saturated colours), and the sharp target is
   rendered from the same boosted, clipped light, so blurry and sharp images always show the same scene.
4. Noise as cameras deliver it: most samples nearly clean (0-2 levels RMS in 8-bit sRGB), a minority noisier;
   optionally the older Poisson-Gaussian model in linear light; 8-bit quantisation and optional JPEG.

A share of samples (``sharp_prob``) gets only 0-3 px of motion, so that a model learns to leave sharp frames
alone.

Severity is the **peak displacement**: the longest streak a point light anywhere in the frame paints during
the exposure, in pixels of the produced image (the diameter of its sub-frame positions; for affine motion
the maximum over the frame is reached at a corner). Presets, in pixels at a short side of 256 px, scale
linearly with the short side of the produced image:

============  =========  ==========================================================
preset        px @ 256   looks like
============  =========  ==========================================================
``mild``      3 - 8      slight softness, hand-held at 1/60 s with a wide lens
``moderate``  8 - 18     clearly smeared text and edges; the GoPro-dataset regime
``severe``    18 - 35    double images, long light streaks; features barely legible
============  =========  ==========================================================

An explicit ``(min_px, max_px)`` range is scaled the same way (set ``reference_size=None`` to give absolute
pixels instead).

Determinism: everything random is drawn from ``np.random.default_rng(seed)``, in a fixed order; OpenCV calls
are per-pixel (their multithreading splits rows, never changes a sum), so the same
``(image, seed, config)`` gives the same pair bit-exactly in any process on the same machine and library
versions (OpenCV's SIMD paths may differ between CPU types in the last bit of a warp).

GoPro-style data (a burst of real high-speed frames) is averaged with :func:`average_frames`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError

# Peak displacement ranges in pixels at a produced short side of REFERENCE_SIZE.
SEVERITY_PRESETS: dict[str, tuple[float, float]] = {
    "mild": (3.0, 8.0),
    "moderate": (8.0, 18.0),
    "severe": (18.0, 35.0),
}
REFERENCE_SIZE = 256
#: The longest peak displacement :func:`parse_severity` accepts, in pixels: a streak as long as the 256-px
#: reference side already smears a point across the whole frame; longer ones only make NaN trajectories
#: (1e9) or a set that is nothing but smear.
MAX_SEVERITY_PX = 256.0

# Trajectories are generated at this resolution and then resampled to the sub-frame count, so the motion's
# shape depends on the seed only, not on how densely it is sampled.
_FINE_STEPS = 64
_MIN_SUBFRAMES = 9

Seed = int | Sequence[int] | np.random.SeedSequence


@dataclass(frozen=True)
class BlurConfig:
    """How to synthesise a blurry exposure. Every random quantity is drawn uniformly from its range.

    Attributes:
        severity: preset name (``"mild"``, ``"moderate"``, ``"severe"``) or ``(min_px, max_px)``: the peak
            displacement range (see the module docstring).
        reference_size: the short side, in pixels, at which ``severity`` ranges are given; ranges scale by
            ``short_side / reference_size``. ``None``: the ranges are absolute pixels.
        subframes: number of sub-frames (made odd so that one sits at t = 0.5). ``None``: adaptive, enough
            that consecutive sub-frames move no point by more than ``max_step_px`` (no ghosting), at least
            9 and at most ``max_subframes``.
        max_step_px: the adaptive rule's largest step between sub-frames, in pixels.
        max_subframes: the cost cap of the adaptive rule (each sub-frame is one warp; an even cap allows
            one more, to stay odd).
        rotation_weight: in-plane rotation's weight relative to translation, drawn from ``[0, w]``; 0.3
            means rotation contributes up to about a quarter of the peak displacement (at the corners).
        zoom_weight: the same for zoom (scale change during the exposure).
        foreground_prob: probability of a moving foreground layer.
        foreground_speed: that layer's own peak displacement, as a multiple of the camera's.
        highlight_prob: probability of boosting light sources above 1 before averaging (light streaks).
        highlight_threshold: sRGB level that EVERY channel must exceed for a pixel to be a light source.
        highlight_gain: the boost of a fully saturated pixel (1 = none).
        highlight_max_size: light sources are blobs narrower than this fraction of the short side; larger
            bright areas (sky, white walls) are not boosted.
        noise: ``((shot_lo, shot_hi), (read_lo, read_hi))``: Poisson-Gaussian noise in linear light,
            variance ``shot * x + read**2``; ``None`` for none (the default: ``noise_rms`` is the camera-like
            model).
        noise_rms: Gaussian noise in 8-bit sRGB levels (RMS range) added to the blurry image after the tone
            curve, drawn for most samples.
        noise_high_prob: the share of samples whose noise is drawn from ``noise_rms_high`` instead.
        noise_rms_high: the noisier minority's RMS range, in 8-bit levels.
        quantize: round the blurry image to 8-bit levels, as a camera delivers it.
        jpeg_prob: probability of re-encoding the blurry image as JPEG.
        jpeg_quality: JPEG quality range (inclusive).
        align: ``"centroid"``: the sharp target sits at the trajectory's mean pose (the blur's centre of
            mass); ``"middle"``: at the middle sub-frame (GoPro's convention; see the module docstring).
        kernel_prob: share of dataset samples made by the independent kernel recipe
            (:mod:`deblurrt.kernels`, streak lengths from ``severity``) instead of sub-frame warps; read by the
            training datasets, not by :func:`synthesize_pair`.
        sharp_prob: share of samples with only ``sharp_px`` of motion (near-sharp frames).
        sharp_px: the near-sharp samples' peak displacement range, in ABSOLUTE pixels.
        gamma_prob: share of samples whose sub-frames are averaged in display (sRGB-encoded) values instead
            of linear light. Linear-light blur brightens an sRGB image (by a median 3.6 levels on 20-60 px
            streaks of photos) and a model trained on it alone learns "blurry, so darken", which it then
            applies to anything soft (real footage, defocused photos); a share of display-space blur, as
            video pipelines that average encoded frames make, takes that cue away.
        defocus_prob: share of samples whose photo is first put partly out of focus (a disk blur in linear
            light, radius from ``defocus_px``, over a smooth random depth mask), in BOTH the blurry image and
            the target: the model sees soft, defocused content that must stay soft, as in every shallow
            depth-of-field photo (without it, it "sharpens" bokeh and soft edges as if they were motion).
        defocus_px: the disk radius range in pixels.
        length_dist: how the peak displacement is drawn from ``severity``'s range: ``"uniform"`` in pixels,
            or ``"log"`` (log-uniform: each octave of streak length equally often, so the short streaks of
            mild blur are not a small minority of a wide range such as 4-80 px).
    """

    severity: str | tuple[float, float] = "moderate"
    reference_size: int | None = REFERENCE_SIZE
    subframes: int | None = None
    max_step_px: float = 1.0
    max_subframes: int = 63
    rotation_weight: float = 0.5
    zoom_weight: float = 0.15
    foreground_prob: float = 0.15
    foreground_speed: tuple[float, float] = (0.5, 1.5)
    highlight_prob: float = 0.1
    highlight_threshold: tuple[float, float] = (0.92, 0.98)
    highlight_gain: tuple[float, float] = (2.0, 10.0)
    highlight_max_size: float = 0.08
    noise: tuple[tuple[float, float], tuple[float, float]] | None = None
    noise_rms: tuple[float, float] = (0.0, 2.0)
    noise_high_prob: float = 0.2
    noise_rms_high: tuple[float, float] = (2.0, 6.0)
    quantize: bool = True
    jpeg_prob: float = 0.1
    jpeg_quality: tuple[int, int] = (60, 95)
    align: str = "centroid"
    kernel_prob: float = 0.0
    sharp_prob: float = 0.0
    sharp_px: tuple[float, float] = (0.0, 3.0)
    length_dist: str = "uniform"
    gamma_prob: float = 0.0
    defocus_prob: float = 0.0
    defocus_px: tuple[float, float] = (1.5, 6.0)

    def __post_init__(self) -> None:
        if isinstance(self.severity, str):
            if self.severity not in SEVERITY_PRESETS:
                raise DeblurrtError(f"unknown blur severity {self.severity!r}. Fix: use one of "
                                    f"{', '.join(SEVERITY_PRESETS)} or a pixel range like (8, 18)")
        else:
            lo, hi = _pair(self.severity, "severity")
            # an infinite max passes 0 <= min <= max and only fails deep in the sub-frame count
            if not (0 <= lo <= hi and math.isfinite(hi)):
                raise DeblurrtError(f"blur severity range {self.severity!r} is not 0 <= min <= max (finite). "
                                    "Fix: give (min_px, max_px), e.g. (8, 18)")
            object.__setattr__(self, "severity", (float(lo), float(hi)))
        if self.reference_size is not None and self.reference_size <= 0:
            raise DeblurrtError(f"reference_size must be positive or None, got {self.reference_size}")
        if self.subframes is not None and self.subframes < 1:
            raise DeblurrtError(f"subframes must be >= 1 or None (adaptive), got {self.subframes}")
        if self.max_step_px <= 0 or self.max_subframes < 1:
            raise DeblurrtError("max_step_px must be > 0 and max_subframes >= 1")
        check_length_dist(self.length_dist)
        if self.align not in ("centroid", "middle"):
            raise DeblurrtError(f"align must be 'centroid' or 'middle', got {self.align!r}")
        for name in ("noise_rms", "noise_rms_high", "sharp_px", "defocus_px"):
            lo, hi = _pair(getattr(self, name), name)
            if not 0 <= lo <= hi:
                raise DeblurrtError(f"{name} {getattr(self, name)!r} must satisfy 0 <= lo <= hi")
        if self.highlight_max_size <= 0:
            raise DeblurrtError(f"highlight_max_size must be > 0, got {self.highlight_max_size}")
        for name in ("foreground_prob", "highlight_prob", "jpeg_prob", "noise_high_prob", "sharp_prob",
                     "kernel_prob", "gamma_prob", "defocus_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise DeblurrtError(f"{name} must be a probability in [0, 1], got {value}")
        if self.rotation_weight < 0 or self.zoom_weight < 0:
            raise DeblurrtError("rotation_weight and zoom_weight must be >= 0")
        q_lo, q_hi = _pair(self.jpeg_quality, "jpeg_quality")
        if not 1 <= q_lo <= q_hi <= 100:
            raise DeblurrtError(f"jpeg_quality {self.jpeg_quality!r} must satisfy 1 <= lo <= hi <= 100")
        if self.noise is not None:
            shot, read = self.noise
            if min(*_pair(shot, "noise shot"), *_pair(read, "noise read")) < 0:
                raise DeblurrtError(f"noise levels must be >= 0, got {self.noise!r}")

    @classmethod
    def preset(cls, severity: str | tuple[float, float] = "moderate", **overrides) -> BlurConfig:
        """The default recipe (noise, highlights, foreground, JPEG) at a severity, with field overrides."""
        return cls(severity=severity, **overrides)

    @classmethod
    def clean(cls, severity: str | tuple[float, float] = "moderate", **overrides) -> BlurConfig:
        """Motion blur only: no noise, highlights, foreground layer, quantisation or JPEG (for tests,
        ablations and the blur-only validation), with field overrides."""
        fields = {"foreground_prob": 0.0, "highlight_prob": 0.0, "noise": None, "noise_rms": (0.0, 0.0),
                  "noise_high_prob": 0.0, "quantize": False, "jpeg_prob": 0.0}
        fields.update(overrides)
        return cls(severity=severity, **fields)

    def with_severity(self, severity: str | tuple[float, float]) -> BlurConfig:
        """A copy at another severity."""
        return replace(self, severity=severity)

    def severity_range_px(self, height: int, width: int) -> tuple[float, float]:
        """The peak displacement range in pixels for a produced image of ``height x width``."""
        lo, hi = SEVERITY_PRESETS[self.severity] if isinstance(self.severity, str) else self.severity
        scale = 1.0 if self.reference_size is None else min(height, width) / self.reference_size
        return lo * scale, hi * scale

    def to_dict(self) -> dict:
        """The fields as a dict, for JSON records (tuples serialise as lists)."""
        return asdict(self)


LENGTH_DISTRIBUTIONS = ("uniform", "log")


def check_length_dist(distribution: str) -> None:
    """Raise a DeblurrtError naming the choices unless ``distribution`` is one of LENGTH_DISTRIBUTIONS."""
    if distribution not in LENGTH_DISTRIBUTIONS:
        raise DeblurrtError(f"length_dist must be one of {', '.join(LENGTH_DISTRIBUTIONS)}, got {distribution!r}")


def draw_length(rng: np.random.Generator, lo: float, hi: float, distribution: str = "uniform") -> float:
    """One streak length from ``[lo, hi]`` pixels, uniform or log-uniform; one draw from ``rng`` either way.

    Log-uniform starts at 1 px when ``lo`` is below (a log scale has no zero); a range entirely below 1 px
    is drawn uniformly.
    """
    if distribution == "uniform":
        return float(rng.uniform(lo, hi))
    check_length_dist(distribution)
    start = max(lo, 1.0)
    if hi <= start:
        return float(rng.uniform(lo, hi))
    return float(np.exp(rng.uniform(np.log(start), np.log(hi))))


def range_values(text: str) -> list[float]:
    """The numbers of a range text: ``LO-HI`` (or ``LO,HI``) gives ``[LO, HI]``, one number ``N`` gives ``[N, N]``;
    anything that is not numbers gives ``[]``. Unchecked: callers apply their own bounds."""
    try:
        values = [float(part) for part in text.strip().replace(",", "-").split("-")]
    except ValueError:
        return []
    return values * 2 if len(values) == 1 else values


def parse_severity(text: str, *, absolute: bool = False) -> str | tuple[float, float]:
    """Parse a command-line severity: a preset name, ``LO-HI`` (e.g. ``8-18``) or one number ``N``.

    A range must be finite with ``0 <= LO <= HI`` and ``0 < HI <= MAX_SEVERITY_PX``; anything else raises a
    :class:`DeblurrtError` that names the accepted forms. ``absolute`` (``data.blur_px``) only changes the
    unit the message gives: pixels of the produced image instead of pixels at a 256-px short side.
    """
    text = text.strip().lower()
    if text in SEVERITY_PRESETS:
        return text
    values = range_values(text)
    # nan fails every comparison, inf fails isfinite: neither reaches the trajectory code, which turns
    # them (and values like 1e9) into an OverflowError or a NaN sub-frame count
    if len(values) != 2 or not all(math.isfinite(v) for v in values) or \
            not 0 <= values[0] <= values[1] or not 0 < values[1] <= MAX_SEVERITY_PX:
        unit = "pixels of the produced image" if absolute else \
            f"pixels at a {REFERENCE_SIZE}-px short side, scaled with the image"
        raise DeblurrtError(f"bad severity {text!r}: expected {', '.join(SEVERITY_PRESETS)}, one number N or a "
                            f"range LO-HI with 0 <= LO <= HI and 0 < HI <= {MAX_SEVERITY_PX:g} ({unit}). "
                            "Fix: e.g. 8-18")
    return values[0], values[1]


def _pair(value, name: str) -> tuple[float, float]:
    try:
        lo, hi = value
        return float(lo), float(hi)
    except (TypeError, ValueError) as error:
        raise DeblurrtError(f"{name} must be a pair (lo, hi), got {value!r}") from error


# --------------------------------------------------------------------------------------------- tone curve

def _pow(x: np.ndarray, exponent: float) -> np.ndarray:
    """Elementwise power through OpenCV (SIMD, a few times faster than numpy's float32 power), any shape."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 1)
    if flat.size == 0:  # OpenCV returns None for an empty array
        return flat.reshape(x.shape)
    return cv2.pow(flat, exponent).reshape(x.shape)


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """Undo the sRGB transfer curve (IEC 61966-2-1), float32 out. Values above 1 follow the curve's formula
    (so boosted highlights survive a round trip); negative values clip to 0. uint8 / uint16 input is
    scaled to [0, 1] and converted exactly through a lookup table."""
    image = np.asarray(image)
    if image.dtype in (np.uint8, np.uint16):
        return _linear_lut(image.dtype)[image]
    x = np.maximum(image.astype(np.float32, copy=False), np.float32(0.0))
    out = x + np.float32(0.055)
    out *= np.float32(1 / 1.055)
    out = _pow(out, 2.4)
    low = x <= np.float32(0.04045)
    np.copyto(out, x * np.float32(1 / 12.92), where=low)
    return out


def linear_to_srgb(image: np.ndarray) -> np.ndarray:
    """Apply the sRGB transfer curve; the inverse of :func:`srgb_to_linear` (to float32 rounding, < 1e-6).
    float32 out; negative values clip to 0."""
    x = np.maximum(np.asarray(image).astype(np.float32, copy=False), np.float32(0.0))
    out = _pow(x, 1 / 2.4)
    out *= np.float32(1.055)
    out -= np.float32(0.055)
    low = x <= np.float32(0.0031308)
    np.copyto(out, x * np.float32(12.92), where=low)
    return out


_LUTS: dict[np.dtype, np.ndarray] = {}


def _linear_lut(dtype: np.dtype) -> np.ndarray:
    """Linear value of every 8-bit or 16-bit code, computed once per process."""
    dtype = np.dtype(dtype)
    if dtype not in _LUTS:
        top = np.iinfo(dtype).max
        _LUTS[dtype] = srgb_to_linear(np.arange(top + 1, dtype=np.float32) / np.float32(top))
    return _LUTS[dtype]


# ------------------------------------------------------------------------------------------- trajectories

def _inertial_walk(rng: np.random.Generator, steps: int, dims: int) -> np.ndarray:
    """Positions of a random walk whose velocity is an AR(1) process with random inertia and rare jerks.

    High inertia gives nearly straight sweeps, low inertia jittery hand tremor; jerks give the sudden turns
    of real shake kernels. Returns ``(steps, dims)``.
    """
    inertia = float(rng.uniform(0.6, 0.98))
    kicks = rng.standard_normal((steps, dims))
    jerks = rng.random(steps) < 0.05
    kicks[jerks] *= 4.0
    kicks[0] *= 3.0  # the initial velocity: most shake has a dominant direction
    # a plain loop over Python floats: small, and free of BLAS, whose threading could change the last bit
    velocity = [0.0] * dims
    position = [0.0] * dims
    positions = np.empty((steps, dims))
    for k, kick in enumerate(kicks.tolist()):
        for d in range(dims):
            velocity[d] = inertia * velocity[d] + kick[d]
            position[d] += velocity[d]
        positions[k] = position
    return positions


def _corners(height: int, width: int) -> np.ndarray:
    """The four corners relative to the image centre, ``(4, 2)`` as (x, y)."""
    hx, hy = (width - 1) / 2.0, (height - 1) / 2.0
    return np.array([[-hx, -hy], [hx, -hy], [-hx, hy], [hx, hy]])


def _displacements(trajectory: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Exact displacement of each point at each time, ``(T, P, 2)``, for rows ``(dx, dy, theta, log_scale)``:
    ``x(t) = s R(theta) p + d``."""
    dx, dy, theta, log_scale = trajectory.T
    scale = np.exp(log_scale)
    cos, sin = scale * np.cos(theta), scale * np.sin(theta)
    px, py = points[:, 0], points[:, 1]
    x = cos[:, None] * px - sin[:, None] * py + dx[:, None]
    y = sin[:, None] * px + cos[:, None] * py + dy[:, None]
    return np.stack([x - px, y - py], axis=-1)


def _diameter(displacements: np.ndarray) -> float:
    """Largest distance between two time samples of the same point (the streak length), over all points."""
    diff = displacements[:, None] - displacements[None, :]
    return float(np.sqrt((diff ** 2).sum(-1)).max())


def _path_length(displacements: np.ndarray) -> float:
    """Longest path travelled by any point."""
    steps = np.sqrt((np.diff(displacements, axis=0) ** 2).sum(-1))
    return float(steps.sum(0).max())


def shake_trajectory(rng: np.random.Generator, peak_px: float, size: tuple[int, int], *,
                     rotation_weight: float = 0.3, zoom_weight: float = 0.15,
                     steps: int = _FINE_STEPS, n: int | None = None) -> np.ndarray:
    """A random camera-shake trajectory over the exposure, ``(steps, 4)`` rows ``(dx, dy, theta, log_scale)``
    at times ``linspace(0, 1, steps)``, relative to t = 0.5 (where it is exactly the identity); with ``n``,
    resampled to ``n`` sub-frames (:func:`resample_trajectory`).

    A point ``p`` (pixels relative to the image centre) is seen at ``exp(log_scale) R(theta) p + (dx, dy)``.
    The trajectory is scaled so that its peak displacement (the longest streak over the frame of
    ``size = (height, width)``) is ``peak_px``.
    """
    trajectory = _shake(rng, peak_px, size, rotation_weight, zoom_weight, steps)
    return trajectory if n is None else resample_trajectory(trajectory, n)


def _shake(rng: np.random.Generator, peak_px: float, size: tuple[int, int], rotation_weight: float,
           zoom_weight: float, steps: int) -> np.ndarray:
    height, width = size
    translation = _inertial_walk(rng, steps, 2)
    rotation = _inertial_walk(rng, steps, 1)[:, 0]
    zoom = _inertial_walk(rng, steps, 1)[:, 0]
    w_rot = rng.uniform(0.0, rotation_weight)
    w_zoom = rng.uniform(0.0, zoom_weight)
    trajectory = np.zeros((steps, 4))
    if peak_px <= 0:
        return trajectory
    corners = _corners(height, width)
    radius = float(np.hypot(*corners[0])) or 1.0
    # each component on its own paints a streak of length 1 (rotation/zoom: at the corners), then weighted
    trajectory[:, :2] = translation / max(_diameter(translation[:, None, :]), 1e-12)
    trajectory[:, 2] = w_rot * rotation / max(np.ptp(rotation), 1e-12) / radius
    trajectory[:, 3] = w_zoom * zoom / max(np.ptp(zoom), 1e-12) / radius
    middle = np.array([np.interp(0.5, np.linspace(0, 1, steps), column) for column in trajectory.T])
    trajectory -= middle
    # displacement is linear in the parameters to first order (sin x ~ x, e^x ~ 1 + x): one rescale gets
    # within a fraction of a percent, a second fixes the residual of the large-angle terms
    for _ in range(2):
        current = _diameter(_displacements(trajectory, corners))
        if current <= 1e-12:
            break
        trajectory *= peak_px / current
    return trajectory


def resample_trajectory(trajectory: np.ndarray, n: int) -> np.ndarray:
    """Sample a trajectory (rows at ``linspace(0, 1, len)``) at ``n`` evenly spaced times. With ``n`` odd
    the middle sample is exactly t = 0.5."""
    source_t = np.linspace(0.0, 1.0, len(trajectory))
    target_t = np.linspace(0.0, 1.0, n) if n > 1 else np.array([0.5])
    return np.stack([np.interp(target_t, source_t, column) for column in trajectory.T], axis=1)


def _subframe_count(config: BlurConfig, trajectories: list[np.ndarray], corners: np.ndarray) -> int:
    if config.subframes is not None:
        n = config.subframes
    else:
        longest = max(_path_length(_displacements(t, corners)) for t in trajectories)
        n = min(max(math.ceil(longest / config.max_step_px) + 1, _MIN_SUBFRAMES), config.max_subframes)
    return n if n % 2 == 1 else n + 1


def _inverse_matrix(row: np.ndarray, centre: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The 2x3 map from output pixel to source pixel for one sub-frame (for ``WARP_INVERSE_MAP``)."""
    dx, dy, theta, log_scale = row
    inv_scale = math.exp(-log_scale)
    cos, sin = inv_scale * math.cos(theta), inv_scale * math.sin(theta)
    linear = np.array([[cos, sin], [-sin, cos]])  # (s R(theta))^-1
    shift = centre + offset - linear @ (centre + np.array([dx, dy]))
    return np.hstack([linear, shift[:, None]])


# ---------------------------------------------------------------------------------------------- synthesis

@dataclass
class _Foreground:
    """A soft-masked patch (linear RGB + mask as a 4th channel) moving with its own trajectory."""

    layer: np.ndarray  # (h, w, 4) float32: linear RGB premultiplied by the mask, mask in channel 3
    sharp_layer: np.ndarray  # the same without highlight boost, for the sharp target
    origin: np.ndarray  # top-left of the patch in output coordinates at t = 0.5
    trajectory: np.ndarray  # its own motion, on top of the camera's


def light_source_gain(srgb: np.ndarray, threshold: float, gain: float, max_size_px: float) -> np.ndarray:
    """Per-pixel boost factor ``(H, W)`` for light sources: pixels whose EVERY channel is near clipping (a
    smooth ramp from ``threshold`` to 1, up to ``gain``), in blobs narrower than ``max_size_px``.

    A saturated colour (one channel clipped) is not a light source, nor a large white area (sky, a wall): a
    morphological opening finds the bright regions that a disc of ``max_size_px`` fits into and removes them.
    """
    level = srgb.min(axis=2)
    ramp = np.clip((level - np.float32(threshold)) / np.float32(max(1.0 - threshold, 1e-6)), 0.0, 1.0)
    bright = (ramp > 0).astype(np.uint8)
    diameter = max(int(round(max_size_px)), 3) | 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
    large = cv2.dilate(cv2.morphologyEx(bright, cv2.MORPH_OPEN, disc), np.ones((3, 3), np.uint8))
    ramp[large > 0] = 0.0
    return 1.0 + np.float32(gain - 1.0) * ramp * ramp


def _make_foreground(rng: np.random.Generator, source_linear: np.ndarray, sharp_linear: np.ndarray,
                     out_hw: tuple[int, int], peak_px: float) -> _Foreground:
    height, width = out_hw
    src_h, src_w = source_linear.shape[:2]
    short = min(height, width)
    ph = int(min(max(rng.uniform(0.2, 0.45) * short, 8), src_h))
    pw = int(min(max(ph * rng.uniform(0.6, 1.6), 8), src_w))
    y0 = int(rng.integers(0, src_h - ph + 1))
    x0 = int(rng.integers(0, src_w - pw + 1))
    yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
    # a soft ellipse: 1 inside, smooth falloff over ~15 % of the radius (real object edges blur too)
    r = np.sqrt(((xx - (pw - 1) / 2) / (pw / 2)) ** 2 + ((yy - (ph - 1) / 2) / (ph / 2)) ** 2)
    mask = np.clip((1.0 - r) / 0.15, 0.0, 1.0).astype(np.float32)
    patch = source_linear[y0:y0 + ph, x0:x0 + pw]
    sharp_patch = sharp_linear[y0:y0 + ph, x0:x0 + pw]
    origin = np.array([rng.uniform(-pw / 2, width - pw / 2), rng.uniform(-ph / 2, height - ph / 2)])
    own = shake_trajectory(rng, peak_px, (ph, pw), rotation_weight=0.0, zoom_weight=0.0)
    # premultiplied by the mask: bilinear warps then blend colour and coverage consistently, even where
    # they sample the zero border around the patch
    premultiplied = mask[..., None]
    return _Foreground(np.dstack([patch * premultiplied, mask]), np.dstack([sharp_patch * premultiplied, mask]),
                       origin, own)


def _foreground_matrix(camera_row: np.ndarray, fg_row: np.ndarray, centre: np.ndarray,
                       origin: np.ndarray) -> np.ndarray:
    """Output pixel -> patch pixel: undo the camera, then the object's own translation and placement."""
    to_reference = _inverse_matrix(camera_row, centre, np.zeros(2))
    to_reference[:, 2] -= origin + fg_row[:2]
    return to_reference


def _foreground_roi(camera_rows: np.ndarray, fg_rows: np.ndarray, foreground: _Foreground,
                    centre: np.ndarray, out_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The output region ``(x0, y0, x1, y1)`` the moving patch ever touches, so that its warps and
    composites cost the patch's area, not the frame's. ``None`` if it never enters the frame."""
    ph, pw = foreground.layer.shape[:2]
    patch_corners = np.array([[0, 0], [pw, 0], [0, ph], [pw, ph]], dtype=np.float64) - 0.5
    xs, ys = [], []
    for camera_row, fg_row in zip(camera_rows, fg_rows, strict=True):
        dx, dy, theta, log_scale = camera_row
        scale = math.exp(log_scale)
        rotation = scale * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        reference = patch_corners + foreground.origin + fg_row[:2]
        seen = (reference - centre) @ rotation.T + centre + np.array([dx, dy])
        xs.append(seen[:, 0])
        ys.append(seen[:, 1])
    # one pixel of slack for the bilinear footprint
    x0 = max(int(math.floor(np.min(xs))) - 1, 0)
    y0 = max(int(math.floor(np.min(ys))) - 1, 0)
    x1 = min(int(math.ceil(np.max(xs))) + 2, out_hw[1])
    y1 = min(int(math.ceil(np.max(ys))) + 2, out_hw[0])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _composite_roi(frame: np.ndarray, layer: np.ndarray, matrix: np.ndarray,
                   roi: tuple[int, int, int, int]) -> np.ndarray:
    """Paste the warped layer over ``frame`` inside ``roi`` (a copy; the frame may be a view of the source)."""
    x0, y0, x1, y1 = roi
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)  # ROI pixel -> output pixel
    warped = _warp(layer, shifted, (y1 - y0, x1 - x0), cv2.BORDER_CONSTANT)
    out = frame.copy()
    out[y0:y1, x0:x1] = _composite(frame[y0:y1, x0:x1], warped)
    return out


def _warp(image: np.ndarray, matrix: np.ndarray, out_hw: tuple[int, int], border: int) -> np.ndarray:
    return cv2.warpAffine(image, matrix, (out_hw[1], out_hw[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=border, borderValue=0)


def _composite(background: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Over-composite a premultiplied RGBA layer."""
    return background * (1.0 - layer[..., 3:4]) + layer[..., :3]


def _to_uint8(image01: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image01 * 255.0), 0, 255).astype(np.uint8)


def _as_float01(image: np.ndarray, name: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise DeblurrtError(f"{name} must be HxWx3 RGB, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535.0)
    return np.clip(image.astype(np.float32, copy=False), 0.0, 1.0)


def synthesize_pair(sharp_rgb01: np.ndarray, seed: Seed, config: BlurConfig | None = None, *,
                    out_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Synthesise a (blurry, sharp) pair from a sharp RGB image.

    Args:
        sharp_rgb01: ``H x W x 3`` RGB, float in [0, 1] (uint8/uint16 are scaled).
        seed: an int (or sequence of ints / ``SeedSequence``) for ``np.random.default_rng``; the same
            ``(image, seed, config, out_size)`` gives bit-identical output.
        config: the recipe; default ``BlurConfig()`` (moderate).
        out_size: ``(height, width)`` of the produced pair, a centre crop of the input. Give the input a
            margin of about the peak displacement on each side and the warps never see past its border
            (otherwise the border is reflected). Default: the input size.

    Returns:
        ``(blurry, sharp)``, float32 ``out_h x out_w x 3`` in [0, 1]. ``sharp`` is the (centre-cropped)
        input itself unless a foreground layer was pasted on it or light sources were boosted (then it shows
        the same clipped light as the blurry image).
    """
    blurry, sharp, _ = _synthesize(sharp_rgb01, seed, config, out_size)
    return blurry, sharp


def synthesize_pair_and_kernel(sharp_rgb01: np.ndarray, seed: Seed, config: BlurConfig | None = None, *,
                               out_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`synthesize_pair` plus the blur kernel at the centre of the pair, ``(blurry, sharp, kernel)``.

    The kernel is where the camera shake carried the centre pixel during the exposure, rasterised as the
    kernel recipe does (:func:`deblurrt.kernels.rasterize`: odd square, sums to 1, centred on its centre of
    mass). Away from the centre, roll and zoom bend and stretch it, and a moving foreground has its own; it
    is the pair's blur where the blur is one kernel, a training signal (what shape to undo), not a model of
    the whole frame. Same seed, same pair as :func:`synthesize_pair`.
    """
    from deblurrt.kernels import rasterize  # deblurrt.kernels imports this module

    blurry, sharp, centre_path = _synthesize(sharp_rgb01, seed, config, out_size)
    return blurry, sharp, rasterize(centre_path)


def _synthesize(sharp_rgb01: np.ndarray, seed: Seed, config: BlurConfig | None,
                out_size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pair and the centre pixel's path over the sub-frames, ``(n, 2)`` (x, y) displacements."""
    config = config or BlurConfig()
    source = _as_float01(sharp_rgb01, "sharp_rgb01")
    raw = np.asarray(sharp_rgb01)
    # integer photos convert to linear light through an exact lookup table, the fast path for datasets
    linear = srgb_to_linear(raw if raw.dtype in (np.uint8, np.uint16) else source)
    src_h, src_w = source.shape[:2]
    out_h, out_w = out_size if out_size is not None else (src_h, src_w)
    if not (0 < out_h <= src_h and 0 < out_w <= src_w):
        raise DeblurrtError(f"out_size {out_size} must be positive and fit in the {src_h}x{src_w} input")
    top, left = (src_h - out_h) // 2, (src_w - out_w) // 2
    sharp_srgb = source[top:top + out_h, left:left + out_w]

    rng = np.random.default_rng(seed)
    # draw every random choice up front, in a fixed order and whether or not it is used, so options never
    # shift each other's streams: the camera trajectory depends on seed, severity, size and rotation/zoom
    # weights only, and a clean and a full recipe with one seed blur the same way (ablations)
    lo, hi = config.severity_range_px(out_h, out_w)
    peak = draw_length(rng, lo, hi, config.length_dist)
    camera = shake_trajectory(rng, peak, (out_h, out_w), rotation_weight=config.rotation_weight,
                              zoom_weight=config.zoom_weight)
    use_highlights = rng.random() < config.highlight_prob
    threshold = rng.uniform(*config.highlight_threshold)
    gain = rng.uniform(*config.highlight_gain)
    use_foreground = rng.random() < config.foreground_prob
    fg_rng = np.random.default_rng(rng.integers(0, 2**63))
    shot_u, read_u = rng.random(2)
    shot = config.noise[0][0] + shot_u * (config.noise[0][1] - config.noise[0][0]) if config.noise else 0.0
    read = config.noise[1][0] + read_u * (config.noise[1][1] - config.noise[1][0]) if config.noise else 0.0
    noise_seed = rng.integers(0, 2**63)
    use_jpeg = rng.random() < config.jpeg_prob
    quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))

    # drawn after everything above, so that the older options keep their random streams
    near_sharp = rng.random() < config.sharp_prob
    sharp_peak = float(rng.uniform(*config.sharp_px))
    high_noise = rng.random() < config.noise_high_prob
    noise_rms = float(rng.uniform(*(config.noise_rms_high if high_noise else config.noise_rms)))
    srgb_noise_seed = rng.integers(0, 2**63)
    display_space = rng.random() < config.gamma_prob
    defocused = rng.random() < config.defocus_prob
    defocus_seed = rng.integers(0, 2**63)
    if defocused:
        # part of the scene out of focus: the photo itself changes, so the target shows it too
        linear = defocus(linear, np.random.default_rng(defocus_seed), config.defocus_px)
        source = linear_to_srgb(linear)
        sharp_srgb = source[top:top + out_h, left:left + out_w]
    if display_space:
        # average the encoded values: the "light" is the sRGB image itself and encoding is the identity
        linear = source
    encode = _identity if display_space else linear_to_srgb
    if near_sharp:
        # displacement is linear in the trajectory to first order: rescale the same shape to the short streak
        camera = camera * (sharp_peak / peak) if peak > 0 else camera
        peak = sharp_peak

    emitted = linear
    boosted = None
    if use_highlights:
        factor = light_source_gain(source, threshold, gain, config.highlight_max_size * min(out_h, out_w))
        if (factor > 1.0).any():
            emitted = linear * factor[..., None]
            boosted = factor > 1.0
    foreground = None
    if use_foreground and peak > 0:
        own_peak = peak * fg_rng.uniform(*config.foreground_speed)
        # the target shows the same (clipped) light as the exposure
        foreground = _make_foreground(fg_rng, emitted, np.minimum(emitted, 1.0), (out_h, out_w), own_peak)

    corners = _corners(out_h, out_w)
    centre = np.array([(out_w - 1) / 2.0, (out_h - 1) / 2.0])
    offset = np.array([float(left), float(top)])
    tracks = [camera] + ([foreground.trajectory] if foreground is not None else [])
    n = _subframe_count(config, tracks, corners)
    camera_rows = _aligned_rows(camera, n, config.align)
    fg_rows = _aligned_rows(foreground.trajectory, n, config.align) if foreground is not None else None
    roi = None
    if fg_rows is not None:
        roi = _foreground_roi(camera_rows, fg_rows, foreground, centre, (out_h, out_w))
    accumulator = np.zeros((out_h, out_w, 3), np.float32)
    for i in range(n):
        if not camera_rows[i].any():
            frame = emitted[top:top + out_h, left:left + out_w]  # identity: skip the resampling
        else:
            frame = _warp(emitted, _inverse_matrix(camera_rows[i], centre, offset), (out_h, out_w),
                          cv2.BORDER_REFLECT)
        if roi is not None:
            matrix = _foreground_matrix(camera_rows[i], fg_rows[i], centre, foreground.origin)
            frame = _composite_roi(frame, foreground.layer, matrix, roi)
        accumulator += frame
    blurry = accumulator * np.float32(1.0 / n)
    np.clip(blurry, 0.0, 1.0, out=blurry)  # the sensor saturates: streaks of boosted lights clip here

    if shot > 0 or read > 0:
        noise_rng = np.random.default_rng(noise_seed)
        sigma = np.sqrt(blurry * np.float32(shot) + np.float32(read * read))
        blurry += sigma * noise_rng.standard_normal(blurry.shape, dtype=np.float32)
        np.clip(blurry, 0.0, 1.0, out=blurry)
    blurry = encode(blurry)
    if noise_rms > 0:
        noise_rng = np.random.default_rng(srgb_noise_seed)
        blurry += np.float32(noise_rms / 255.0) * noise_rng.standard_normal(blurry.shape, dtype=np.float32)
    np.clip(blurry, 0.0, 1.0, out=blurry)

    if use_jpeg:
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(_to_uint8(blurry), cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise DeblurrtError("OpenCV could not JPEG-encode the blurry image")
        decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
        blurry = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(np.float32) / np.float32(255.0)
    elif config.quantize:
        blurry = np.rint(blurry * np.float32(255.0)) / np.float32(255.0)

    sharp = sharp_srgb.copy()
    if boosted is not None:
        # the target is rendered from the same boosted light, clipped by the same sensor
        inner = boosted[top:top + out_h, left:left + out_w]
        lit = np.minimum(emitted[top:top + out_h, left:left + out_w][inner], 1.0)
        sharp[inner] = np.clip(encode(lit), 0.0, 1.0)
    if roi is not None:
        zero = np.zeros(4)
        matrix = _foreground_matrix(zero, zero, centre, foreground.origin)
        background = np.minimum(emitted[top:top + out_h, left:left + out_w], 1.0)
        pasted = _composite_roi(background, foreground.sharp_layer, matrix, roi)
        # only the region the layer touches goes through the tone curve; the rest stays bit-exact
        x0, y0, x1, y1 = roi
        sharp[y0:y1, x0:x1] = np.clip(encode(pasted[y0:y1, x0:x1]), 0.0, 1.0)
    return (blurry.astype(np.float32, copy=False), sharp.astype(np.float32, copy=False),
            camera_rows[:, :2])

def disk_kernel(radius: float) -> np.ndarray:
    """A normalised disk (a defocused lens's point spread), anti-aliased at its rim by 4x supersampling."""
    half = int(math.ceil(radius))
    fine = (np.arange(-half * 4, half * 4 + 4) + 0.5) / 4.0 - 0.5
    yy, xx = np.meshgrid(fine, fine, indexing="ij")
    inside = (xx * xx + yy * yy <= radius * radius).astype(np.float32)
    size = 2 * half + 1
    kernel = inside[:size * 4, :size * 4].reshape(size, 4, size, 4).mean(axis=(1, 3))
    return kernel / kernel.sum()


def defocus(linear: np.ndarray, rng: np.random.Generator, radius_px: tuple[float, float]) -> np.ndarray:
    """``linear`` (``H x W x 3``, linear light) partly out of focus: a disk blur of a random radius blended
    in over a smooth random depth mask (from all-defocused to a soft-edged patch), as a shallow depth of
    field renders a scene."""
    height, width = linear.shape[:2]
    radius = float(rng.uniform(*radius_px))
    blurred = cv2.filter2D(linear, -1, disk_kernel(radius), borderType=cv2.BORDER_REFLECT)
    coarse = rng.standard_normal((3, 3)).astype(np.float32)
    depth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    level, steepness = float(rng.uniform(-1.5, 1.0)), float(rng.uniform(2.0, 8.0))
    mask = 1.0 / (1.0 + np.exp(-steepness * (depth - level)))
    return linear + (blurred - linear) * mask[..., None].astype(np.float32)


def _identity(image: np.ndarray) -> np.ndarray:
    return image


def _aligned_rows(trajectory: np.ndarray, n: int, align: str) -> np.ndarray:
    """The trajectory at ``n`` sub-frames, shifted so that the target pose is exactly the identity: the mean
    pose (``"centroid"``; displacement is linear in the rows to first order, so every point's streak is
    centred on it) or the middle sub-frame (``"middle"``, n odd)."""
    rows = resample_trajectory(trajectory, n)
    if align == "centroid":
        rows -= rows.mean(axis=0)
    else:
        rows -= rows[n // 2]
        rows[n // 2] = 0.0  # exactly the identity, without round-off
    return rows


def average_frames(frames: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The GoPro recipe: a blurry frame as the linear-light average of consecutive sharp high-speed frames.

    Args:
        frames: ``H x W x 3`` RGB frames, float in [0, 1] (uint8/uint16 are scaled), all the same size.

    Returns:
        ``(blurry, sharp)`` float32 in [0, 1]; ``sharp`` is the middle frame (``frames[len // 2]``; for an
        even count that is the later of the two middle frames).
    """
    if len(frames) == 0:
        raise DeblurrtError("average_frames needs at least one frame")
    images = [_as_float01(frame, f"frame {i}") for i, frame in enumerate(frames)]
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise DeblurrtError(f"average_frames needs frames of one size, got {sorted(shapes)}")
    accumulator = np.zeros_like(images[0])
    for image in images:
        accumulator += srgb_to_linear(image)
    blurry = np.clip(linear_to_srgb(accumulator / np.float32(len(images))), 0.0, 1.0)
    return blurry.astype(np.float32), images[len(images) // 2].copy()
