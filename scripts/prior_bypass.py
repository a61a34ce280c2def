#!/usr/bin/env python3
"""Write a copy of a prior model whose Semantic Prior Embedding Layers do nothing, to measure how much the
trained network uses its prior: `deblurrt validate MODEL OUT` then shows the gain the prior is worth in THESE
weights (the backbone alone, as trained beside the prior; not a twin trained without it).

Each SPEL computes ``F + A * (gamma * F + beta)``; zeroing the convolutions that make gamma and beta leaves
``F``, so the copy has the same architecture, loads everywhere the original does, and differs only there.

    python scripts/prior_bypass.py weights/unet_nano_prior.safetensors /tmp/nano_no_prior.safetensors
    deblurrt validate weights/unet_nano_prior.safetensors /tmp/nano_no_prior.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from deblurrt.errors import DeblurrtError
from deblurrt.train.checkpoint import load_model, save_model
from deblurrt.train.models.prior import SemanticAttentionTransform


def bypass_prior(model: torch.nn.Module) -> int:
    """Zero the modulation of every SPEL of ``model`` in place; returns how many were switched off."""
    count = 0
    for module in model.modules():
        if isinstance(module, SemanticAttentionTransform):
            with torch.no_grad():
                for conv in (module.scale, module.shift):
                    conv.weight.zero_()
                    if conv.bias is not None:
                        conv.bias.zero_()
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a prior model checkpoint (.safetensors)")
    parser.add_argument("out", type=Path, help="where to write the copy without its prior's effect")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model)
    except DeblurrtError as error:
        print(f"prior_bypass: {error}", file=sys.stderr)
        return 2
    switched = bypass_prior(model)
    if not switched:
        print(f"prior_bypass: {args.model} has no Semantic Prior Embedding Layer (a no-prior model?). Fix: give "
              "a *_prior checkpoint", file=sys.stderr)
        return 2
    save_model(model, args.out, extra_metadata={"deblurrt.prior_bypass": f"{switched} SPEL(s) of {args.model.name}"})
    print(f"prior_bypass: wrote {args.out} ({switched} SPEL(s) switched off)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
