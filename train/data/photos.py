"""Images on disk and the pool of sharp photos that synthetic pairs are cut from (numpy + OpenCV, no torch).

- :func:`read_image` / :func:`load_image`: OpenCV decoding (EXIF orientation applied, BGR -> RGB), 8-bit or
  16-bit, to native integers or float32 in [0, 1]; :func:`save_png`: atomic 8/16-bit PNG writes.
- :class:`PhotoPool`: decodes a folder of sharp photos once, downscales very large ones (long side <=
  ``max_side``, 1280 by default: a 256 crop of a 1280 image still holds a scene part, not a texture patch,
  and the downscale removes demosaicing softness and noise from full-resolution photos), and samples crops
  with a preference for textured, in-focus regions: per photo a map of local Laplacian energy (a measure of
  fine detail, low in defocused backgrounds, sky and walls) and crops drawn in proportion to it, photos
  weighted by their total energy. A share of draws stays uniform so flat regions are still seen.
- :func:`split_photos`: a deterministic train/validation split by photo.
- :func:`make_synthetic_item`: one reproducible synthetic pair (crop, flips, rot90, blur) with a record of
  how it was made.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError
from deblurrt.synthesis import BlurConfig, Seed, synthesize_pair, synthesize_pair_and_kernel

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


# ----------------------------------------------------------------------------------------------- file I/O

def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files (png/jpg/jpeg/bmp/tif/webp) directly in ``folder``, sorted by name; hidden files skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DeblurrtError(f"{folder} is not a folder. Fix: give a folder of images")
    return sorted(path for path in folder.iterdir()
                  if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file())


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image as RGB ``H x W x 3`` in its native depth (uint8 or uint16; float files as float32).

    Grey images are expanded to 3 channels, alpha is dropped, EXIF orientation is applied (as viewers do).
    Raises :class:`DeblurrtError` naming the file if it is missing or not a readable image.
    """
    path = Path(path)
    try:
        # np.fromfile + imdecode instead of imread: also handles non-ASCII paths on every platform
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise DeblurrtError(f"cannot read image {path}: {error.strerror or error}") from error
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH) if data.size else None
    if image is None:
        raise DeblurrtError(f"cannot decode image {path}: not a PNG/JPEG/BMP/TIFF OpenCV can read "
                            "(truncated or corrupt?). Fix: re-export it or remove it from the folder")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def to_float01(image: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float image to float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1 / 255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) * np.float32(1 / 65535.0)
    return np.clip(image.astype(np.float32, copy=False), 0.0, 1.0)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as RGB float32 ``H x W x 3`` in [0, 1] (8-bit and 16-bit files)."""
    return to_float01(read_image(path))


def save_png(path: str | os.PathLike, image: np.ndarray, bits: int = 8) -> None:
    """Write an RGB image (float in [0, 1], or uint8/uint16) as an 8-bit or 16-bit PNG, atomically.

    The bytes go to a temporary name in the same folder and are renamed over ``path`` only when complete,
    so an interrupted run never leaves a half-written PNG under a real name.
    """
    path = Path(path)
    if bits not in (8, 16):
        raise DeblurrtError(f"PNG bit depth must be 8 or 16, got {bits}")
    if image.dtype in (np.uint8, np.uint16):
        pixels = image
    else:
        top = 255.0 if bits == 8 else 65535.0
        pixels = np.clip(np.rint(np.asarray(image, np.float32) * top), 0, top)
        pixels = pixels.astype(np.uint8 if bits == 8 else np.uint16)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DeblurrtError(f"OpenCV could not encode {path} as PNG")
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        encoded.tofile(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


# ---------------------------------------------------------------------------------------------- splitting

def split_photos(photo_dir: str | os.PathLike, val_fraction: float | None = None,
                 val_names: Sequence[str] | None = None, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Hold photos out for validation: ``(train_paths, val_paths)``, both sorted by name.

    Either ``val_fraction`` (a seeded random choice of ``round(fraction * count)`` photos, at least one if
    the fraction is positive, never all) or ``val_names`` (file names or stems). Deterministic for the
    same folder content and seed.
    """
    photos = list_images(photo_dir)
    if not photos:
        raise DeblurrtError(f"no images in {photo_dir}. Fix: put .jpg/.png photos there")
    if (val_fraction is None) == (val_names is None):
        raise DeblurrtError("split_photos needs exactly one of val_fraction or val_names")
    if val_names is not None:
        chosen = set(select_names(photos, val_names, what="validation photo"))
    else:
        if not 0.0 <= val_fraction < 1.0:
            raise DeblurrtError(f"val_fraction must be in [0, 1), got {val_fraction}")
        count = round(val_fraction * len(photos))
        count = min(max(count, 1 if val_fraction > 0 else 0), len(photos) - 1)
        order = np.random.default_rng(seed).permutation(len(photos))
        chosen = {photos[i] for i in order[:count]}
    return [p for p in photos if p not in chosen], [p for p in photos if p in chosen]


