#!/usr/bin/env python3
"""Average the weights of checkpoints of one architecture ("model soup") into a new checkpoint.

Checkpoints of one lineage (a run and its fine-tuned continuation, or two late checkpoints of one run)
often average into weights better than each; validate the result like any candidate
(`deblurrt validate OUT A B`) and ship it only if it wins. The output's metadata names its parts.

    python scripts/soup.py soup.safetensors weights/unet_nano_prior.safetensors runs/ft/last.safetensors
    python scripts/soup.py soup.safetensors A.safetensors B.safetensors --weights 0.3,0.7
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deblurrt.errors import DeblurrtError
from deblurrt.train.checkpoint import average_checkpoints, save_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the checkpoint to write (.safetensors)")
    parser.add_argument("checkpoints", nargs="+", type=Path, help="two or more deblurrt .safetensors checkpoints")
    parser.add_argument("--weights", default="", help="comma-separated weights, one per checkpoint (default equal)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    except ValueError:
        print(f"soup: --weights takes numbers separated by commas, received '{args.weights}'", file=sys.stderr)
        return 2
    if len(args.checkpoints) < 2:
        print("soup: give at least two checkpoints to average", file=sys.stderr)
        return 2
    if args.out.exists() and not args.overwrite:
        print(f"soup: '{args.out}' exists. Fix: --overwrite, or another OUT", file=sys.stderr)
        return 2
    try:
        model = average_checkpoints(args.checkpoints, weights)
    except DeblurrtError as error:
        print(f"soup: {error}", file=sys.stderr)
        return 2
    shares = weights or [1.0] * len(args.checkpoints)
    parts = " + ".join(f"{w:g} x {p.name}" for w, p in zip(shares, args.checkpoints, strict=True))
    save_model(model, args.out, extra_metadata={"deblurrt.soup": parts})
    print(f"soup: wrote {args.out} = ({parts}) / {sum(shares):g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
