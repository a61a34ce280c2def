"""A second, independent blur recipe: uniform camera-shake KERNELS convolved in linear light.

Written separately from :mod:`deblurrt.synthesis` (which warps sub-frames along an inertial walk) so that a
model trained on one recipe can be validated on the other; it is also useful training data.

1. A trajectory: a smooth random curve made of a few random low-frequency sinusoids plus a drift, sampled
   densely over the exposure at a random, smoothly varying speed (cameras slow down and speed up), scaled so
   that its diameter (the streak a point light paints) is the requested length in pixels.
2. The kernel: the trajectory's points splatted bilinearly (sub-pixel) onto a grid, after shifting the curve
   so that its **centroid** falls exactly on the kernel's centre pixel: blurry and sharp images stay aligned
   (the blur's centre of mass is where the sharp image is).
3. The sharp image is converted to linear light, convolved with the kernel (the same everywhere: a
   spatially uniform blur, as from a distant scene and a shaking camera without roll), converted back;
   then light Gaussian noise in 8-bit sRGB levels and 8-bit rounding.

Everything random comes from ``np.random.default_rng(seed)``: the same ``(image, seed, options)`` gives the
same pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError
from deblurrt.synthesis import Seed, check_length_dist, draw_length, linear_to_srgb, srgb_to_linear

_WAVES = 3


@dataclass(frozen=True)
class KernelRecipe:
    """Options of the kernel recipe.

    Attributes:
        length_px: range of the streak length (kernel diameter) in absolute pixels.
        noise_rms: Gaussian noise range in 8-bit sRGB levels, added after the blur.
        quantize: round the blurry image to 8-bit levels.
        samples_per_px: trajectory samples per pixel of path (dense enough for a continuous streak).
        length_dist: ``"uniform"`` or ``"log"`` (log-uniform) draw of the length from ``length_px``.
    """

    length_px: tuple[float, float] = (20.0, 40.0)
    noise_rms: tuple[float, float] = (0.0, 1.0)
    quantize: bool = True
    samples_per_px: float = 4.0
    length_dist: str = "uniform"

    def __post_init__(self) -> None:
        lo, hi = self.length_px
        if not 0 <= lo <= hi:
            raise DeblurrtError(f"kernel length range {self.length_px!r} must satisfy 0 <= lo <= hi")
        n_lo, n_hi = self.noise_rms
        if not 0 <= n_lo <= n_hi:
            raise DeblurrtError(f"noise_rms range {self.noise_rms!r} must satisfy 0 <= lo <= hi")
        check_length_dist(self.length_dist)
        if self.samples_per_px <= 0:
            raise DeblurrtError(f"samples_per_px must be > 0, got {self.samples_per_px}")


def random_path(rng: np.random.Generator, length_px: float) -> np.ndarray:
    """Points ``(N, 2)`` (x, y) of a smooth random camera path whose diameter is ``length_px``, sampled at
    equal time steps (so denser where the camera is slow)."""
    fine = 512
    t = np.linspace(0.0, 1.0, fine)
    direction = rng.uniform(0, 2 * math.pi)
    drift = rng.uniform(0.3, 1.0)
    path = drift * np.stack([t * math.cos(direction), t * math.sin(direction)], axis=1)
    for wave in range(_WAVES):
        frequency = rng.uniform(0.3, 1.5 + wave)
        phase = rng.uniform(0, 2 * math.pi, size=2)
        amplitude = rng.uniform(0.0, 0.6) / (1 + wave)
        path += amplitude * np.stack([np.sin(2 * math.pi * frequency * t + phase[0]),
                                      np.sin(2 * math.pi * frequency * t + phase[1])], axis=1)
    # a smoothly varying speed: resample the curve by a random monotone time warp
    speed = 1.0 + rng.uniform(0.0, 0.8) * np.sin(2 * math.pi * rng.uniform(0.2, 1.2) * t + rng.uniform(0, 6.3))
    clock = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    clock /= clock[-1]
    path = np.stack([np.interp(t, clock, path[:, 0]), np.interp(t, clock, path[:, 1])], axis=1)
    diameter = _diameter(path)
    if diameter <= 1e-12 or length_px <= 0:
        return np.zeros((1, 2))
    return path * (length_px / diameter)


def _diameter(points: np.ndarray) -> float:
    """Largest distance between two points of a path (on a subsample: the path is smooth)."""
    sub = points[:: max(len(points) // 128, 1)]
    diff = sub[:, None] - sub[None, :]
    return float(np.sqrt((diff ** 2).sum(-1)).max())


def rasterize(path: np.ndarray, samples_per_px: float = 4.0) -> np.ndarray:
    """A normalised blur kernel (odd square, float32) from a path, centred on the path's centroid.

    The path is resampled to ``samples_per_px`` points per pixel of arc length, keeping its timing (equal
    time steps carry equal weight), shifted so its centroid is the centre pixel, and splatted bilinearly.
    """
    path = np.asarray(path, dtype=np.float64)
    if len(path) > 1:
        arc = float(np.sqrt((np.diff(path, axis=0) ** 2).sum(-1)).sum())
        count = max(int(math.ceil(arc * samples_per_px)), len(path))
        source_t = np.linspace(0.0, 1.0, len(path))
        target_t = np.linspace(0.0, 1.0, count)
        path = np.stack([np.interp(target_t, source_t, path[:, 0]), np.interp(target_t, source_t, path[:, 1])], 1)
    centred = path - path.mean(axis=0)
    radius = int(math.ceil(np.abs(centred).max())) + 1
    size = 2 * radius + 1
    kernel = np.zeros((size, size), np.float64)
    xs, ys = centred[:, 0] + radius, centred[:, 1] + radius
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + dy, x0 + dx), weight)
    return (kernel / kernel.sum()).astype(np.float32)


def kernel_centroid(kernel: np.ndarray) -> tuple[float, float]:
    """``(x, y)`` centre of mass of a kernel relative to its centre pixel (0, 0 when centred)."""
    height, width = kernel.shape
    ys, xs = np.mgrid[0:height, 0:width]
    total = float(kernel.sum())
    return float((kernel * xs).sum() / total - (width - 1) / 2), float((kernel * ys).sum() / total - (height - 1) / 2)



def kernel_grid(kernel: np.ndarray, cells: int = 33, cell_px: int = 3) -> np.ndarray:
    """A kernel on a fixed coarse grid, ``cells x cells`` float32 summing to 1: what a network can predict.

    The kernel's centre pixel (odd square, as :func:`rasterize` makes) lands on the centre cell; each cell sums
    ``cell_px x cell_px`` pixels, so the grid spans ``cells * cell_px`` pixels (99 by default: streaks up to
    about 90 px centred on their centroid). Mass beyond the grid is dropped and the rest renormalised.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise DeblurrtError(f"kernel must be an odd square 2-D array, received shape {kernel.shape}")
    if cells % 2 == 0 or cell_px % 2 == 0:
        raise DeblurrtError(f"cells and cell_px must be odd (a centre cell on the centre pixel), received "
                            f"{cells} and {cell_px}")
    span = cells * cell_px
    canvas = np.zeros((span, span))
    radius, half = kernel.shape[0] // 2, span // 2
    keep = min(radius, half)
    canvas[half - keep:half + keep + 1, half - keep:half + keep + 1] = \
        kernel[radius - keep:radius + keep + 1, radius - keep:radius + keep + 1]
    grid = canvas.reshape(cells, cell_px, cells, cell_px).sum(axis=(1, 3))
    total = grid.sum()
    if total <= 0:
        raise DeblurrtError(f"the kernel has no mass within {span} px of its centre; fix: a larger cells * cell_px")
    return (grid / total).astype(np.float32)