def select_names(photos: Sequence[Path], names: Sequence[str], what: str = "photo") -> list[Path]:
    """The photos matching ``names`` (file names or stems); unknown names raise an error listing them."""
    by_key: dict[str, Path] = {}
    for photo in photos:
        by_key[photo.name] = photo
        by_key.setdefault(photo.stem, photo)
    wanted = [name.strip() for name in names if name.strip()]
    unknown = [name for name in wanted if Path(name).name not in by_key]
    if unknown:
        raise DeblurrtError(f"{len(unknown)} {what} name(s) not found: {_preview(unknown)}. "
                            f"Fix: use file names from the folder, e.g. {photos[0].name if photos else '...'}")
    return sorted({by_key[Path(name).name] for name in wanted})


def _preview(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


# ---------------------------------------------------------------------------------------------- the pool

def _sharpness_grid(image: np.ndarray, cell: int) -> np.ndarray:
    """Mean absolute Laplacian per ``cell x cell`` block, measured at half resolution.

    Half resolution first: JPEG blocking and sensor noise average out, while the detail that motion blur
    destroys (edges and texture a few pixels wide) survives.
    """
    grey = cv2.cvtColor(to_float01(image), cv2.COLOR_RGB2GRAY)
    half = cv2.resize(grey, (max(grey.shape[1] // 2, 1), max(grey.shape[0] // 2, 1)),
                      interpolation=cv2.INTER_AREA)
    energy = np.abs(cv2.Laplacian(half, cv2.CV_32F, ksize=3))
    grid_w = max(image.shape[1] // cell, 1)
    grid_h = max(image.shape[0] // cell, 1)
    return cv2.resize(energy, (grid_w, grid_h), interpolation=cv2.INTER_AREA).astype(np.float64)


@dataclass(frozen=True)
class Crop:
    """Where a crop comes from: photo index and name, and the box (outer, with margin) in the pool's
    (possibly downscaled) copy of the photo. The target is the centre ``height x width`` of the box."""

    photo: int
    name: str
    x: int
    y: int
    height: int
    width: int
    margin: int

    @property
    def outer(self) -> tuple[int, int]:
        """``(height, width)`` of the box including the margin."""
        return self.height + 2 * self.margin, self.width + 2 * self.margin


@dataclass
class _Windows:
    """Crop positions of one photo for one crop size: top-left corners on a grid and their probabilities."""

    ys: np.ndarray
    xs: np.ndarray
    probs: np.ndarray
    total_energy: float
    margin: int


class PhotoPool:
    """Sharp photos decoded once, with per-photo sharpness maps, for sampling textured crops.

    Args:
        photos: a folder or a list of image paths.
        max_side: photos whose long side exceeds this are downscaled (INTER_AREA) to it; ``None`` keeps
            full resolution.
        cache: keep the decoded (downscaled) photos in memory, as uint8/uint16 (about 3 MB per 1280x853
            photo); otherwise they are decoded again for every crop.
        cell: the sharpness map's block size in pixels (crop positions are drawn on this grid, then
            jittered within a cell).
        uniform_share: share of crop positions drawn uniformly instead of by sharpness.
        photo_uniform_share: share of photo choices drawn uniformly instead of by total sharpness.
    """

    def __init__(self, photos: str | os.PathLike | Sequence[str | os.PathLike], max_side: int | None = 1280,
                 cache: bool = True, cell: int = 16, uniform_share: float = 0.1,
                 photo_uniform_share: float = 0.25):
        if isinstance(photos, (str, os.PathLike)):
            folder = Path(photos)
            if not folder.is_dir():
                raise DeblurrtError(f"photo folder {folder} does not exist. Fix: give a folder of sharp photos")
            paths = list_images(folder)
            if not paths:
                raise DeblurrtError(f"no images (png/jpg/jpeg/bmp/tif) in {folder}. Fix: put sharp photos there")
        else:
            paths = [Path(p) for p in photos]
            if not paths:
                raise DeblurrtError("the photo list is empty. Fix: give at least one sharp photo")
        self.paths = paths
        self.names = [p.name for p in paths]
        self.max_side = max_side
        self.cache = cache
        self.cell = cell
        self.uniform_share = uniform_share
        self.photo_uniform_share = photo_uniform_share
        self.sizes: list[tuple[int, int]] = []
        self.grids: list[np.ndarray] = []
        self._images: list[np.ndarray] | None = [] if cache else None
        for path in paths:
            image = self._decode(path)
            self.sizes.append(image.shape[:2])
            self.grids.append(_sharpness_grid(image, cell))
            if self._images is not None:
                self._images.append(image)
        self._windows: dict[tuple[int, int, int], list[_Windows | None]] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def _decode(self, path: Path) -> np.ndarray:
        image = read_image(path)
        height, width = image.shape[:2]
        if self.max_side is not None and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(round(width * scale), 1), max(round(height * scale), 1))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return image

    def image(self, index: int) -> np.ndarray:
        """Photo ``index`` as the pool sees it (RGB, native depth, downscaled to ``max_side``)."""
        if self._images is not None:
            return self._images[index]
        return self._decode(self.paths[index])

    def region(self, crop: Crop) -> np.ndarray:
        """The pixels of a crop's outer box (a view into the cached photo)."""
        outer_h, outer_w = crop.outer
        return self.image(crop.photo)[crop.y:crop.y + outer_h, crop.x:crop.x + outer_w]

    def check_size(self, height: int, width: int) -> None:
        """Raise if some photo is smaller than a ``height x width`` crop (either orientation is not
        enough: rot90 augmentation may turn the crop)."""
        small = [f"{name} ({h}x{w})" for name, (h, w) in zip(self.names, self.sizes, strict=True)
                 if h < height or w < width]
        if small:
            raise DeblurrtError(f"{len(small)} photo(s) smaller than the {height}x{width} crop: {_preview(small)}. "
                                "Fix: use a smaller crop or remove them")

    def windows(self, height: int, width: int, margin: int) -> list[_Windows | None]:
        """Candidate crop positions per photo for this crop size (cached); ``None`` for photos too small."""
        key = (height, width, margin)
        if key not in self._windows:
            self._windows[key] = [self._photo_windows(i, height, width, margin) for i in range(len(self))]
        return self._windows[key]

    def _photo_windows(self, index: int, height: int, width: int, margin: int) -> _Windows | None:
        photo_h, photo_w = self.sizes[index]
        if photo_h < height or photo_w < width:
            return None
        # the margin shrinks on photos too small to hold it all (the warp reflects at the border instead)
        margin = max(min(margin, (photo_h - height) // 2, (photo_w - width) // 2), 0)
        outer_h, outer_w = height + 2 * margin, width + 2 * margin
        cell = self.cell
        grid = self.grids[index]
        ys = np.arange(0, photo_h - outer_h + 1, cell)
        xs = np.arange(0, photo_w - outer_w + 1, cell)
        # mean energy over each candidate's target (inner) window, from an integral image of the grid
        integral = np.pad(grid, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        top = np.clip(np.rint((ys + margin) / cell).astype(int), 0, grid.shape[0] - 1)
        left = np.clip(np.rint((xs + margin) / cell).astype(int), 0, grid.shape[1] - 1)
        bottom = np.clip(top + max(round(height / cell), 1), 1, grid.shape[0])
        right = np.clip(left + max(round(width / cell), 1), 1, grid.shape[1])
        t, b = top[:, None], bottom[:, None]
        lft, r = left[None, :], right[None, :]
        sums = integral[b, r] - integral[t, r] - integral[b, lft] + integral[t, lft]
        energy = sums / np.maximum((b - t) * (r - lft), 1)
        flat = energy.ravel()
        total = float(flat.sum())
        uniform = np.full(flat.size, 1.0 / flat.size)
        probs = uniform if total <= 0 else (1 - self.uniform_share) * flat / total + self.uniform_share * uniform
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
        return _Windows(grid_y.ravel(), grid_x.ravel(), probs / probs.sum(), float(flat.mean()), margin)

    def photo_probabilities(self, height: int, width: int, margin: int) -> np.ndarray:
        """Probability of each photo: by mean sharpness times usable area, mixed with uniform; 0 if too small."""
        windows = self.windows(height, width, margin)
        usable = np.array([w is not None for w in windows], dtype=np.float64)
        if not usable.any():
            self.check_size(height, width)
        weight = np.array([w.total_energy * len(w.probs) if w is not None else 0.0 for w in windows])
        weight = np.sqrt(weight)  # a soft preference: big sharp photos should not crowd the others out
        by_energy = weight / weight.sum() if weight.sum() > 0 else usable / usable.sum()
        probs = (1 - self.photo_uniform_share) * by_energy + self.photo_uniform_share * usable / usable.sum()
        return probs / probs.sum()

    def sample(self, rng: np.random.Generator, height: int, width: int, margin: int = 0,
               photo: int | None = None) -> Crop:
        """Draw a crop: a photo (given, or by sharpness) and a position within it (by local sharpness)."""
        if photo is None:
            photo = int(rng.choice(len(self), p=self.photo_probabilities(height, width, margin)))
        windows = self.windows(height, width, margin)[photo]
        if windows is None:
            self.check_size(height, width)
        choice = int(rng.choice(len(windows.probs), p=windows.probs))
        outer_h, outer_w = height + 2 * windows.margin, width + 2 * windows.margin
        photo_h, photo_w = self.sizes[photo]
        # jitter within the grid cell so positions are not quantised to the cell size
        y = min(int(windows.ys[choice]) + int(rng.integers(0, self.cell)), photo_h - outer_h)
        x = min(int(windows.xs[choice]) + int(rng.integers(0, self.cell)), photo_w - outer_w)
        return Crop(photo, self.names[photo], x, y, height, width, windows.margin)


# ----------------------------------------------------------------------------------- one synthetic item

def margin_for(config: BlurConfig, height: int, width: int) -> int:
    """Context to cut around a ``height x width`` target so the warps stay inside real pixels: the
    largest peak displacement of the severity range, plus 2 px for the bilinear footprint."""
    return int(math.ceil(config.severity_range_px(height, width)[1])) + 2


def augment(image: np.ndarray, flip: bool, rot90: int) -> np.ndarray:
    """Horizontal flip then ``rot90`` quarter turns (counter-clockwise), as a contiguous array."""
    if flip:
        image = image[:, ::-1]
    if rot90 % 4:
        image = np.rot90(image, rot90 % 4)
    return np.ascontiguousarray(image)


def make_synthetic_item(pool: PhotoPool, crop_seed: Seed, blur_seed: Seed, size: tuple[int, int],
                        config: BlurConfig, augment_crops: bool = True,
                        photo: int | None = None, with_kernel: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """One synthetic pair: sample a crop (``crop_seed``), flip/rot90 it, blur it (``blur_seed``).

    Returns ``(blurry, sharp, record)``: float32 ``H x W x 3`` in [0, 1] and a JSON-ready description
    (photo, box, flip, rot90, seeds) from which the pair can be made again. ``with_kernel``: the record also
    holds ``"kernel"``, the blur kernel (an array, not JSON) at the pair's centre
    (:func:`~deblurrt.synthesis.synthesize_pair_and_kernel`), the same pair either way.
    """
    height, width = size
    rng = np.random.default_rng(crop_seed)
    flip = bool(rng.random() < 0.5) if augment_crops else False
    rot90 = int(rng.integers(0, 4)) if augment_crops else 0
    # a quarter turn swaps the sides, so cut the crop in the turned orientation
    cut_h, cut_w = (width, height) if rot90 % 2 else (height, width)
    crop = pool.sample(rng, cut_h, cut_w, margin_for(config, height, width), photo=photo)
    region = augment(pool.region(crop), flip, rot90)
    recipe_rng = np.random.default_rng(blur_seed)
    use_kernel = config.kernel_prob > 0 and recipe_rng.random() < config.kernel_prob
    if use_kernel:
        from deblurrt.kernels import KernelRecipe, synthesize_kernel_pair

        lengths, length_dist = config.severity_range_px(height, width), config.length_dist
        if recipe_rng.random() < config.sharp_prob:
            lengths, length_dist = config.sharp_px, "uniform"
        recipe = KernelRecipe(length_px=lengths, noise_rms=config.noise_rms, length_dist=length_dist)
        blurry, sharp, kernel = synthesize_kernel_pair(region, recipe_rng.integers(0, 2**63), recipe,
                                                       out_size=(height, width))
    elif with_kernel:
        blurry, sharp, kernel = synthesize_pair_and_kernel(region, blur_seed, config, out_size=(height, width))
    else:
        blurry, sharp = synthesize_pair(region, blur_seed, config, out_size=(height, width))
    record = {"photo": crop.name, **{k: v for k, v in asdict(crop).items() if k not in ("photo", "name")},
              "flip": flip, "rot90": rot90, "recipe": "kernel" if use_kernel else "warp", "crop_seed": _jsonable(crop_seed), "blur_seed": _jsonable(blur_seed)}
    if with_kernel:
        record["kernel"] = kernel
    return blurry, sharp, record


def _jsonable(seed: Seed):
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": _jsonable(seed.entropy), "spawn_key": list(seed.spawn_key)}
    if isinstance(seed, (list, tuple, np.ndarray)):
        return [int(s) for s in seed]
    return int(seed)
