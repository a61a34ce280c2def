"""Images for calibration, parity checks and accuracy reports: folders on disk or a synthetic default.

Everything is RGB float32 in [0, 1], HxWx3, the convention of the rest of deblurrt. The synthetic frames are
"natural-looking" on purpose: smooth colour fields, sharp edges of objects, fine texture and text, then a
linear motion blur and sensor noise. Uniform noise would be a poor stand-in for a camera frame: it has no
edges to deblur and an activation range that calibrates INT8 scales for the wrong data.

Only numpy and OpenCV are used (no dependency on ``deblurrt.train.data``), and the generator is
deterministic: the same seed gives the same frames on every machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


# -- synthetic frames ---------------------------------------------------------------------------------------

def motion_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A normalised linear motion-blur kernel of ``length`` pixels at ``angle_deg`` (odd square size)."""
    size = length + 1 - length % 2
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    dx = np.cos(np.deg2rad(angle_deg)) * (length - 1) / 2
    dy = np.sin(np.deg2rad(angle_deg)) * (length - 1) / 2
    # Drawn at 8x sub-pixel precision and anti-aliased so short kernels at odd angles stay smooth.
    shift = 3
    p0 = (round((centre - dx) * 8), round((centre - dy) * 8))
    p1 = (round((centre + dx) * 8), round((centre + dy) * 8))
    cv2.line(kernel, p0, p1, 1.0, 1, cv2.LINE_AA, shift)
    total = float(kernel.sum())
    if total <= 0:
        kernel[centre, centre] = 1.0
        total = 1.0
    return kernel / total


