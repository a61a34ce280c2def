"""Torch datasets of (blurry, sharp) pairs. Every item is ``{"blur": CHW, "sharp": CHW, "name": str}`` with
float32 RGB tensors in [0, 1], so the default ``DataLoader`` collate gives NCHW batches.

- :class:`PairedFolder`: ``root/blur/*`` and ``root/sharp/*`` matched by file name.
- :class:`GoProFolder`: the GoPro_Large layout ``root/<split>/<scene>/blur|sharp/*.png``.
- :class:`RealBlurList`: RealBlur's list files (``gt_path blur_path`` per line).
- :class:`SyntheticPairs`: pairs synthesised on the fly from a folder of sharp photos.

Randomness (crops, flips, blur) and workers: with ``seed=<int>`` item ``i`` of epoch ``e`` is drawn from
``np.random.default_rng([seed, e, i, ...])`` -- the same in every process and worker count, so results
reproduce exactly. **Call** ``dataset.set_epoch(e)`` **before each epoch** (with ``persistent_workers=False``,
the default, workers get a fresh copy of the dataset each epoch), or every epoch repeats the same crops
and blurs. With ``seed=None`` (file datasets only) crops come from torch's RNG, which the DataLoader seeds
per worker and per epoch: random, not reproducible.

Threads: the DataLoader already gives each worker one torch thread. Do NOT call ``cv2.setNumThreads``
inside a forked worker (e.g. in a ``worker_init_fn``): with torch loaded it deadlocks. To cap OpenCV's
threads, call ``cv2.setNumThreads(n)`` in the main process before creating the DataLoader; results do not
depend on it (items are seeded by index, and OpenCV's threading never changes a pixel). The training
loader (``deblurrt.train.loaders``) spawns its workers instead, where one OpenCV thread each is safe and set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from deblurrt.errors import DeblurrtError
from deblurrt.pairs import match_folder_names, read_realblur_list
from deblurrt.synthesis import BlurConfig
from deblurrt.train.data.photos import (
    PhotoPool,
    augment,
    list_images,
    load_image,
    make_synthetic_item,
    split_photos,
)

__all__ = ["PairedFolder", "GoProFolder", "RealBlurList", "SyntheticPairs", "split_photos", "to_tensor"]

Size = int | tuple[int, int]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` float array to a contiguous ``3 x H x W`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))


def _size(crop: Size | None) -> tuple[int, int] | None:
    if crop is None:
        return None
    height, width = (crop, crop) if isinstance(crop, int) else crop
    if height <= 0 or width <= 0:
        raise DeblurrtError(f"crop size must be positive, got {crop!r}")
    return int(height), int(width)




def match_folders(blur_dir: Path, sharp_dir: Path) -> list[str]:
    """File names present in both folders, sorted; any file on one side only raises an error listing them."""
    return match_folder_names((p.name for p in list_images(blur_dir)), (p.name for p in list_images(sharp_dir)),
                              blur_dir, sharp_dir)


class _SeededItems:
    """Per-item random generators derived from (seed, epoch, index): see the module docstring."""

    seed: int | None
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration draw the crops/blurs of ``epoch`` (call before creating the iterator)."""
        self.epoch = int(epoch)

    def _entropy(self, index: int) -> list[int]:
        if self.seed is None:
            # torch's generator is seeded per worker and per epoch by the DataLoader
            return [int(torch.randint(0, 2**62, ()).item()), index]
        return [self.seed, self.epoch, index]


