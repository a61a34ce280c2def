"""Data for the trainer: step-indexed training batches and the fixed validation set.

Every training sample is a pure function of ``(run.seed, global sample number)``: sample ``g`` is item
``perm_e[g mod n]`` of epoch ``e = g div n``, where ``perm_e`` is a permutation seeded by ``(seed, e)`` and
the item's crop/blur/augmentation are seeded by ``(seed, e, index)`` inside the dataset. Step ``s`` on rank
``r`` of ``w`` takes samples ``(s * w + r) * batch ... + batch``. So a resumed run draws exactly the batches
the uninterrupted run would have, with any number of DataLoader workers, and DDP ranks never overlap.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from deblurrt.errors import DeblurrtError
from deblurrt.train.config import TrainConfig, check_values, parse_defocus_px

MIXED_SEVERITY = "mixed"


def _single_threaded_opencv(_worker_id: int) -> None:
    """Worker start-up: one OpenCV thread per worker. Safe here because workers are spawned (the deadlock
    is a forked worker's); without it each of N workers runs a pool as large as the machine."""
    import cv2

    cv2.setNumThreads(1)


class _EpochIndexed(Dataset):
    """Serves ``(epoch, index)`` keys by setting the wrapped dataset's epoch before each item."""

    def __init__(self, base: Dataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        self.base.set_epoch(epoch)
        return self.base[index]


class StepBatchSampler(Sampler):
    """Yields, for steps ``start_step, start_step + 1, ...``, this rank's list of ``(epoch, index)`` keys."""

    def __init__(self, dataset_size: int, batch_size: int, seed: int, rank: int, world_size: int,
                 start_step: int, total_steps: int):
        self.size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start_step = start_step
        self.total_steps = total_steps
        self._permutations: dict[int, np.ndarray] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._permutations:
            self._permutations = {epoch: np.random.default_rng([self.seed, epoch, 7]).permutation(self.size)}
        return self._permutations[epoch]

    def keys_for_step(self, step: int) -> list[tuple[int, int]]:
        """The ``(epoch, index)`` keys of this rank's batch at ``step``."""
        first = (step * self.world_size + self.rank) * self.batch_size
        keys = []
        for sample in range(first, first + self.batch_size):
            epoch, position = divmod(sample, self.size)
            keys.append((epoch, int(self._permutation(epoch)[position])))
        return keys

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.total_steps):
            yield self.keys_for_step(step)

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)