def synthetic_sharp(height: int, width: int, seed: int) -> np.ndarray:
    """A deterministic sharp frame: smooth colour field, texture, shapes with hard edges, lines and text."""
    rng = np.random.default_rng(seed)
    # Low-frequency colour field: a coarse random grid upsampled bicubically (sky, walls, shading).
    coarse = rng.uniform(0.15, 0.85, (3 + seed % 3, 4 + seed % 4, 3)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    # Fine texture: band-limited noise, like foliage, fabric or asphalt.
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height, width, 1)).astype(np.float32), (0, 0), 1.2)
    image += 0.06 * texture[..., None] if texture.ndim == 2 else 0.06 * texture
    scale = max(1.0, min(height, width) / 64)
    for _ in range(int(4 + 6 * scale ** 0.5)):
        colour = tuple(float(c) for c in rng.uniform(0.0, 1.0, 3))
        kind = rng.integers(0, 4)
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        extent = int(rng.integers(4, max(5, min(height, width) // 3)))
        if kind == 0:
            cv2.rectangle(image, (x, y), (x + extent, y + int(extent * rng.uniform(0.4, 1.6))), colour, -1)
        elif kind == 1:
            cv2.circle(image, (x, y), max(2, extent // 2), colour, -1, cv2.LINE_AA)
        elif kind == 2:
            points = np.stack([rng.integers(x - extent, x + extent, 4), rng.integers(y - extent, y + extent, 4)], 1)
            cv2.fillPoly(image, [points.astype(np.int32)], colour, cv2.LINE_AA)
        else:
            end = (x + int(rng.integers(-extent, extent)), y + int(rng.integers(-extent, extent)))
            cv2.line(image, (x, y), end, colour, max(1, int(scale)), cv2.LINE_AA)
    letters = "".join(chr(int(c)) for c in rng.integers(65, 91, 4))
    # OpenCV 5 draws text on 8-bit images only: draw an anti-aliased mask, then blend the colour through it.
    mask = np.zeros((height, width), np.uint8)
    cv2.putText(mask, letters, (int(width * 0.1), int(height * 0.6)), cv2.FONT_HERSHEY_SIMPLEX,
                0.006 * min(height, width), 255, max(1, int(scale)), cv2.LINE_AA)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    image = image * (1 - alpha) + alpha * rng.uniform(0, 1, 3).astype(np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def blur_frame(sharp: np.ndarray, seed: int, noise_sigma: float = 0.01) -> np.ndarray:
    """Apply a random linear motion blur (length scaled to the frame size) and Gaussian sensor noise."""
    rng = np.random.default_rng(seed + 7919)
    height, width = sharp.shape[:2]
    length = int(rng.integers(5, 13) * max(1.0, min(height, width) / 128))
    kernel = motion_kernel(length, float(rng.uniform(0, 180)))
    blurry = cv2.filter2D(sharp, -1, kernel, borderType=cv2.BORDER_REFLECT)
    blurry = blurry + rng.normal(0.0, noise_sigma, blurry.shape).astype(np.float32)
    return np.clip(blurry, 0.0, 1.0).astype(np.float32)


def synthetic_pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One deterministic (blurry, sharp) pair, each HxWx3 float32 RGB in [0, 1]."""
    sharp = synthetic_sharp(height, width, seed)
    return blur_frame(sharp, seed), sharp


def synthetic_pairs(count: int, height: int, width: int, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``count`` named (name, blurry, sharp) pairs; seeds ``seed .. seed + count - 1``."""
    return [(f"synthetic_{seed + i:04d}", *synthetic_pair(height, width, seed + i)) for i in range(count)]


# -- folders ------------------------------------------------------------------------------------------------

def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted for determinism."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as float32 RGB in [0, 1]; 8- and 16-bit files are both scaled to [0, 1]."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise DeblurrtError(f"cannot read image '{path}'. Fix: remove it or convert it to PNG/JPEG.")
    if data.ndim == 2:
        data = cv2.cvtColor(data, cv2.COLOR_GRAY2BGR)
    elif data.shape[2] == 4:
        data = cv2.cvtColor(data, cv2.COLOR_BGRA2BGR)
    scale = 65535.0 if data.dtype == np.uint16 else 255.0
    return cv2.cvtColor(data, cv2.COLOR_BGR2RGB).astype(np.float32) / scale


def fit_to_shape(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize so the image covers ``height x width`` (aspect kept), then centre-crop to exactly that size."""
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    if abs(scale - 1.0) > 1e-6:
        size = (max(width, round(w * scale)), max(height, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        h, w = image.shape[:2]
    top, left = (h - height) // 2, (w - width) // 2
    return np.ascontiguousarray(image[top:top + height, left:left + width])


def calibration_images(folder: str | Path | None, height: int, width: int, count: int,
                       seed: int = 1000) -> list[np.ndarray]:
    """Blurry frames for INT8 calibration, each fitted to ``height x width``.

    ``folder`` is a flat folder of blurry frames or a paired set (its ``blur/`` subfolder is used); None
    gives ``count`` synthetic blurry frames. A folder with fewer than ``count`` images uses them all.
    """
    if folder is None:
        return [synthetic_pair(height, width, seed + i)[0] for i in range(count)]
    root = Path(folder)
    if not root.is_dir():
        raise DeblurrtError(f"calibration folder '{root}' does not exist. Fix: pass a folder of blurry frames "
                            "(or a paired set with blur/) to --calib, or omit --calib for synthetic frames.")
    source = root / "blur" if (root / "blur").is_dir() else root
    files = list_images(source)
    if not files:
        raise DeblurrtError(f"no images in '{source}'. Fix: put PNG/JPEG frames there or omit --calib.")
    # Spread the picks over the whole folder: consecutive video frames are nearly identical.
    step = max(1, len(files) // count)
    return [fit_to_shape(read_rgb(p), height, width) for p in files[::step][:count]]


def paired_images(folder: str | Path, count: int | None = None,
                  shape: tuple[int, int] | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, blurry, sharp) triples from a paired set with ``blur/`` and ``sharp/`` holding the same names.

    ``shape`` (H, W) fits every pair to that size (the same crop for both images); None keeps native sizes.
    """
    root = Path(folder)
    blur_dir, sharp_dir = root / "blur", root / "sharp"
    if not blur_dir.is_dir() or not sharp_dir.is_dir():
        raise DeblurrtError(f"'{root}' is not a paired set. Fix: --eval needs a folder with blur/ and sharp/ "
                            "subfolders holding images of the same names (as 'deblurrt data synth' writes).")
    pairs = []
    for blur_path in list_images(blur_dir):
        relative = blur_path.relative_to(blur_dir)
        sharp_path = sharp_dir / relative
        if not sharp_path.is_file():
            continue
        blurry, sharp = read_rgb(blur_path), read_rgb(sharp_path)
        if blurry.shape != sharp.shape:
            raise DeblurrtError(f"'{blur_path}' and '{sharp_path}' differ in size ({blurry.shape[:2]} vs "
                                f"{sharp.shape[:2]}). Fix: pair images of identical size.")
        if shape is not None:
            blurry, sharp = fit_to_shape(blurry, *shape), fit_to_shape(sharp, *shape)
        pairs.append((str(relative), blurry, sharp))
        if count is not None and len(pairs) >= count:
            break
    if not pairs:
        raise DeblurrtError(f"no pairs found in '{root}' (blur/X needs sharp/X). Fix: check the folder layout.")
    return pairs


def to_nchw(images: Iterable[np.ndarray], dtype=np.float32) -> np.ndarray:
    """Stack HxWx3 images into one N x 3 x H x W array (the models' layout)."""
    return np.ascontiguousarray(np.stack([np.transpose(img, (2, 0, 1)) for img in images]).astype(dtype))
