"""A shaky virtual camera over a still photo: blurry frames together with their sharp truth.

The camera pans slowly over the photo along a smooth (Lissajous) path; every frame is one exposure whose
motion blur comes from :func:`deblurrt.train.data.synthesis.synthesize_pair` (hand-shake trajectories
integrated in linear light, sensor noise), the same recipe the models are trained on. That module is numpy +
OpenCV only, so the runtime stays torch-free (tests prove it with torch blocked). The sharp truth is the
photo crop itself, pixel-aligned with the blurry frame, so live PSNR can be measured.

Without a photo a procedural textured scene is drawn (shapes, stripes, text, fine texture, a few bright
lights), so ``synthetic://`` needs no files. Everything is seeded: the same URI gives the same frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError

SEVERITIES = ("mild", "moderate", "severe")


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
    """Parsed ``synthetic://[photo]?size=WxH&fps=30&severity=moderate&seed=0&frames=N&live=0``."""

    photo: Path | None = None
    size: tuple[int, int] = (640, 360)  # width, height (as on the command line)
    fps: float = 30.0
    severity: str = "moderate"
    seed: int = 0
    frames: int | None = None
    live: bool = False


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
    allowed = {"size", "fps", "severity", "seed", "frames", "live"}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise DeblurrtError(f"unknown synthetic:// option(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))} "
                            "(e.g. synthetic://?size=640x360&fps=30&severity=moderate)")
    try:
        width, height = (int(v) for v in values.get("size", "640x360").lower().split("x"))
        fps = float(values.get("fps", "30"))
        seed = int(values.get("seed", "0"))
        frames = int(values["frames"]) if "frames" in values else None
    except ValueError as error:
        raise DeblurrtError(f"bad synthetic:// option in {uri!r} ({error}); expected size=WxH, fps=N, seed=N, "
                            "frames=N") from error
    if width < 16 or height < 16 or fps <= 0 or (frames is not None and frames < 0):
        raise DeblurrtError(f"synthetic:// needs size >= 16x16, fps > 0, frames >= 0; received {uri!r}")
    severity = values.get("severity", "moderate").lower()
    if severity not in SEVERITIES:
        raise DeblurrtError(f"synthetic:// severity must be one of {', '.join(SEVERITIES)}, received {severity!r}")
    live = values.get("live", "0").lower() in ("1", "true", "yes")
    photo = Path(path_text) if path_text else None
    if photo is not None and not photo.is_file():
        raise DeblurrtError(f"synthetic:// photo {photo} does not exist. Fix: give an image path "
                            "(synthetic://photos/street.jpg) or none for a generated scene (synthetic://)")
    return SyntheticOptions(photo, (width, height), fps, severity, seed, frames, live)


class SyntheticCamera:
    """Renders frame ``i`` of the virtual camera: ``(blurry_bgr, sharp_bgr)`` uint8, deterministic in i."""

    def __init__(self, options: SyntheticOptions):
        # torch-free (numpy + OpenCV); imported here so the runtime does not load training code unless asked
        from deblurrt.train.data.synthesis import BlurConfig, synthesize_pair

        self.options = options
        self._synthesize = synthesize_pair
        # no JPEG or pasted foreground: a camera's own artefacts are noise and blur; keep frames a pure shake
        self.config = BlurConfig(severity=options.severity, foreground_prob=0.0, jpeg_prob=0.0)
        width, height = options.size
        lo, hi = self.config.severity_range_px(height, width)
        self.margin = int(math.ceil(hi)) + 4  # the shake never reads past the crop: no reflected borders
        need_h, need_w = int((height + 2 * self.margin) * 1.3), int((width + 2 * self.margin) * 1.3)
        if options.photo is not None:
            photo = cv2.imread(str(options.photo), cv2.IMREAD_COLOR)
            if photo is None:
                raise DeblurrtError(f"OpenCV cannot read the synthetic:// photo {options.photo}. Fix: use a "
                                    "PNG/JPEG image")
            scale = max(need_h / photo.shape[0], need_w / photo.shape[1], 1.0)
            if scale > 1.0:
                photo = cv2.resize(photo, (math.ceil(photo.shape[1] * scale), math.ceil(photo.shape[0] * scale)),
                                   interpolation=cv2.INTER_CUBIC)
        else:
            photo = procedural_scene(need_h, need_w, options.seed)
        self.scene_rgb = np.ascontiguousarray(photo[:, :, ::-1])

    def crop_origin(self, index: int) -> tuple[int, int]:
        """Top-left (y, x) of frame ``index``'s window: a slow Lissajous pan inside the scene."""
        width, height = self.options.size
        span_y = self.scene_rgb.shape[0] - height - 2 * self.margin
        span_x = self.scene_rgb.shape[1] - width - 2 * self.margin
        t = index / self.options.fps
        y = 0.5 + 0.5 * math.sin(2 * math.pi * t / 11.0)
        x = 0.5 + 0.5 * math.sin(2 * math.pi * t / 7.0 + 1.0)
        return int(round(y * span_y)), int(round(x * span_x))

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(blurry, sharp)`` BGR uint8 for frame ``index``."""
        width, height = self.options.size
        y, x = self.crop_origin(index)
        window = self.scene_rgb[y:y + height + 2 * self.margin, x:x + width + 2 * self.margin]
        blurry, sharp = self._synthesize(window, (self.options.seed, index), self.config, out_size=(height, width))
        to_bgr = lambda image: np.ascontiguousarray(  # noqa: E731 - local one-liner
            np.rint(image[:, :, ::-1] * np.float32(255.0)).astype(np.uint8))
        return to_bgr(blurry), to_bgr(sharp)