def _collate(items: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([item["blur"] for item in items]), torch.stack([item["sharp"] for item in items])


def _severity(text: str):
    from deblurrt.synthesis import SEVERITY_PRESETS, parse_severity

    if text == MIXED_SEVERITY:
        # A continuous range from the mildest to the most severe preset.
        return (min(lo for lo, _ in SEVERITY_PRESETS.values()), max(hi for _, hi in SEVERITY_PRESETS.values()))
    return parse_severity(text)


def synthetic_recipe(config: TrainConfig):
    """The :class:`~deblurrt.synthesis.BlurConfig` that ``data.*`` describes."""
    from deblurrt.synthesis import BlurConfig, parse_severity

    check_values(config)  # the shares, lengths and severities: one set of rules for every caller
    data = config.data
    if data.blur_px:
        severity, reference = parse_severity(data.blur_px), None
    else:
        severity, reference = _severity(data.severity), 256
    return BlurConfig(severity=severity, reference_size=reference, sharp_prob=data.sharp_share,
                      kernel_prob=data.kernel_share, align=data.align, length_dist=data.blur_dist,
                      gamma_prob=data.gamma_share, defocus_prob=data.defocus_share,
                      defocus_px=parse_defocus_px(data.defocus_px) if data.defocus_px else BlurConfig.defocus_px)


def build_train_dataset(config: TrainConfig) -> Dataset:
    """The training dataset the config describes (crops and augmentation on)."""
    from deblurrt.train.data.datasets import GoProFolder, PairedFolder, RealBlurList, SyntheticPairs

    data = config.data
    if not data.root:
        raise DeblurrtError("data.root is empty: set it to a folder of sharp photos (data.kind=synthetic) or "
                            "to the dataset root, e.g. data.root=/data/photos")
    root = Path(data.root)
    if not root.exists():
        raise DeblurrtError(f"data.root={root} does not exist")
    if data.kind == "synthetic":
        from deblurrt.train.data.photos import list_images

        photos = list_images(root)
        excluded = {name for name in data.exclude} | {Path(name).stem for name in data.exclude}
        photos = [p for p in photos if p.name not in excluded and p.stem not in excluded]
        if not photos:
            raise DeblurrtError(f"no photos left in {root} after data.exclude; add sharp photos")
        # Virtual length: items are indexed by (epoch, index), so any length gives fresh crops each epoch.
        return SyntheticPairs(photos, crop=data.crop, length=max(1000, len(photos) * 50),
                              config=synthetic_recipe(config), seed=config.run.seed, augment=True)
    if data.kind == "paired":
        return PairedFolder(root, crop=data.crop, augment=True, seed=config.run.seed)
    if data.kind == "gopro":
        return GoProFolder(root, split="train", crop=data.crop, augment=True, seed=config.run.seed)
    if data.kind == "realblur":
        if not data.list_file:
            raise DeblurrtError("data.kind=realblur needs data.list_file (e.g. RealBlur_J_train_list.txt)")
        return RealBlurList(root, root / data.list_file, crop=data.crop, augment=True, seed=config.run.seed)
    raise DeblurrtError(f"data.kind={data.kind!r}: expected synthetic, paired, gopro or realblur")


def dihedral(batch: torch.Tensor, variant: int) -> torch.Tensor:
    """One of the 8 flips / quarter turns of an ``N x C x H x W`` batch (0: unchanged; 1-3: turned by 90, 180,
    270 degrees; 4-7: the same, mirrored). Motion blur turns with its image, so a pair stays a valid pair."""
    if not 0 <= variant < 8:
        raise ValueError(f"dihedral variant must be 0-7, received {variant}")
    turned = torch.rot90(batch, variant % 4, dims=(-2, -1)) if variant % 4 else batch
    return torch.flip(turned, dims=(-1,)) if variant >= 4 else turned


def _reused(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], reuse: int, start_step: int,
            total_steps: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each batch of ``batches`` for ``reuse`` consecutive steps: first as loaded, then in a flip / turn drawn
    from ``(seed, step)``, so a resumed run sees exactly what the uninterrupted one saw."""
    current = None
    for step in range(start_step, total_steps):
        if current is None or step % reuse == 0:
            current = next(batches)
        if step % reuse == 0:
            yield current
            continue
        square = current[0].shape[-1] == current[0].shape[-2]
        choices = (1, 2, 3, 4, 5, 6, 7) if square else (2, 4, 6)  # a quarter turn would change H x W
        variant = choices[int(np.random.default_rng([seed, step, 11]).integers(len(choices)))]
        yield tuple(dihedral(t, variant) for t in current)


def _pooled(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], reuse: int, pool_batches: int,
            first_loaded: int, start_step: int, total_steps: int,
            seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Steps' batches drawn at random from the last ``pool_batches`` loaded batches (data echoing with a
    shuffle pool). Loaded batch ``b`` joins the pool at step ``b * reuse``; ``batches`` starts at loaded batch
    ``first_loaded``, early enough that a resumed run refills the pool the uninterrupted run had. Which samples
    and which flip / turn each one gets are drawn from ``(seed, step)``, so a resume is exact."""
    from collections import deque

    pool: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=pool_batches)
    loaded = first_loaded - 1
    for step in range(start_step, total_steps):
        while loaded < step // reuse:
            pool.append(next(batches))
            loaded += 1
        per_batch = pool[0][0].shape[0]
        rng = np.random.default_rng([seed, step, 13])
        picks = rng.choice(len(pool) * per_batch, size=per_batch, replace=False)
        square = pool[0][0].shape[-1] == pool[0][0].shape[-2]
        choices = 8 if square else 4  # variants 0, 2, 4, 6 keep H x W (see dihedral)
        blurs, sharps = [], []
        for pick in picks:
            blur_batch, sharp_batch = pool[int(pick) // per_batch]
            item = int(pick) % per_batch
            variant = int(rng.integers(choices))
            variant = variant if square else 2 * variant
            blurs.append(dihedral(blur_batch[item:item + 1], variant))
            sharps.append(dihedral(sharp_batch[item:item + 1], variant))
        yield torch.cat(blurs), torch.cat(sharps)


def build_train_batches(config: TrainConfig, rank: int, world_size: int,
                        start_step: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An iterator of ``(blur, sharp)`` batches for steps ``start_step .. run.steps - 1`` of this rank."""
    check_values(config)  # reuse >= 1, a pool of whole batches that needs reuse: the config's own rules
    reuse, pool, batch_size = config.data.reuse, config.data.pool, config.data.batch_size
    pool_batches = pool // batch_size
    dataset = build_train_dataset(config)
    # with reuse, the loader makes one batch per `reuse` steps: batch b serves steps b*reuse .. b*reuse+reuse-1
    # (with a pool, batch b joins the pool at step b*reuse; a resume reloads the batches still in the pool)
    first_loaded = max(0, start_step // reuse - pool_batches + 1) if pool_batches else start_step // reuse
    sampler = StepBatchSampler(len(dataset), batch_size, config.run.seed, rank, world_size,
                               first_loaded, -(-config.run.steps // reuse))
    workers = config.data.workers
    # Spawned, not forked, workers: a fork after the parent has used OpenCV's thread pool (decoding and
    # resizing the photos) can deadlock the child's first parallel OpenCV call.
    loader = DataLoader(_EpochIndexed(dataset), batch_sampler=sampler, num_workers=workers,
                        collate_fn=_collate, persistent_workers=False, prefetch_factor=4 if workers else None,
                        multiprocessing_context="spawn" if workers else None,
                        worker_init_fn=_single_threaded_opencv if workers else None)
    if reuse == 1:
        return iter(loader)
    if pool_batches:
        return _pooled(iter(loader), reuse, pool_batches, first_loaded, start_step, config.run.steps,
                       config.run.seed)
    return _reused(iter(loader), reuse, start_step, config.run.steps, config.run.seed)


def build_validation_set(config: TrainConfig) -> dict[str, list[tuple[torch.Tensor, torch.Tensor, str]]] | None:
    """The fixed validation pairs per set (full images, in name order), or None when ``data.val_root`` is
    empty. ``val_root`` is one paired folder (one set, named after it) or a folder of paired folders (e.g.
    the blur-only sets of :mod:`deblurrt.validation`); ``data.val_limit`` caps each set."""
    if not config.data.val_root:
        return None
    from deblurrt.train.data.datasets import PairedFolder

    root = Path(config.data.val_root)
    if (root / "blur").is_dir():
        folders = {root.name: root}
    else:
        folders = {d.name: d for d in sorted(root.iterdir()) if (d / "blur").is_dir() and (d / "sharp").is_dir()} \
            if root.is_dir() else {}
        if not folders:
            raise DeblurrtError(f"data.val_root={root} holds no paired folder (blur/ + sharp/), neither itself nor "
                                "in subfolders. Fix: point it at `deblurrt data synth` output or at blur-only "
                                "validation sets (deblurrt validate --build)")
    sets = {}
    for name, folder in folders.items():
        dataset = PairedFolder(folder, crop=None, augment=False)
        limit = config.data.val_limit or len(dataset)
        items = [dataset[i] for i in range(min(limit, len(dataset)))]
        sets[name] = [(item["blur"], item["sharp"], item["name"]) for item in items]
    return sets