class _PairedFiles(_SeededItems, Dataset):
    """Shared loading, cropping and augmentation of (blur_path, sharp_path) pairs."""

    def __init__(self, pairs: list[tuple[str, Path, Path]], crop: Size | None, augment: bool, seed: int | None):
        self.pairs = pairs
        self.crop = _size(crop)
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        name, blur_path, sharp_path = self.pairs[index]
        blur, sharp = load_image(blur_path), load_image(sharp_path)
        if blur.shape != sharp.shape:
            raise DeblurrtError(f"pair {name!r} differs in size: {blur_path} is {blur.shape[1]}x{blur.shape[0]}, "
                                f"{sharp_path} is {sharp.shape[1]}x{sharp.shape[0]}. Fix: the images of a pair "
                                "must be aligned and the same size")
        if self.crop is not None or self.augment:
            rng = np.random.default_rng(self._entropy(index))
            if self.crop is not None:
                height, width = self.crop
                image_h, image_w = blur.shape[:2]
                if image_h < height or image_w < width:
                    raise DeblurrtError(f"{blur_path} ({image_w}x{image_h}) is smaller than the crop "
                                        f"{width}x{height}. Fix: use a smaller crop")
                y = int(rng.integers(0, image_h - height + 1))
                x = int(rng.integers(0, image_w - width + 1))
                blur, sharp = blur[y:y + height, x:x + width], sharp[y:y + height, x:x + width]
            if self.augment:
                flip, rot90 = bool(rng.random() < 0.5), int(rng.integers(0, 4))
                if self.crop is not None and self.crop[0] != self.crop[1]:
                    rot90 = 2 * (rot90 // 2)  # keep a non-square crop's shape so batches stack
                blur, sharp = augment(blur, flip, rot90), augment(sharp, flip, rot90)
        return {"blur": to_tensor(blur), "sharp": to_tensor(sharp), "name": name}


class PairedFolder(_PairedFiles):
    """``root/blur/<name>`` and ``root/sharp/<name>`` pairs, matched by file name (png/jpg/jpeg/bmp/tif).

    Args:
        root: the folder holding ``blur/`` and ``sharp/`` (e.g. the output of ``deblurrt data synth``).
        crop: ``None`` for full images (validation), or a size (int or ``(h, w)``): the same random window
            in both images.
        augment: random horizontal flip and quarter turns (the same for both images).
        seed: ``None`` (random crops from torch's RNG) or an int for reproducible ones (call ``set_epoch``).
    """

    def __init__(self, root: str | os.PathLike, crop: Size | None = None, augment: bool = False,
                 seed: int | None = None):
        root = Path(root)
        blur_dir, sharp_dir = root / "blur", root / "sharp"
        missing = [str(d) for d in (blur_dir, sharp_dir) if not d.is_dir()]
        if missing:
            raise DeblurrtError(f"paired folder {root} lacks {' and '.join(missing)}. Fix: put blurry images in "
                                f"{blur_dir} and sharp ones with the same names in {sharp_dir}")
        names = match_folders(blur_dir, sharp_dir)
        super().__init__([(n, blur_dir / n, sharp_dir / n) for n in names], crop, augment, seed)
        self.root = root


class GoProFolder(_PairedFiles):
    """The GoPro dataset (GoPro_Large): ``root/<split>/<scene>/blur/*.png`` and ``.../sharp/*.png``.

    A ``blur_gamma`` folder (the gamma-curve averages) may be present and is ignored: ``blur`` holds the
    linear averages. Item names are ``<scene>/<file>``. Options as :class:`PairedFolder`.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", crop: Size | None = None,
                 augment: bool = False, seed: int | None = None):
        root = Path(root)
        layout = f"{root}/{split}/<scene>/blur/*.png and {root}/{split}/<scene>/sharp/*.png"
        split_dir = root / split
        if not split_dir.is_dir():
            raise DeblurrtError(f"GoPro folder {split_dir} not found. Fix: give the GoPro_Large root, which "
                                f"holds train/ and test/ with {layout}")
        scenes = sorted(d for d in split_dir.iterdir() if (d / "blur").is_dir() and (d / "sharp").is_dir())
        if not scenes:
            raise DeblurrtError(f"no scenes in {split_dir}. Fix: the GoPro_Large layout is {layout}")
        pairs = []
        for scene in scenes:
            for name in match_folders(scene / "blur", scene / "sharp"):
                pairs.append((f"{scene.name}/{name}", scene / "blur" / name, scene / "sharp" / name))
        super().__init__(pairs, crop, augment, seed)
        self.root, self.split, self.scenes = root, split, [s.name for s in scenes]


class RealBlurList(_PairedFiles):
    """RealBlur (J or R) from one of its list files (``RealBlur_J_train_list.txt``, ...): each line is
    ``gt_path blur_path``, whitespace-separated and relative to ``root``. Blank lines and ``#`` comments
    are skipped. ``list_file`` may be absolute or relative to ``root``. Item names are the blur paths.
    Options as :class:`PairedFolder`.
    """

    def __init__(self, root: str | os.PathLike, list_file: str | os.PathLike, crop: Size | None = None,
                 augment: bool = False, seed: int | None = None):
        pairs = read_realblur_list(root, list_file)
        super().__init__(pairs, crop, augment, seed)
        self.root, self.list_file = Path(root), Path(list_file)


class SyntheticPairs(_SeededItems, Dataset):
    """Pairs synthesised on the fly from sharp photos (see :mod:`deblurrt.synthesis`).

    Item ``i``: a photo (weighted by sharpness), a crop preferring textured in-focus regions, a random
    flip and quarter turn, then :func:`synthesize_pair` on the crop plus a margin (so the warps see real
    pixels, not reflected borders), centre-cropped to ``crop``. Seeds derive from ``(seed, epoch, i)``:
    the same item in any process, worker count or dataset instance.

    Args:
        photos: a folder of sharp photos, or a list of paths (e.g. the train half of :func:`split_photos`).
        crop: output size, int or ``(h, w)``.
        length: items per epoch.
        severity: overrides ``config.severity`` (preset name or ``(min_px, max_px)`` at a 256 short side).
        config: the blur recipe, default ``BlurConfig()``.
        seed: base seed (an int).
        augment: random flips and quarter turns of the crop.
        max_side, cache: as :class:`~deblurrt.train.data.photos.PhotoPool` (photos with a long side above
            1280 px are downscaled to it; decoded photos are cached in memory, shared by forked workers).
    """

    def __init__(self, photos: str | os.PathLike | Sequence[str | os.PathLike], crop: Size = 256,
                 length: int = 1000, severity: str | tuple[float, float] | None = None,
                 config: BlurConfig | None = None, seed: int = 0, augment: bool = True,
                 max_side: int | None = 1280, cache: bool = True):
        self.crop = _size(crop)
        if length <= 0:
            raise DeblurrtError(f"length must be positive, got {length}")
        self.length = int(length)
        config = config or BlurConfig()
        self.config = config.with_severity(severity) if severity is not None else config
        if int(seed) < 0:
            raise DeblurrtError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        self.epoch = 0
        self.augment = augment
        self.pool = PhotoPool(photos, max_side=max_side, cache=cache)
        height, width = self.crop
        # quarter turns swap the sides, so with augmentation the photos must hold both orientations
        self.pool.check_size(max(height, width) if augment else height, max(height, width) if augment else width)

    def __len__(self) -> int:
        return self.length

    def item(self, index: int, with_kernel: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
        """Item ``index`` as numpy ``(blurry, sharp, record)``; the record says how it was made
        (``with_kernel``: and holds the blur kernel at the pair's centre, see :func:`make_synthetic_item`)."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        entropy = self._entropy(index)
        return make_synthetic_item(self.pool, entropy + [0], entropy + [1], self.crop, self.config,
                                   augment_crops=self.augment, with_kernel=with_kernel)

    def __getitem__(self, index: int) -> dict:
        blurry, sharp, record = self.item(index)
        stem = Path(record["photo"]).stem
        return {"blur": to_tensor(blurry), "sharp": to_tensor(sharp), "name": f"{index:06d}_{stem}"}
