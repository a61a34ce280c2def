"""How much of a validation set's error is global tone, and how much a model's gain is: the figures behind
MODELS.md's "How much of the gain is tone".

Blur integrates light linearly, so a blurry sRGB frame is brighter than its sharp target (a mean of sRGB codes
is not the code of the mean light). Per blur set of a validation folder (`deblurrt validate --sets`), and per
image, this reports:

- ``target_minus_input_levels``: mean brightness of the target minus that of the blurry input, in 8-bit levels;
- ``linear_mean_diff``: the same in linear light (x 255), which the blur itself keeps: what is left there is
  rounding and clipping;
- ``oracle_shift_gain_db``: PSNR gained by the input alone once offset per channel to the target's mean (the most
  a model could gain by a global tone shift and nothing else).

With models, also per model: ``gain_db`` (what ``deblurrt validate`` reports) and ``linear_fix_gain_db``, the gain
after a post-hoc correction that scales the output in linear light, per channel, to the input's linear mean
(since the blur keeps that mean, a restorer could be held to it). Its difference to ``gain_db`` says whether such
a correction helps.

    python scripts/tone_analysis.py ~/.cache/deblurrt/val_v1 --models weights/unet_nano_prior.onnx --json tone.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError
from deblurrt.metrics import psnr
from deblurrt.synthesis import linear_to_srgb, srgb_to_linear
from deblurrt.validation import NO_HARM_SETS, Restorer, tone_matched


def linear_mean(bgr: np.ndarray) -> np.ndarray:
    """Per-channel mean of the image in linear light, in [0, 1]."""
    return srgb_to_linear(bgr).reshape(-1, 3).mean(axis=0)


def hold_linear_mean(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``output`` (uint8 BGR) scaled in linear light per channel (an exposure change, which leaves black black)
    so that its linear mean equals ``reference``'s."""
    linear = srgb_to_linear(output) * (linear_mean(reference) / np.maximum(linear_mean(output), 1e-6))
    return np.clip(np.rint(linear_to_srgb(np.clip(linear, 0.0, 1.0)) * 255.0), 0, 255).astype(np.uint8)


def capped_psnr(image: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB, at most 100 (identical images), as `deblurrt validate` caps it."""
    return min(psnr(image, target), 100.0)


def analyse_pair(blurry: np.ndarray, sharp: np.ndarray, outputs: dict[str, np.ndarray]) -> dict:
    """The tone figures of one blurry / sharp pair (uint8 BGR), and of each model's output on it."""
    row = {"target_minus_input_levels": float(sharp.astype(np.float64).mean() - blurry.astype(np.float64).mean()),
           "linear_mean_diff": float(np.abs(linear_mean(sharp) - linear_mean(blurry)).mean() * 255.0),
           "oracle_shift_gain_db": capped_psnr(tone_matched(blurry, sharp), sharp) - capped_psnr(blurry, sharp)}
    input_psnr = capped_psnr(blurry, sharp)
    for name, output in outputs.items():
        row[f"{name}:gain_db"] = capped_psnr(output, sharp) - input_psnr
        row[f"{name}:linear_fix_gain_db"] = capped_psnr(hold_linear_mean(output, blurry), sharp) - input_psnr
    return row


def summarise(rows: list[dict]) -> dict:
    """Mean and median of every figure over the rows."""
    return {key: {"mean": round(float(np.mean([r[key] for r in rows])), 3),
                  "median": round(float(np.median([r[key] for r in rows])), 3)} for key in rows[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", type=Path, help="a validation folder (one sub-folder per set with blur/ and sharp/)")
    parser.add_argument("--models", nargs="*", default=[], help="models to score too (.onnx, .safetensors, names)")
    parser.add_argument("--limit", type=int, default=None, help="first N images per set (default all)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per model (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="write the per-image rows and summaries here")
    args = parser.parse_args(argv)
    set_dirs = sorted(d for d in args.sets.iterdir() if (d / "blur").is_dir() and d.name not in NO_HARM_SETS) \
        if args.sets.is_dir() else []
    if not set_dirs:
        print(f"tone_analysis: no blur sets (sub-folders with blur/ and sharp/) under '{args.sets}'. Fix: give "
              "the folder `scripts/prepare_quality_data.sh` made, e.g. ~/.cache/deblurrt/val_v1", file=sys.stderr)
        return 2
    try:
        restorers = {Path(m).name: Restorer(m, threads=args.threads) for m in args.models}
    except DeblurrtError as error:
        print(f"tone_analysis: {error}", file=sys.stderr)
        return 2
    report: dict = {"sets": {}}
    for folder in set_dirs:
        names = sorted(p.name for p in (folder / "blur").iterdir() if p.suffix == ".png")[:args.limit]
        rows = []
        for name in names:
            blurry = cv2.imread(str(folder / "blur" / name), cv2.IMREAD_COLOR)
            sharp = cv2.imread(str(folder / "sharp" / name), cv2.IMREAD_COLOR)
            outputs = {label: restorer(blurry) for label, restorer in restorers.items()}
            rows.append({"name": name, **{k: round(v, 4) for k, v in analyse_pair(blurry, sharp, outputs).items()}})
        summary = summarise([{k: v for k, v in r.items() if k != "name"} for r in rows])
        report["sets"][folder.name] = {"n": len(rows), "summary": summary, "per_image": rows}
        print(f"{folder.name} ({len(rows)} pairs), mean / median:")
        for key, value in summary.items():
            print(f"  {key:40s} {value['mean']:+8.3f} / {value['median']:+8.3f}")
    for restorer in restorers.values():
        restorer.close()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
