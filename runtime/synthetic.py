"""A shaky virtual camera over a still scene: blurry frames together with their sharp truth.

The camera pans slowly over the scene along a smooth (Lissajous) path; every frame is one exposure during
which the camera shakes (a hand-shake trajectory from :mod:`deblurrt.synthesis`, the recipe the
models are trained on), integrated in linear light, with saturating light sources (small blobs near white,
boosted above it, by the training recipe's rule: the truth shows them clipped) and Poisson-Gaussian sensor
noise where the recipe sets one (``BlurConfig.noise``; none by default, so live PSNR measures deblurring
alone). The sharp truth is the scene crop at the exposure's mean position (the blur's centre of mass, the
convention the models are trained and validated on), pixel-aligned with the blurry frame, so live PSNR can be
measured. That module is numpy + OpenCV only, so the runtime stays torch-free.

Two renderers (``synthetic://?render=fast|exact``):

``fast`` (default, >= 60 FPS at 640x360 on one core)
    Translation-only shake. For a pure translation the average of the bilinearly warped sub-frames IS a
    convolution of the (linear-light) scene with the motion kernel: the trajectory splatted bilinearly onto
    the pixel grid (:func:`motion_kernel`; tested against explicit warps). The kernel is applied with
    ``cv2.filter2D`` in blocks of at most 11x11 (:func:`blur_with_kernel`): OpenCV's direct path only visits
    non-zero taps, while larger kernels go through a DFT that costs ~8-10 ms whatever the sparsity. What a
    still scene never changes is computed once per camera: the linear-light scene with its light sources
    boosted, a noise field (each frame reads it at a seeded offset) and the linear -> 8-bit sRGB table.
``exact``
    :func:`~deblurrt.synthesis.synthesize_pair` per frame: shake with in-plane rotation and zoom
    (spatially varying blur), one warp per sub-frame; ~3-5x slower (~20 FPS at 640x360 "moderate").

A photo smaller than the frame plus the shake margin and some room to pan (1.3x that) is upscaled to cover
it, keeping its aspect ratio (bicubic), and the camera says so once (a warning on the
``deblurrt.runtime.synthetic`` logger; the text is also :attr:`SyntheticCamera.scale_note`). Upscaling
softens the photo: the truth is then the upscaled photo, so live PSNR stays consistent but the scene has
less fine detail than a native-resolution one.

``bursts=P&burst=N`` makes a camera that is mostly still: frames are sharp (the exposure is the truth) except
for bursts of N shaken frames, a share P of all frames (:meth:`SyntheticOptions.is_blurry` labels each frame),
the stream that ``--skip-sharp`` is measured on.

Without a photo a procedural textured scene is drawn (shapes, stripes, text, fine texture, a few bright
lights), so ``synthetic://`` needs no files. Everything is seeded: the same URI gives the same frames, and
frame ``i`` depends only on ``(seed, i)``, not on which frames were rendered before.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError

log = logging.getLogger("deblurrt.runtime.synthetic")

SEVERITIES = ("mild", "moderate", "severe")
# room to pan: the scene is this much larger than the frame plus the shake margin on each axis
_PAN_ROOM = 1.3
RENDERS = ("fast", "exact")
# OpenCV filters kernels from about 11x11 up through a DFT (cost independent of sparsity); smaller ones
# directly, visiting only the non-zero taps. Motion kernels are thin curves: blocks keep them sparse.
_BLOCK = 11
# trajectory samples per pixel of path when splatting the kernel: dense enough that no ghosting
# remains (the exact renderer steps <= 1 px between sub-frames; 0.25 px is finer still)
_KERNEL_STEP_PX = 0.25
# the noise field is this many pixels larger than a frame on each side; frames read it at seeded offsets
_NOISE_PAD = 48


def procedural_scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A textured BGR uint8 scene of ``height x width``: what deblurring needs to show (edges, text, texture)."""
    rng = np.random.default_rng(seed)
    # a smooth colour gradient background
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([
        80 + 60 * np.sin(xx / width * math.pi * 2 + rng.uniform(0, 6)),
        90 + 50 * np.cos(yy / height * math.pi * 1.5 + rng.uniform(0, 6)),
        100 + 40 * np.sin((xx + yy) / (width + height) * math.pi * 3),
    ], axis=-1)
    # fine texture (like foliage or fabric): band-limited noise
    texture = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 1.2)
    scene = np.clip(base + 40 * texture[..., None], 0, 255).astype(np.uint8)
    area = height * width
    for _ in range(max(8, area // 12000)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 4)
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(max(4, min(height, width) // 40), max(8, min(height, width) // 6)))
        if kind == 0:
            cv2.rectangle(scene, (x, y), (x + size, y + int(size * rng.uniform(0.4, 1.6))), colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.circle(scene, (x, y), size // 2, colour, -1, cv2.LINE_AA)
        elif kind == 2:
            cv2.line(scene, (x, y), (x + int(rng.integers(-size, size)) * 2, y + int(rng.integers(-size, size))),
                     colour, int(rng.integers(1, 4)), cv2.LINE_AA)
        else:  # a striped patch: a stress test for deblurring (aliasing-like detail)
            patch = scene[y:y + size, x:x + size]
            stripes = (np.arange(patch.shape[1]) // int(rng.integers(2, 6))) % 2
            patch[:, stripes.astype(bool)] = colour
    for _ in range(max(3, area // 60000)):
        text = "".join(rng.choice(list("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"), int(rng.integers(4, 9))))
        scale = float(rng.uniform(0.5, 1.6))
        org = (int(rng.integers(0, max(1, width - 120))), int(rng.integers(20, max(21, height - 5))))
        colour = (255, 255, 255) if rng.random() < 0.5 else (20, 20, 20)
        cv2.putText(scene, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, int(scale * 2)), cv2.LINE_AA)
    for _ in range(max(2, area // 150000)):  # small lamps: bright spots that paint light streaks when shaken
        cv2.circle(scene, (int(rng.integers(0, width)), int(rng.integers(0, height))), int(rng.integers(2, 5)),
                   (250, 250, 255), -1, cv2.LINE_AA)
    return scene


@dataclass(frozen=True)
class SyntheticOptions:
    """Parsed ``synthetic://[photo]?size=WxH&fps=30&severity=moderate&seed=0&frames=N&live=1&render=fast``.

    ``live`` (default on) paces the camera at ``fps`` like a real one: a frame not taken before the next is
    dropped (and counted), so the latency measured is a camera's. ``live=0`` delivers every frame as fast as
    it renders (deterministic; for tests and throughput runs, where the end-to-end latency then includes
    the time a frame waits behind the earlier ones).
    ``&bursts=P&burst=N``: mostly sharp frames with blurry bursts, see :meth:`is_blurry`."""

    photo: Path | None = None
    size: tuple[int, int] = (640, 360)  # width, height (as on the command line)
    fps: float = 30.0
    severity: str = "moderate"
    seed: int = 0
    frames: int | None = None
    live: bool = True
    render: str = "fast"
    bursts: float | None = None  # share of frames in blurry bursts; None: every frame is blurry
    burst: int = 12  # frames per burst

    def is_blurry(self, index: int) -> bool:
        """Whether frame ``index`` is shaken (True for every frame unless ``bursts`` is set).

        With ``bursts=p`` the stream is sharp except for bursts of ``burst`` consecutive blurry frames, one
        burst every ``round(burst / p)`` frames (the first after a sharp stretch), so a share ``p`` is blurry:
        a camera that is mostly still and sometimes shaken, with every frame's label known."""
        if self.bursts is None:
            return True
        if self.bursts <= 0.0:
            return False
        period = max(self.burst, round(self.burst / self.bursts))
        return index % period >= period - self.burst


def parse_synthetic_uri(uri: str) -> SyntheticOptions:
    """Parse a ``synthetic://`` URI; raises :class:`DeblurrtError` naming the bad part and the valid form."""
    body = uri[len("synthetic://"):]
    path_text, _, query = body.partition("?")
    values: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        if not sep:
            raise DeblurrtError(f"bad synthetic:// option {item!r}: options are key=value joined by '&'")
        values[key.strip().lower()] = value.strip()
    allowed = {"size", "fps", "severity", "seed", "frames", "live", "render", "bursts", "burst"}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise DeblurrtError(f"unknown synthetic:// option(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))} "
                            "(e.g. synthetic://?size=640x360&fps=30&severity=moderate)")
    try:
        width, height = (int(v) for v in values.get("size", "640x360").lower().split("x"))
        fps = float(values.get("fps", "30"))
        seed = int(values.get("seed", "0"))
        frames = int(values["frames"]) if "frames" in values else None
        bursts = float(values["bursts"]) if "bursts" in values else None
        burst = int(values.get("burst", "12"))
    except ValueError as error:
        raise DeblurrtError(f"bad synthetic:// option in {uri!r} ({error}); expected size=WxH, fps=N, seed=N, "
                            "frames=N, bursts=0..1, burst=N") from error
    if (bursts is not None and not 0.0 <= bursts <= 1.0) or burst < 1:
        raise DeblurrtError(f"synthetic:// needs 0 <= bursts <= 1 (the blurry share) and burst >= 1 (frames per "
                            f"burst); received {uri!r}. Fix: e.g. synthetic://?bursts=0.2&burst=12")
    if width < 16 or height < 16 or fps <= 0 or (frames is not None and frames < 0):
        raise DeblurrtError(f"synthetic:// needs size >= 16x16, fps > 0, frames >= 0; received {uri!r}")
    severity = values.get("severity", "moderate").lower()
    if severity not in SEVERITIES:
        raise DeblurrtError(f"synthetic:// severity must be one of {', '.join(SEVERITIES)}, received {severity!r}")
    live_text = values.get("live", "1").lower()
    if live_text not in ("1", "true", "yes", "0", "false", "no"):
        raise DeblurrtError(f"synthetic:// live must be 1 (paced at fps, newest frame) or 0 (every frame, as fast "
                            f"as it renders), received {live_text!r}")
    live = live_text in ("1", "true", "yes")
    render = values.get("render", "fast").lower()
    if render not in RENDERS:
        raise DeblurrtError(f"synthetic:// render must be one of {', '.join(RENDERS)}, received {render!r}")
    photo = Path(path_text) if path_text else None
    if photo is not None and not photo.is_file():
        raise DeblurrtError(f"synthetic:// photo {photo} does not exist. Fix: give an image path "
                            "(synthetic://photos/street.jpg) or none for a generated scene (synthetic://)")
    return SyntheticOptions(photo, (width, height), fps, severity, seed, frames, live, render, bursts, burst)


def motion_kernel(displacements: np.ndarray, step: float = _KERNEL_STEP_PX) -> tuple[np.ndarray, int]:
    """The correlation kernel (for ``cv2.filter2D``) of a translating exposure, and its radius.

    ``displacements`` are the camera's ``(dx, dy)`` at evenly spaced times of the exposure, ``(T, 2)``: the
    scene point at ``p`` is seen at ``p + d(t)``. The trajectory is sampled every ``step`` pixels of path
    (piecewise linear between rows) and each sample is splatted bilinearly at ``-d``, so filtering the scene
    with the kernel equals averaging the scene warped by each sample with bilinear interpolation (what
    ``synthesize_pair`` does with ``cv2.warpAffine``). Returns ``(kernel, radius)``: a ``(2r+1, 2r+1)`` float32
    kernel summing to 1, centred at ``(r, r)``.
    """
    d = np.asarray(displacements, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != 2 or len(d) == 0:
        raise DeblurrtError(f"displacements must be (T, 2) (dx, dy) rows, received shape {d.shape}")
    path = float(np.sqrt((np.diff(d, axis=0) ** 2).sum(1)).sum()) if len(d) > 1 else 0.0
    count = max(9, int(math.ceil(path / step)) + 1)
    source_t = np.linspace(0.0, 1.0, len(d))
    t = np.linspace(0.0, 1.0, count)
    xs = np.interp(t, source_t, d[:, 0]) if len(d) > 1 else np.full(count, d[0, 0])
    ys = np.interp(t, source_t, d[:, 1]) if len(d) > 1 else np.full(count, d[0, 1])
    radius = int(math.ceil(max(np.abs(xs).max(), np.abs(ys).max()))) + 1
    size = 2 * radius + 1
    # correlation reads src(q + u - r); the warped sub-frame shows src(q - d): the tap sits at u = r - d
    x, y = radius - xs, radius - ys
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    index = np.concatenate([y0 * size + x0, y0 * size + x0 + 1, (y0 + 1) * size + x0, (y0 + 1) * size + x0 + 1])
    weight = np.concatenate([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    kernel = np.bincount(index, weights=weight, minlength=size * size).reshape(size, size) / count
    return kernel.astype(np.float32), radius


def blur_with_kernel(window: np.ndarray, kernel: np.ndarray, radius: int, margin: int,
                     out_hw: tuple[int, int]) -> np.ndarray:
    """Filter the centre ``out_hw`` of ``window`` (which has ``margin >= radius`` pixels on each side) with a
    sparse ``kernel`` centred at ``(radius, radius)``; float32 ``out_h x out_w x C``.

    Only real pixels are read (no border mode matters). The kernel is applied in blocks of at most 11x11
    that contain a non-zero tap, each on a shifted view of the window, and the block results are summed.
    """
    height, width = out_hw
    if margin < radius:
        raise DeblurrtError(f"the window's margin {margin} is smaller than the kernel radius {radius}")
    total: np.ndarray | None = None
    size = kernel.shape[0]
    for by in range(0, size, _BLOCK):
        for bx in range(0, size, _BLOCK):
            block = kernel[by:by + _BLOCK, bx:bx + _BLOCK]
            if not block.any():
                continue
            bh, bw = block.shape
            top, left = margin + by - radius, margin + bx - radius
            # one block-size more than the output so every tap of every output pixel is inside the view
            view = window[top:top + height + bh - 1, left:left + width + bw - 1]
            part = cv2.filter2D(view, cv2.CV_32F, block, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
            part = part[:height, :width]
            if total is None:
                total = np.ascontiguousarray(part)
            else:
                cv2.add(total, part, dst=total)
    if total is None:  # an all-zero kernel cannot come from motion_kernel; keep the type anyway
        total = np.zeros((height, width) + window.shape[2:], np.float32)
    return total


class SyntheticCamera:
    """Renders frame ``i`` of the virtual camera: ``(blurry_bgr, sharp_bgr)`` uint8, deterministic in i."""

    def __init__(self, options: SyntheticOptions):
        # torch-free (numpy + OpenCV); imported here so the runtime does not load training code unless asked
        from deblurrt.synthesis import BlurConfig

        self.options = options
        # no JPEG or pasted foreground: a camera's own artefacts are noise and blur; keep frames a pure shake
        self.config = BlurConfig(severity=options.severity, foreground_prob=0.0, jpeg_prob=0.0)
        width, height = options.size
        lo, hi = self.config.severity_range_px(height, width)
        self.margin = int(math.ceil(hi)) + 4  # the shake never reads past the crop: no reflected borders
        need_h = int((height + 2 * self.margin) * _PAN_ROOM)
        need_w = int((width + 2 * self.margin) * _PAN_ROOM)
        #: set when the photo had to be upscaled (what was done, in words); stated once, when the camera opens
        self.scale_note: str | None = None
        if options.photo is not None:
            photo = cv2.imread(str(options.photo), cv2.IMREAD_COLOR)
            if photo is None:
                raise DeblurrtError(f"OpenCV cannot read the synthetic:// photo {options.photo}. Fix: use a "
                                    "PNG/JPEG image")
            scale = max(need_h / photo.shape[0], need_w / photo.shape[1], 1.0)
            if scale > 1.0:
                # keep the aspect ratio: one factor for both axes, the larger of the two needs
                size = (math.ceil(photo.shape[1] * scale), math.ceil(photo.shape[0] * scale))
                self.scale_note = (
                    f"synthetic:// photo {options.photo.name} is {photo.shape[1]}x{photo.shape[0]}, smaller than "
                    f"the {width}x{height} frame plus the shake margin ({self.margin} px) and room to pan "
                    f"({need_w}x{need_h} needed): upscaled x{scale:.2f} to {size[0]}x{size[1]} (bicubic, aspect "
                    "kept), so the scene is softer than a native-resolution photo")
                log.warning("%s", self.scale_note)
                photo = cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC)
        else:
            photo = procedural_scene(need_h, need_w, options.seed)
        self.scene_bgr = np.ascontiguousarray(photo)
        self._scene_rgb: np.ndarray | None = None
        if options.render == "fast":
            self._prepare_fast()

    @property
    def scene_rgb(self) -> np.ndarray:
        """The scene as RGB uint8 (what ``synthesize_pair`` takes), made on first use."""
        if self._scene_rgb is None:
            self._scene_rgb = np.ascontiguousarray(self.scene_bgr[:, :, ::-1])
        return self._scene_rgb

    def _prepare_fast(self) -> None:
        """What a still scene never changes, computed once: linear light, lights, noise field, tone table."""
        from deblurrt.synthesis import light_source_gain, linear_to_srgb, srgb_to_linear

        rng = np.random.default_rng([self.options.seed, 0x5CE4E])
        linear = srgb_to_linear(self.scene_bgr)  # exact, through the 8-bit lookup table
        # The scene's lights are brighter than the white an 8-bit photo records, so that they paint streaks
        # when shaken; a fixed scene has fixed lights: one boost per camera (seeded), not one per frame.
        # Lights by the training recipe's rule (every channel near clipping, blobs narrower than
        # highlight_max_size of the frame's short side): boosting every bright pixel made large white areas
        # glow in halos that no camera shows, and rewarded models for darkening them.
        threshold = float(rng.uniform(*self.config.highlight_threshold))
        gain = float(rng.uniform(*self.config.highlight_gain))
        width, height = self.options.size
        factor = light_source_gain(self.scene_bgr.astype(np.float32) * np.float32(1 / 255.0), threshold, gain,
                                   self.config.highlight_max_size * min(width, height))
        linear *= factor.astype(np.float32)[..., None]
        self._linear = np.ascontiguousarray(linear, dtype=np.float32)
        # one standard-normal field, read at a seeded offset each frame: drawing 0.7 M normals per frame
        # would cost ~5 ms, a third of the frame budget
        self._noise = rng.standard_normal((height + 2 * _NOISE_PAD, width + 2 * _NOISE_PAD, 3), dtype=np.float32)
        # linear light -> 8-bit sRGB through a 16-bit table: one linear step is < 0.06 of an 8-bit level
        codes = np.arange(65536, dtype=np.float32) / np.float32(65535.0)
        self._to_srgb = np.clip(np.rint(linear_to_srgb(codes) * np.float32(255.0)), 0, 255).astype(np.uint8)
        # the truth sees the same lights, clipped as the sensor clips them (the training recipe's rule); the
        # rest of the scene stays the photo's own pixels
        lights = factor > 1.0
        self._truth_scene = self.scene_bgr.copy()
        if lights.any():
            clipped = np.minimum(self._linear[lights], np.float32(1.0)) * np.float32(65535.0) + np.float32(0.5)
            self._truth_scene[lights] = self._to_srgb[clipped.astype(np.uint16)]

    def crop_origin(self, index: int) -> tuple[int, int]:
        """Top-left (y, x) of frame ``index``'s window: a slow Lissajous pan inside the scene."""
        width, height = self.options.size
        span_y = self.scene_bgr.shape[0] - height - 2 * self.margin
        span_x = self.scene_bgr.shape[1] - width - 2 * self.margin
        t = index / self.options.fps
        y = 0.5 + 0.5 * math.sin(2 * math.pi * t / 11.0)
        x = 0.5 + 0.5 * math.sin(2 * math.pi * t / 7.0 + 1.0)
        return int(round(y * span_y)), int(round(x * span_x))

    def shake(self, index: int) -> np.ndarray:
        """Frame ``index``'s camera translation during the exposure, ``(64, 2)`` (dx, dy) px, centred on its
        mean (the truth sits at the blur's centre of mass; mid-exposure would put it 20 % of the streak away on
        average, an offset no model can see); all zero for a sharp frame of a ``bursts`` stream."""
        from deblurrt.synthesis import shake_trajectory

        if not self.options.is_blurry(index):
            return np.zeros((64, 2))

        width, height = self.options.size
        rng = np.random.default_rng([self.options.seed, index])
        lo, hi = self.config.severity_range_px(height, width)
        peak = float(rng.uniform(lo, hi))
        trajectory = shake_trajectory(rng, peak, (height, width), rotation_weight=0.0, zoom_weight=0.0)[:, :2]
        return trajectory - trajectory.mean(axis=0)

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(blurry, sharp)`` BGR uint8 for frame ``index``."""
        if self.options.render == "exact":
            return self._render_exact(index)
        width, height = self.options.size
        m = self.margin
        y, x = self.crop_origin(index)
        sharp = self._truth_scene[y + m:y + m + height, x + m:x + m + width].copy()
        if not self.options.is_blurry(index):
            # a still camera: the exposure is the truth (the boosted lights only matter when they streak)
            return sharp.copy(), sharp
        kernel, radius = motion_kernel(self.shake(index))
        window = self._linear[y:y + height + 2 * m, x:x + width + 2 * m]
        blurry = blur_with_kernel(window, kernel, radius, m, (height, width))
        np.minimum(blurry, np.float32(1.0), out=blurry)  # the sensor saturates: boosted lights clip here
        # noise levels and the field offset come from their own stream: the shake depends on (seed, index) only
        rng = np.random.default_rng([self.options.seed, index, 1])
        shot_u, read_u = rng.random(2)
        oy, ox = (int(v) for v in rng.integers(0, 2 * _NOISE_PAD + 1, 2))
        if self.config.noise is not None:
            (shot_lo, shot_hi), (read_lo, read_hi) = self.config.noise
            shot = np.float32(shot_lo + shot_u * (shot_hi - shot_lo))
            read = np.float32(read_lo + read_u * (read_hi - read_lo))
            # Poisson-Gaussian in linear light: variance shot * x + read^2
            sigma = cv2.sqrt(blurry * shot + read * read)
            blurry += sigma * self._noise[oy:oy + height, ox:ox + width]
        np.clip(blurry, 0.0, 1.0, out=blurry)
        blurry *= np.float32(65535.0)
        blurry += np.float32(0.5)
        return self._to_srgb[blurry.astype(np.uint16)], sharp

    def _render_exact(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        from deblurrt.synthesis import synthesize_pair

        width, height = self.options.size
        y, x = self.crop_origin(index)
        if not self.options.is_blurry(index):  # a still camera: the exposure is the truth (no noise here)
            sharp = self.scene_bgr[y + self.margin:y + self.margin + height, x + self.margin:x + self.margin + width]
            return sharp.copy(), sharp.copy()
        window = self.scene_rgb[y:y + height + 2 * self.margin, x:x + width + 2 * self.margin]
        blurry, sharp = synthesize_pair(window, (self.options.seed, index), self.config, out_size=(height, width))
        to_bgr = lambda image: np.ascontiguousarray(  # noqa: E731 - local one-liner
            np.rint(image[:, :, ::-1] * np.float32(255.0)).astype(np.uint8))
        return to_bgr(blurry), to_bgr(sharp)
