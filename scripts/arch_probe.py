#!/usr/bin/env python3
"""Compare architectures (or recipes) in short from-scratch runs, by gain per blur length, on identical data.

The trainer's validation sets are 480x640 images scored every few hundred steps; to tell in minutes which
design *learns deconvolution* fastest, this script takes the data cost and the noise out of the comparison:

1. it renders a **bank** once (cached under ``--bank``): training pairs from the training photos with the
   training recipe (a data YAML such as configs/data/blur_v3.yaml), and held-out pairs from the validation photos
   in blur-length bins (4-10, 10-20, 20-40, 40-80 px at 256 px crops; warp and kernel recipes; no noise, no
   JPEG, no light-source boost) plus sharp crops (do no harm);
2. it trains every **arm** on exactly the same batches in the same order (random flips / quarter turns drawn
   from one seed), the trainer's loss and precision (per-sample PSNR loss + 0.1 FFT L1, bf16 autocast and
   channels-last where the CPU has AMX), AdamW with a linear warm-up and cosine decay;
3. every ``--eval-every`` steps it scores the held-out bank (mean gain per bin and recipe, sharp PSNR) and a
   fixed slice of the training bank (how well the arm *fits*: a low training gain means the design, not the
   data, is the limit), and it times the steps (gain per CPU-second, not only per step).

An arm is a registry name with optional backbone overrides, ``NAME[:key=value,...]`` (values are YAML), e.g.
``unet_small``, ``unet_small:middle_depth=4``, ``unet_small:depths=[1,1,1,1]``, ``nafnet_nano``.
Prior (``_prior``) models from scratch need the distillation teacher and are not probed here: compare
backbones, then add the prior to the winner; trained prior models can be fine-tuned (``--init
MODEL.safetensors``; the prior's encoder then learns at the same rate as the rest, not the trainer's 0.1x).

    python scripts/arch_probe.py ~/.cache/deblurrt/runs/probe_s6 --photos ~/.cache/deblurrt/train_photos \\
        --val-photos ../shared/data --arms unet_small,unet_nano,mimo_unet_small --steps 1500

``--kernel-weight W`` adds a kernel-prediction auxiliary: a head on the bottleneck predicts each training pair's
blur kernel (rendered once beside the bank and checked to belong to its pairs) and W x its KL divergence joins the
loss; the CSV gains ``kernel_kl``.

Writes ``OUT/<arm>.csv`` (one row per evaluation), ``OUT/summary.md`` and ``OUT/curves.png``. Re-running with
the same OUT skips arms already finished (delete their CSV to redo one). Timings are only meaningful when
nothing else runs on the machine.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import math
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from deblurrt.errors import DeblurrtError

BINS = ((4, 10), (10, 20), (20, 40), (40, 80))
RECIPES = ("warp", "kernel")
CROP = 256
# the kernel auxiliary's grid: 33 cells of 3 px, streaks up to ~90 px (the bank's are at most 80 px)
KERNEL_CELLS, KERNEL_CELL_PX = 33, 3


# ---------------------------------------------------------------------------------------------------- the bank

def _recipe_config(data_yaml: Path):
    """The training recipe (BlurConfig) a data YAML describes, as the trainer builds it."""
    from deblurrt.config import load_config
    from deblurrt.train.config import TrainConfig
    from deblurrt.train.loaders import synthetic_recipe

    config = load_config(TrainConfig, [data_yaml])
    return synthetic_recipe(config)


def _clean(config, low: float, high: float, kernel: bool, sharp: bool = False):
    """A held-out recipe: blur only (no noise, JPEG or light boost), lengths in [low, high] px."""
    return dataclasses.replace(config, severity=(float(low), float(high)), reference_size=None,
                               sharp_prob=1.0 if sharp else 0.0, kernel_prob=1.0 if kernel else 0.0,
                               gamma_prob=0.0, defocus_prob=0.0, highlight_prob=0.0, noise=None,
                               noise_rms=(0.0, 0.0), noise_high_prob=0.0, jpeg_prob=0.0, length_dist="uniform")


def _render_chunk(job: tuple) -> tuple[np.ndarray, np.ndarray]:
    from deblurrt.train.data.datasets import SyntheticPairs

    photos, config, seed, start, count = job
    dataset = SyntheticPairs(photos, crop=CROP, length=start + count, config=config, seed=seed, augment=True)
    blurry = np.empty((count, CROP, CROP, 3), np.uint8)
    sharp = np.empty_like(blurry)
    for offset in range(count):
        b, s, _ = dataset.item(start + offset)
        blurry[offset], sharp[offset] = _to_uint8(b), _to_uint8(s)
    return blurry, sharp


def _render_kernel_chunk(job: tuple) -> tuple[np.ndarray, list[str]]:
    """The kernel grids of a chunk of training pairs, and a digest of each blurry image (to check that they
    are the bank's pairs)."""
    from deblurrt.kernels import kernel_grid
    from deblurrt.train.data.datasets import SyntheticPairs

    photos, config, seed, start, count = job
    dataset = SyntheticPairs(photos, crop=CROP, length=start + count, config=config, seed=seed, augment=True)
    grids = np.empty((count, KERNEL_CELLS, KERNEL_CELLS), np.float32)
    digests = []
    for offset in range(count):
        blurry, _, record = dataset.item(start + offset, with_kernel=True)
        grids[offset] = kernel_grid(record["kernel"], KERNEL_CELLS, KERNEL_CELL_PX)
        digests.append(hashlib.sha256(_to_uint8(blurry).tobytes()).hexdigest())
    return grids, digests


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _render_parts(render_chunk, photos: list[Path], config, seed: int, count: int, workers: int) -> list[tuple]:
    """``render_chunk`` over items 0..count-1 in chunks on ``workers`` processes, in item order."""
    chunk = max(1, math.ceil(count / (workers * 4)))
    jobs = [(photos, config, seed, start, min(chunk, count - start)) for start in range(0, count, chunk)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(render_chunk, jobs)


def _render(photos: list[Path], config, seed: int, count: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    parts = _render_parts(_render_chunk, photos, config, seed, count, workers)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _train_recipe(data_yaml: Path, clean_train: bool):
    config = _recipe_config(data_yaml)
    if clean_train:
        config = dataclasses.replace(config, gamma_prob=0.0, highlight_prob=0.0, noise=None,
                                     noise_rms=(0.0, 0.0), noise_high_prob=0.0, jpeg_prob=0.0)
    return config


def _bank_path(bank_dir: Path, config, train_photos: list[Path], val_photos: list[Path], train_count: int,
               val_count: int, clean_train: bool) -> Path:
    key = hashlib.sha256(json.dumps({
        "recipe": repr(config), "train": sorted(p.name for p in train_photos), "val": sorted(p.name for p in val_photos),
        "train_count": train_count, "val_count": val_count, "bins": BINS, "crop": CROP,
        "clean_train": clean_train}).encode()).hexdigest()[:12]
    return bank_dir / f"bank_{key}.npz"


def build_bank(bank_dir: Path, train_photos: list[Path], val_photos: list[Path], data_yaml: Path,
               train_count: int, val_count: int, workers: int,
               clean_train: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Render (or load) the training and held-out banks; keyed by a hash of everything that shapes them.

    ``clean_train``: the training pairs carry blur only (no noise, JPEG, light boost or display-space
    averaging), as the held-out ones do; the YAML's lengths and shares stay.
    """
    config = _train_recipe(data_yaml, clean_train)
    path = _bank_path(bank_dir, config, train_photos, val_photos, train_count, val_count, clean_train)
    if path.exists():
        with np.load(path) as data:
            names = sorted({name.rsplit("_", 1)[0] for name in data.files})
            return {name: (data[f"{name}_blur"], data[f"{name}_sharp"]) for name in names}
    started = time.perf_counter()
    print(f"arch_probe: rendering the bank ({train_count} training pairs, {val_count} per held-out set) ...",
          flush=True)
    sets = {"train": _render(train_photos, config, 1, train_count, workers)}
    for low, high in BINS:
        for recipe in RECIPES:
            clean = _clean(config, low, high, kernel=recipe == "kernel")
            sets[f"{recipe}{low}-{high}"] = _render(val_photos, clean, 2, val_count, workers)
    sets["sharp"] = _render(val_photos, _clean(config, 0, 0.5, kernel=False, sharp=True), 3, val_count, workers)
    bank_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **{f"{name}_{kind}": arrays[i] for name, arrays in sets.items()
                         for i, kind in enumerate(("blur", "sharp"))})
    partial.replace(path)
    print(f"arch_probe: bank written to {path} in {time.perf_counter() - started:.0f} s", flush=True)
    return sets


def bank_kernels(bank_dir: Path, train_photos: list[Path], val_photos: list[Path], data_yaml: Path,
                 train_count: int, val_count: int, workers: int, train_blur: np.ndarray,
                 clean_train: bool = False) -> np.ndarray:
    """The blur kernel of every training pair of the bank, on the :data:`KERNEL_CELLS` grid
    (:func:`deblurrt.kernels.kernel_grid`), rendered once beside the bank (``bank_KEY_kernels.npz``).

    The pairs are rendered again with the same seeds and each blurry image checked against the bank's, so the
    kernels belong to the pairs the arms train on (and arms with and without the kernel loss see the same
    data).
    """
    config = _train_recipe(data_yaml, clean_train)
    path = _bank_path(bank_dir, config, train_photos, val_photos, train_count, val_count, clean_train)
    path = path.with_name(path.stem + f"_kernels{KERNEL_CELLS}x{KERNEL_CELL_PX}.npz")
    if path.exists():
        with np.load(path) as data:
            return data["kernels"]
    print(f"arch_probe: rendering the kernels of the {train_count} training pairs ...", flush=True)
    parts = _render_parts(_render_kernel_chunk, train_photos, config, 1, train_count, workers)
    kernels = np.concatenate([p[0] for p in parts])
    digests = [d for p in parts for d in p[1]]
    for index, digest in enumerate(digests):
        if digest != hashlib.sha256(train_blur[index].tobytes()).hexdigest():
            raise DeblurrtError(f"training pair {index} rendered again differs from the bank's ({path.parent}); "
                                "fix: delete the bank file and render it again with this code")
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, kernels=kernels)
    partial.replace(path)
    return kernels


# ---------------------------------------------------------------------------------------------------- the arms

def _split_outside_brackets(text: str) -> list[str]:
    """Split on the commas that are not inside ``[...]`` (a list value such as depths=[1,1,1,1] holds commas)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def parse_arm(spec: str) -> tuple[str, dict]:
    """``NAME[:key=value,...]`` -> (registry name, backbone overrides); values are parsed as YAML."""
    name, _, rest = spec.partition(":")
    overrides: dict = {}
    if rest:
        for part in _split_outside_brackets(rest):
            key, sep, value = part.partition("=")
            if not sep:
                raise DeblurrtError(f"arm {spec!r}: expected key=value after ':', received {part!r}")
            parsed = yaml.safe_load(value)
            overrides[key.strip()] = tuple(parsed) if isinstance(parsed, list) else parsed
    return name, overrides


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)


def _psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mse = (pred.clamp(0, 1) - target).square().flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


@torch.no_grad()
def evaluate(model: torch.nn.Module, sets: dict, bf16: bool, train_slice: int) -> dict[str, float]:
    """Mean gain (dB over the blurry input) per held-out set, the sharp set's PSNR, and the training fit; and
    each one's median (``NAME_median``): one near-flat crop, restored from 53 dB to 38, moved a 24-crop bin's
    mean by 0.6 dB while its median moved 0.03."""
    model.eval()
    scores = {}
    for name, (blur, sharp) in sets.items():
        if name == "train":
            blur, sharp = blur[:train_slice], sharp[:train_slice]
        outputs, inputs = [], []
        for start in range(0, len(blur), 16):
            x, y = _to_tensor(blur[start:start + 16]), _to_tensor(sharp[start:start + 16])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(x.contiguous(memory_format=torch.channels_last) if bf16 else x)
            outputs.append(_psnr(out.float(), y))
            inputs.append(_psnr(x, y))
        out_psnr, in_psnr = torch.cat(outputs), torch.cat(inputs)
        values = out_psnr if name == "sharp" else out_psnr - in_psnr
        scores[name] = float(values.mean())
        scores[f"{name}_median"] = float(values.median())
    model.train()
    return scores


def zero_output_layers(model: torch.nn.Module) -> int:
    """Zero the convolutions that make the residual output(s), so the network starts as the identity (its
    output is its input) instead of some 4 dB below it; returns how many were zeroed."""
    names = ("ending", "out1", "out2", "out3")
    count = 0
    for name in names:
        layer = getattr(model, name, None)
        if isinstance(layer, torch.nn.Conv2d):
            torch.nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                torch.nn.init.zeros_(layer.bias)
            count += 1
    return count


# --loss choices: the trainer's pixel losses, and its PSNR loss with a lower cap (``psnrNN``: loss.psnr_cap_db=NN).
# Under the log each sample's squared error is weighed by 1/MSE, so with the trainer's 60 dB cap a near-sharp
# sample restored to 45 dB weighs 100x one blurred to 25 dB; a 30 dB cap floors both alike
LOSSES = ("psnr", "psnr40", "psnr30", "charbonnier")


def probe_loss(name: str, outputs: torch.Tensor | list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """The trainer's deblurring loss (pixel + 0.1 x FFT L1) for ``name`` in :data:`LOSSES`. Arms are called as
    deployed (``model(x)``: MIMO-UNet's full-resolution output only, without the trainer's multi-scale terms)."""
    from deblurrt.train.losses import deblur_loss

    if name not in LOSSES:
        raise DeblurrtError(f"--loss {name!r}: expected one of {', '.join(LOSSES)}")
    pixel = "psnr" if name.startswith("psnr") else name
    cap_db = float(name[4:]) if name.startswith("psnr") and name[4:] else 60.0
    outputs = [o.float() for o in outputs] if isinstance(outputs, list | tuple) else outputs.float()
    return deblur_loss(outputs, target, pixel=pixel, frequency_weight=0.1, psnr_cap_db=cap_db)[0]


def attach_kernel_head(model: torch.nn.Module, spec: str) -> tuple[torch.nn.Module, dict]:
    """A :class:`~deblurrt.train.models.layers.KernelHead` reading the model's bottleneck (``model.middle``'s
    output, captured by a forward hook into the returned dict's ``"features"`` on every call)."""
    from deblurrt.train.models.layers import KernelHead

    middle = getattr(model, "middle", None)
    if not isinstance(middle, torch.nn.Module):
        raise DeblurrtError(f"arm {spec!r}: the kernel loss reads the bottleneck ('middle'), which "
                            f"{type(model).__name__} does not have; fix: a UNet-family arm, or --kernel-weight 0")
    captured: dict = {}
    middle.register_forward_hook(lambda _module, _inputs, output: captured.__setitem__("features", output))
    with torch.no_grad():  # one small forward to learn the bottleneck's width (draws no random numbers)
        model(torch.zeros(1, 3, 64, 64))
    head = KernelHead(captured["features"].shape[1], cells=KERNEL_CELLS)
    return head, captured


def train_arm(spec: str, sets: dict, steps: int, lr: float, batch: int, eval_every: int, seed: int,
              threads: int, out_csv: Path, train_slice: int, zero_init: bool = False,
              init: Path | None = None, loss_name: str = "psnr", kernels: np.ndarray | None = None,
              kernel_weight: float = 0.0) -> list[dict]:
    """Train one arm from scratch on the bank; writes its CSV row by row (a killed run keeps its rows) and
    its final weights beside it (``.pt``, a state dict).

    ``zero_init``: start from the identity (:func:`zero_output_layers`); ``init``: start from the weights an
    earlier arm of the same architecture left (a curriculum: one bank, then another). ``kernel_weight`` > 0:
    add ``kernel_weight`` x the KL divergence of a :class:`KernelHead`'s prediction from each pair's kernel
    (``kernels``, from :func:`bank_kernels`) to the loss; the head is made after the model, so the model starts
    from the same weights as without it, and its mean divergence since the last evaluation is the CSV's
    ``kernel_kl``."""
    from deblurrt.train.loaders import dihedral
    from deblurrt.train.losses import kernel_divergence
    from deblurrt.train.models.registry import create_model
    from deblurrt.train.trainer import cpu_has_fast_bf16

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    name, overrides = parse_arm(spec)
    model = create_model(name, **overrides)
    if init is not None and init.suffix == ".safetensors":
        # a trained model (e.g. the shipped weights): fine-tune it; its architecture must be the arm's, or the
        # arm may add an identity-initialised module to it (``NAME:global_context=true``), as model.init allows
        from deblurrt.train.trainer import load_weights

        try:
            load_weights(model, str(init))
        except DeblurrtError as error:
            raise DeblurrtError(f"arm {spec!r}: {error}; fix: name the arm after the checkpoint's architecture") \
                from error
    elif name.endswith("_prior"):
        # from scratch, a prior's encoder would need the distillation stage (the teacher) first
        raise DeblurrtError(f"arm {spec!r}: a prior model from scratch needs the distillation teacher; probe the "
                            f"backbone ({name.removesuffix('_prior')}) or fine-tune trained weights (--init "
                            "MODEL.safetensors)")
    if zero_init and not zero_output_layers(model):
        raise DeblurrtError(f"arm {spec!r}: --zero-init found no output convolution to zero")
    if init is not None and init.suffix != ".safetensors":
        try:
            model.load_state_dict(torch.load(init, map_location="cpu", weights_only=True))
        except (OSError, RuntimeError) as error:
            raise DeblurrtError(f"arm {spec!r}: cannot start from {init}: {error}. Fix: --init must be the .pt "
                                "an arm of the same architecture wrote, or a .safetensors model") from error
    head, captured = None, {}
    if kernel_weight > 0:
        if kernels is None:
            raise DeblurrtError(f"arm {spec!r}: a kernel weight needs the training pairs' kernels (bank_kernels)")
        head, captured = attach_kernel_head(model, spec)
    bf16 = cpu_has_fast_bf16()
    if bf16:
        model = model.to(memory_format=torch.channels_last)
        head = head.to(memory_format=torch.channels_last) if head is not None else None
    params = sum(p.numel() for p in model.parameters())
    trained = list(model.parameters()) + (list(head.parameters()) if head is not None else [])
    optimizer = torch.optim.AdamW(trained, lr=lr, weight_decay=1e-4, betas=(0.9, 0.99))
    kernel_kl_sum, kernel_kl_count = 0.0, 0
    warmup = min(100, steps // 10)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))

    blur_bank, sharp_bank = sets["train"]
    order = np.random.default_rng(seed).permutation(np.arange(steps * batch) % len(blur_bank))
    rows: list[dict] = []
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    partial = out_csv.with_suffix(".partial.csv")
    train_seconds = 0.0
    try:
        from tqdm import tqdm
        progress = tqdm(range(steps), desc=spec, mininterval=5, file=sys.stdout)
    except ImportError:
        progress = range(steps)
    with partial.open("w", newline="") as handle:
        writer = None
        if init is not None:  # where a fine-tuning starts: the row every later one is compared with
            rows.append({"step": 0, "sec_per_step": 0.0, "params": params,
                         **evaluate(model, sets, bf16, train_slice)})
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerow(rows[0])
        for step in progress:
            started = time.perf_counter()
            index = order[step * batch:(step + 1) * batch]
            variant = int(np.random.default_rng([seed, step]).integers(8))
            x = dihedral(_to_tensor(blur_bank[index]), variant)
            y = dihedral(_to_tensor(sharp_bank[index]), variant)
            if bf16:
                x = x.contiguous(memory_format=torch.channels_last)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(x)
                logits = head(captured["features"]) if head is not None else None
            loss = probe_loss(loss_name, out, y)
            if head is not None:
                target = dihedral(torch.from_numpy(kernels[index])[:, None], variant)
                divergence = kernel_divergence(logits, target)
                kernel_kl_sum, kernel_kl_count = kernel_kl_sum + float(divergence.detach()), kernel_kl_count + 1
                loss = loss + kernel_weight * divergence
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # the model's gradient is clipped on its own, as without the head
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            if head is not None:
                torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optimizer.step()
            train_seconds += time.perf_counter() - started
            if (step + 1) % eval_every == 0 or step + 1 == steps:
                row = {"step": step + 1, "sec_per_step": train_seconds / (step + 1), "params": params,
                       **evaluate(model, sets, bf16, train_slice)}
                if head is not None:
                    row["kernel_kl"] = kernel_kl_sum / max(kernel_kl_count, 1)
                    kernel_kl_sum, kernel_kl_count = 0.0, 0
                rows.append(row)
                if writer is None:
                    writer = csv.DictWriter(handle, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
                handle.flush()
                held = [row[f"{r}{lo}-{hi}"] for r in RECIPES for lo, hi in BINS]
                message = (f"{spec} step {step + 1}: held-out mean gain {np.mean(held):+.3f} dB, "
                           f"40-80 px {row['warp40-80']:+.3f}/{row['kernel40-80']:+.3f}, train fit "
                           f"{row['train']:+.3f}, sharp {row['sharp']:.1f} dB, {row['sec_per_step']:.3f} s/step")
                (progress.write if hasattr(progress, "write") else print)(message)
    weights = out_csv.with_suffix(".pt")
    torch.save(model.state_dict(), weights.with_suffix(".partial.pt"))
    weights.with_suffix(".partial.pt").replace(weights)
    from deblurrt.train.checkpoint import save_model

    # the same weights as a model file `deblurrt validate` and `deblurrt export` read (channels-last is a
    # layout, not a change of values: contiguous copies are saved)
    save_model(model, out_csv.with_suffix(".safetensors"),
               extra_metadata={"deblurrt.arch_probe": f"{spec}, {steps} steps, loss {loss_name}, lr {lr}"})
    partial.replace(out_csv)
    return rows


# ---------------------------------------------------------------------------------------------------- reports

def read_rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def write_summary(out: Path, results: dict[str, list[dict]]) -> None:
    """A markdown table of the last evaluation of every arm (its total steps; cells are mean / median where the
    CSV has medians) and a plot of the curves (means)."""
    columns = [f"{r}{lo}-{hi}" for r in RECIPES for lo, hi in BINS]
    lines = ["| arm | params | s/step | steps | " + " | ".join(columns) + " | held-out mean | train fit | sharp dB |",
             "|---" * (len(columns) + 7) + "|"]

    def cell(row: dict, name: str, form: str) -> str:
        median = row.get(f"{name}_median")
        return format(row[name], form) + (" / " + format(median, form) if median is not None else "")

    for arm, rows in results.items():
        last = rows[-1]
        held = np.mean([last[c] for c in columns])
        lines.append(f"| {arm} | {last['params'] / 1e6:.2f}M | {last['sec_per_step']:.3f} | {int(last['step'])} | "
                     + " | ".join(cell(last, c, "+.2f") for c in columns)
                     + f" | {held:+.3f} | {cell(last, 'train', '+.2f')} | {cell(last, 'sharp', '.1f')} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    panels = [f"{r}{lo}-{hi}" for r in RECIPES for lo, hi in BINS] + ["train", "sharp"]
    fig, axes = plt.subplots(2, 5, figsize=(20, 7), sharex=True)
    for axis, panel in zip(axes.flat, panels, strict=True):
        for arm, rows in results.items():
            axis.plot([r["step"] for r in rows], [r[panel] for r in rows], marker=".", label=arm)
        axis.set_title(panel + (" (PSNR dB)" if panel == "sharp" else " (gain dB)"))
        axis.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    for axis in axes[-1]:
        axis.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=80)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for the per-arm CSVs, summary.md and curves.png")
    parser.add_argument("--compare", nargs="+", metavar="LABEL=CSV",
                        help="train nothing: put arms of earlier probes side by side in OUT; CSV@STEPS shifts "
                             "a later phase (an --init run) to start where its first phase ended")
    parser.add_argument("--photos", type=Path, help="training photos (never the validation ones)")
    parser.add_argument("--val-photos", type=Path,
                        help="data root the split file configs/splits/val_photos.txt is relative to")
    parser.add_argument("--arms", help="arms separated by ';' or ',': NAME[:key=value,...]")
    parser.add_argument("--data", type=Path, default=Path("configs/data/blur_v3.yaml"), help="the training recipe")
    parser.add_argument("--bank", type=Path, default=Path.home() / ".cache/deblurrt/probe_bank")
    parser.add_argument("--train-count", type=int, default=3000)
    parser.add_argument("--val-count", type=int, default=24)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--train-slice", type=int, default=48, help="training pairs scored for the fit")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clean-train", action="store_true",
                        help="training pairs with blur only (no noise, JPEG, light boost, display-space blur)")
    parser.add_argument("--zero-init", action="store_true",
                        help="zero the output convolution(s): every arm starts as the identity")
    parser.add_argument("--init", type=Path, help="start every arm from these weights (an earlier arm's .pt)")
    parser.add_argument("--kernel-weight", type=float, default=0.0,
                        help="add this x the KL divergence of a kernel head's prediction (on the bottleneck) from "
                             "each training pair's blur kernel to the loss (0: off); the kernels are rendered "
                             "once beside the bank")
    parser.add_argument("--loss", choices=LOSSES, default="psnr",
                        help="pixel loss: the trainer's psnr (60 dB cap) or charbonnier, or psnr with a lower cap")
    args = parser.parse_args(argv)
    if args.compare:
        results = {}
        for item in args.compare:
            label, sep, path = item.partition("=")
            path, at, offset = path.partition("@")
            if not sep or not Path(path).is_file() or (at and not offset.isdigit()):
                parser.error(f"--compare {item!r}: expected LABEL=CSV[@STEPS] with an existing CSV")
            # @STEPS: a phase that continued another arm is drawn from where that arm stopped
            results[label] = [{**row, "step": row["step"] + int(offset or 0)} for row in read_rows(Path(path))]
        args.out.mkdir(parents=True, exist_ok=True)
        write_summary(args.out, results)
        return 0
    missing_args = [f"--{name.replace('_', '-')}" for name in ("photos", "val_photos", "arms")
                    if getattr(args, name) is None]
    if missing_args:
        parser.error(f"training arms needs {', '.join(missing_args)} (or --compare to combine earlier probes)")
    from deblurrt.train.data.photos import list_images

    arms = [a for a in (args.arms.split(";") if ";" in args.arms else _split_arms(args.arms)) if a]
    try:
        for arm in arms:
            parse_arm(arm)
        train_photos = list_images(args.photos)
        split = Path(__file__).resolve().parents[1] / "configs/splits/val_photos.txt"
        val_photos = [args.val_photos / line.strip() for line in split.read_text().splitlines()
                      if line.strip() and not line.startswith("#")]
        missing = [p for p in val_photos if not p.exists()]
        if missing:
            raise DeblurrtError(f"{len(missing)} validation photos missing under {args.val_photos} (first: "
                                f"{missing[0]}). Fix: --val-photos must be the data root, e.g. ../shared/data")
        overlap = {p.name for p in train_photos} & {p.name for p in val_photos}
        if overlap:
            raise DeblurrtError(f"{len(overlap)} validation photos are among the training photos (e.g. "
                                f"{sorted(overlap)[0]}). Fix: --photos must exclude the validation split")
        sets = build_bank(args.bank, train_photos, val_photos, args.data, args.train_count, args.val_count,
                          workers=max(1, args.threads), clean_train=args.clean_train)
        kernels = None
        if args.kernel_weight > 0:
            kernels = bank_kernels(args.bank, train_photos, val_photos, args.data, args.train_count,
                                   args.val_count, max(1, args.threads), sets["train"][0],
                                   clean_train=args.clean_train)
    except DeblurrtError as error:
        print(f"arch_probe: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "settings.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=1))
    results = {}
    for arm in arms:
        csv_path = args.out / (arm.replace("/", "_").replace(" ", "") + ".csv")
        if csv_path.exists():
            results[arm] = read_rows(csv_path)
            print(f"arch_probe: {arm} already done ({csv_path})")
            continue
        try:
            results[arm] = train_arm(arm, sets, args.steps, args.lr, args.batch, args.eval_every, args.seed,
                                     args.threads, csv_path, args.train_slice, zero_init=args.zero_init,
                                     init=args.init, loss_name=args.loss, kernels=kernels,
                                     kernel_weight=args.kernel_weight)
        except DeblurrtError as error:
            print(f"arch_probe: {error}", file=sys.stderr)
            return 2
        write_summary(args.out, results)
    write_summary(args.out, results)
    return 0


def _split_arms(text: str) -> list[str]:
    """Split 'a,b:k=v,x=[1,2],c' into arms: a comma starts a new arm unless it is followed by 'key=' text
    inside an arm's override list or sits inside brackets."""
    arms: list[str] = []
    for token in _split_outside_brackets(text):
        if arms and ":" in arms[-1] and "=" in token and ":" not in token.split("=", 1)[0]:
            arms[-1] += "," + token
        else:
            arms.append(token)
    return arms


if __name__ == "__main__":
    sys.exit(main())