def blur_with_kernel(sharp_rgb01: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve an sRGB image (float [0, 1], HxWx3) with ``kernel`` in linear light; borders reflect."""
    linear = srgb_to_linear(np.clip(np.asarray(sharp_rgb01, dtype=np.float32), 0.0, 1.0))
    # filter2D correlates: flipping the kernel makes it a convolution (the streak's orientation is kept)
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    blurred = cv2.filter2D(linear, -1, flipped, borderType=cv2.BORDER_REFLECT)
    return np.clip(linear_to_srgb(np.clip(blurred, 0.0, 1.0)), 0.0, 1.0)


def synthesize_kernel_pair(sharp_rgb01: np.ndarray, seed: Seed, recipe: KernelRecipe | None = None, *,
                           out_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A (blurry, sharp, kernel) triple by the kernel recipe.

    Args:
        sharp_rgb01: ``H x W x 3`` RGB float in [0, 1] (uint8 is scaled).
        seed: seed of ``np.random.default_rng``.
        recipe: the options (default :class:`KernelRecipe`).
        out_size: ``(height, width)``: a centre crop of the result; give the input a margin of half the
            longest streak so the border is never reflected into the crop.
    """
    recipe = recipe or KernelRecipe()
    image = np.asarray(sharp_rgb01)
    if image.ndim != 3 or image.shape[2] != 3:
        raise DeblurrtError(f"sharp image must be HxWx3 RGB, got shape {image.shape}")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(image.dtype, 1.0)
    image = image.astype(np.float32) / np.float32(scale)
    rng = np.random.default_rng(seed)
    length = draw_length(rng, *recipe.length_px, recipe.length_dist)
    path = random_path(rng, length)
    noise_rms = float(rng.uniform(*recipe.noise_rms))
    noise_rng = np.random.default_rng(rng.integers(0, 2**63))
    kernel = rasterize(path, recipe.samples_per_px)
    blurry = blur_with_kernel(image, kernel)
    height, width = image.shape[:2]
    out_h, out_w = out_size if out_size is not None else (height, width)
    if not (0 < out_h <= height and 0 < out_w <= width):
        raise DeblurrtError(f"out_size {out_size} must be positive and fit in the {height}x{width} input")
    top, left = (height - out_h) // 2, (width - out_w) // 2
    blurry = blurry[top:top + out_h, left:left + out_w].copy()
    sharp = np.clip(image[top:top + out_h, left:left + out_w], 0.0, 1.0).copy()
    if noise_rms > 0:
        blurry += np.float32(noise_rms / 255.0) * noise_rng.standard_normal(blurry.shape, dtype=np.float32)
        np.clip(blurry, 0.0, 1.0, out=blurry)
    if recipe.quantize:
        blurry = np.rint(blurry * np.float32(255.0)) / np.float32(255.0)
    return blurry.astype(np.float32), sharp, kernel
