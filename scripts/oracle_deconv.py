#!/usr/bin/env python3
"""How much of the kernel sets' blur can be taken out at all: non-blind Wiener deconvolution with the TRUE kernel.

The quality issue's targets (+3 / +2 dB for unet_small_prior on moderate / severe blur) are gains over the blurry
input on `deblurrt validate`'s photos (Urban100 facades, Sun-Hays scenes, camera photos). How much gain those photos
allow depends on their content as much as on the model: a streak over a flat wall costs nothing, over a brick
facade it destroys detail that no model recovers. This script measures a reference that knows what a blind model
must guess: every pair of the ``kernel_moderate`` / ``kernel_severe`` sets is rebuilt with the validation's own
seeds (the same crops, kernels, noise and 8-bit rounding), and deconvolved in linear light with the kernel that
made it, by a Wiener filter (one regularisation weight per set, the best of a grid: an oracle twice over). The
blurred margin around each crop is deconvolved with it and the outer border is reflected, so the figure is a
lower bound of what exact knowledge of the kernel allows. The same is done with the kernel's straight-line fit
(its length and direction only), to show how much of that depends on knowing the streak's exact shape.

A blind network can beat Wiener where its image prior is strong (Wiener rings at edges and cannot restore the
frequencies a streak zeroes), but the two together tell whether a target is out of reach on this content:

    python scripts/oracle_deconv.py --data-root ../shared/data --json oracle.json

Prints mean / median gain per set and regularisation, and the per-photo table with ``--per-image``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from deblurrt.errors import DeblurrtError
from deblurrt.kernels import KernelRecipe, blur_with_kernel, synthesize_kernel_pair
from deblurrt.metrics import psnr
from deblurrt.synthesis import linear_to_srgb, srgb_to_linear
from deblurrt.validation import (
    SET_NAMES,
    VAL_SIZE,
    _get_set,
    default_split_file,
    pair_region,
    read_photo_list,
)

#: regularisers tried per set, (prior, weight): "flat" is the classic constant noise-to-signal ratio (it also
#: scales the image's mean by 1 / (1 + weight)); "laplacian" weighs it by the Laplacian's power, which grows with
#: frequency as natural images' spectra fall and is zero at the mean (64 at the Nyquist corner)
REGULARISERS = tuple(("flat", w) for w in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)) + tuple(
    ("laplacian", w) for w in (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0))
KERNEL_SETS = ("kernel_moderate", "kernel_severe")


def kernel_otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The optical transfer function of ``kernel`` on a ``shape`` grid, anchored as ``blur_with_kernel`` anchors it
    (OpenCV's filter2D puts the kernel's centre pixel ``(h // 2, w // 2)`` on the output pixel)."""
    padded = np.zeros(shape, dtype=np.float64)
    kh, kw = kernel.shape
    padded[:kh, :kw] = kernel
    padded = np.roll(padded, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.fft.rfft2(padded)


def line_kernel(kernel: np.ndarray) -> np.ndarray:
    """The straight streak with ``kernel``'s centroid, principal direction and spread (a uniform line of length
    ``L`` has variance ``L**2 / 12`` along itself): what a two-parameter (length, angle) blur estimate knows."""
    # a margin on every side keeps the centre pixel (the anchor) and leaves room for a line longer than the box
    margin = max(kernel.shape) // 2
    kernel = np.pad(kernel, margin)
    height, width = kernel.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    weight = kernel / kernel.sum()
    cx, cy = (weight * xs).sum(), (weight * ys).sum()
    cov = np.cov(np.stack([xs.ravel() - cx, ys.ravel() - cy]), aweights=weight.ravel(), bias=True)
    values, vectors = np.linalg.eigh(cov)
    length = max(float(np.sqrt(12.0 * values[-1])), 1.0)
    direction = vectors[:, -1]
    steps = np.linspace(-0.5, 0.5, max(int(length * 4), 2))
    line = np.zeros_like(kernel, dtype=np.float64)
    for t in steps:
        px, py = cx + t * length * direction[0], cy + t * length * direction[1]
        x0, y0 = int(np.floor(px)), int(np.floor(py))
        fx, fy = px - x0, py - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                if 0 <= y0 + dy < height and 0 <= x0 + dx < width:
                    line[y0 + dy, x0 + dx] += wy * wx
    return line / line.sum()


def wiener_variants(blurry_linear: np.ndarray, kernel: np.ndarray, regularisers):
    """Deconvolve an ``H x W x 3`` linear-light image once per ``(prior, weight)`` of ``regularisers``, yielding
    ``((prior, weight), image)``: ``conj(K) / (|K|^2 + weight * R)`` with ``R = 1`` (``prior`` "flat", the classic
    Wiener filter) or ``R = |L|^2``, ``L`` the discrete Laplacian ("laplacian"). The image's spectrum and the
    kernel's transfer function are computed once for all of them. The border is reflected by the kernel's size
    first so the FFT's wrap-around falls outside the image."""
    pad = max(kernel.shape)
    padded = np.pad(blurry_linear, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    shape = padded.shape[:2]
    spectrum = np.fft.rfft2(padded, axes=(0, 1))
    otf = kernel_otf(kernel, shape)
    power = np.abs(otf) ** 2
    laplacian_power = None
    for prior, weight in regularisers:
        if prior == "flat":
            penalty = 1.0
        elif prior == "laplacian":
            if laplacian_power is None:
                laplacian = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
                laplacian_power = np.abs(kernel_otf(laplacian, shape)) ** 2
            penalty = laplacian_power
        else:
            raise DeblurrtError(f"unknown prior {prior!r}: expected 'flat' or 'laplacian'")
        gain = np.conj(otf) / (power + weight * penalty)
        out = np.fft.irfft2(spectrum * gain[..., None], s=shape, axes=(0, 1))
        yield (prior, weight), out[pad:-pad, pad:-pad]


def wiener(blurry_linear: np.ndarray, kernel: np.ndarray, weight: float, prior: str = "flat") -> np.ndarray:
    """One deconvolution of :func:`wiener_variants`."""
    return next(wiener_variants(blurry_linear, kernel, [(prior, weight)]))[1]


def rebuild(photo: np.ndarray, set_name: str, seed: tuple[int, int, int]):
    """The validation pair of ``deblurrt.validation.make_pair`` with its kernel and the blurred margin around it:
    ``(blurry crop, sharp crop, kernel, blurry outer region, margin)``."""
    val_set = _get_set(set_name)
    height, width = VAL_SIZE
    region, margin, blur_seed = pair_region(photo, val_set, seed)
    recipe = KernelRecipe(length_px=val_set.length_px, noise_rms=(0.0, 1.0))
    blurry, sharp, kernel = synthesize_kernel_pair(region, blur_seed, recipe, out_size=VAL_SIZE)
    outer = blur_with_kernel(region.astype(np.float32) / 255.0, kernel)
    # the crop carries the recipe's noise and rounding; the margin (only there to feed the deconvolution the
    # light that streaks into the crop) is the noise-free blur
    outer[margin:margin + height, margin:margin + width] = blurry
    return blurry, sharp, kernel, outer, margin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--data-root", default="../shared/data", help="folder the split file's paths are under")
    parser.add_argument("--split", default=str(default_split_file()), help="held-out photo list")
    parser.add_argument("--count", type=int, default=24, help="pairs per set (the validation's 24)")
    parser.add_argument("--seed", type=int, default=0, help="the validation's seed")
    parser.add_argument("--json", help="write the per-image figures here")
    parser.add_argument("--per-image", action="store_true", help="print every photo's gain")
    args = parser.parse_args(argv)
    try:
        from deblurrt.train.data.photos import PhotoPool

        photos = read_photo_list(args.split, args.data_root)
        pool = PhotoPool(list(photos), max_side=1280, cache=False)
        report: dict[str, dict] = {}
        height, width = VAL_SIZE
        for set_name in KERNEL_SETS:
            set_index = SET_NAMES.index(set_name)
            rows = []
            for i in range(args.count):
                blurry, sharp, kernel, outer, margin = rebuild(pool.image(i % len(photos)), set_name,
                                                               (args.seed, set_index, i))
                linear = srgb_to_linear(outer.astype(np.float64))
                row = {"photo": Path(pool.names[i % len(photos)]).stem, "input_psnr": round(psnr(blurry, sharp), 3),
                       "kernel_px": list(kernel.shape)}
                for variant, used in (("", kernel), ("line_", line_kernel(kernel))):
                    for (prior, weight), deconvolved in wiener_variants(linear, used, REGULARISERS):
                        restored = linear_to_srgb(np.clip(deconvolved, 0.0, 1.0))
                        restored = np.clip(restored[margin:margin + height, margin:margin + width], 0, 1)
                        restored = np.rint(restored * 255.0) / 255.0
                        output_psnr = psnr(restored.astype(np.float32), sharp)
                        row[f"{variant}gain_{prior}_{weight:g}"] = round(output_psnr - row["input_psnr"], 3)
                rows.append(row)
                if args.per_image:
                    best = max(REGULARISERS, key=lambda r: row[f"gain_{r[0]}_{r[1]:g}"])
                    print(f"{set_name} {i:02d} {row['photo'][:28]:28s} in {row['input_psnr']:5.2f} dB  "
                          f"best {row[f'gain_{best[0]}_{best[1]:g}']:+5.2f} dB with {best[0]} {best[1]:g}", flush=True)
            report[set_name] = {"images": rows}
            for variant, label in (("", "the true kernel"), ("line_", "its straight-line fit")):
                means = {f"{prior}_{weight:g}": float(np.mean([r[f"{variant}gain_{prior}_{weight:g}"] for r in rows]))
                         for prior, weight in REGULARISERS}
                best = max(means, key=means.get)
                gains = [r[f"{variant}gain_{best}"] for r in rows]
                report[set_name][variant + "wiener"] = {
                    "regulariser": best, "mean_gain_db": float(np.mean(gains)), "median_gain_db": float(np.median(gains)),
                    "by_regulariser": means}
                print(f"{set_name}: Wiener with {label}, {best}: mean {np.mean(gains):+.2f} dB, "
                      f"median {np.median(gains):+.2f} dB  (mean by regulariser: "
                      + ", ".join(f"{k} {v:+.2f}" for k, v in means.items()) + ")", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
    except DeblurrtError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
