#!/usr/bin/env python3
"""Write a UNet checkpoint again with more residual blocks per level, the new blocks starting as the identity.

A capacity probe that does not throw away a long lineage: the grown net computes exactly what the source does
(every source weight is kept; each added ResBlock's second convolution is zero, so ``x + conv2(relu(conv1(x)))``
is ``x``), and training then decides what the extra depth is worth. Blocks are appended after the existing ones
of a level; deeper coarse levels also widen the receptive field (one block at 1/16 resolution adds 64 px of
reach), which is where a 40-80 px streak needs it.

    python scripts/grow_depth.py weights/unet_nano_prior.safetensors /tmp/nano_deep.safetensors \\
        --depths 1,1,2 --middle-depth 3
    deblurrt train configs/unet_nano_prior.yaml model.init=/tmp/nano_deep.safetensors \\
        'model.args={coarse_guide: true, depths: [1, 1, 2], middle_depth: 3}' ...

The run's ``model.args`` must name the grown depths (and the source's other options), as printed here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

from deblurrt.errors import DeblurrtError
from deblurrt.train.checkpoint import provenance, read_checkpoint, save_model

#: state-dict keys of blocks inside a level: ``encoders.<level>.<block>.``, ``decoders.<i>.<block>.``, ``middle.<block>.``
_BLOCK_KEY = re.compile(r"^(?:(?:encoders|decoders)\.\d+|middle)\.\d+\.")


def grow(source: Path, out: Path, depths: tuple[int, ...] | None, middle_depth: int | None) -> tuple[Path, dict]:
    """Rebuild ``source``'s UNet with ``depths`` / ``middle_depth`` (None: as it is), copy its weights, start the
    added blocks as the identity and save to ``out``; returns (path, the run's model.args: those that differ from the registered net's)."""
    from deblurrt.train.models import create_model, get_spec

    config, state, metadata = read_checkpoint(source)
    if config.get("backbone") != "unet":
        raise DeblurrtError(f"{source} holds a '{config.get('backbone')}' network; growing depth is written for the "
                            "plain UNet (its ResBlocks start as the identity with a zero second convolution). "
                            "Fix: give a unet_* checkpoint")
    args = dict(config.get("args") or {})
    old_depths, old_middle = tuple(args.get("depths", (1, 1, 1))), int(args.get("middle_depth", 1))
    new_depths = old_depths if depths is None else tuple(depths)
    new_middle = old_middle if middle_depth is None else middle_depth
    if len(new_depths) != len(old_depths):
        raise DeblurrtError(f"--depths needs one count per level of the source ({len(old_depths)} levels: "
                            f"{list(old_depths)}), received {list(new_depths)}")
    if any(new < old for new, old in zip(new_depths, old_depths, strict=True)) or new_middle < old_middle:
        raise DeblurrtError(f"growing only adds blocks: the source has depths {list(old_depths)}, middle_depth "
                            f"{old_middle}; received depths {list(new_depths)}, middle_depth {new_middle}")
    if new_depths == old_depths and new_middle == old_middle:
        raise DeblurrtError(f"depths {list(new_depths)} and middle_depth {new_middle} are the source's own: nothing "
                            "to grow. Fix: give more blocks with --depths or --middle-depth")
    args.update(depths=list(new_depths), middle_depth=new_middle)
    args.pop("prior", None)  # the registered size's prior; create_model fills it in
    model = create_model(config["name"], **args)
    own = model.state_dict()
    for key, value in state.items():
        if key not in own or own[key].shape != value.shape:
            raise DeblurrtError(f"{source}: weight {key} {tuple(value.shape)} has no place in the grown net "
                                f"({tuple(own[key].shape) if key in own else 'absent'}); the checkpoint does not "
                                "match its own config")
    added = {key for key in own if key not in state}
    strays = [key for key in added if not _BLOCK_KEY.match(key)]
    if strays:
        raise DeblurrtError(f"{source}: the grown net has new weights outside its blocks ({sorted(strays)[:3]}); "
                            "the checkpoint lacks weights its config asks for")
    model.load_state_dict(state, strict=False)
    with torch.no_grad():
        for name, module in model.named_modules():
            if name + ".conv2.weight" in added:
                # identity start: the block's residual branch outputs zero until training moves conv2
                torch.nn.init.zeros_(module.conv2.weight)
                torch.nn.init.zeros_(module.conv2.bias)
    path = save_model(model, out, extra_metadata={**provenance(metadata), "deblurrt.grown_from": source.name})
    registered = get_spec(config["name"]).config()["args"]
    return path, {key: value for key, value in args.items() if registered.get(key) != value}


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected block counts such as 1,1,2, received {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"every level needs at least one block, received {text!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a deblurrt unet_* .safetensors checkpoint")
    parser.add_argument("out", type=Path, help="the checkpoint to write")
    parser.add_argument("--depths", type=_counts, help="blocks per encoder (and decoder) level, finest first, "
                                                        "e.g. 1,1,2 (default: the source's)")
    parser.add_argument("--middle-depth", type=int, help="blocks in the bottleneck (default: the source's)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.overwrite:
        print(f"grow_depth: '{args.out}' exists. Fix: --overwrite, or another OUT", file=sys.stderr)
        return 2
    try:
        path, run_args = grow(args.source, args.out, args.depths, args.middle_depth)
    except DeblurrtError as error:
        print(f"grow_depth: {error}", file=sys.stderr)
        return 2
    shown = ", ".join(f"{key}: {json.dumps(value)}" for key, value in sorted(run_args.items()))
    print(f"grow_depth: wrote {path}; train from it with 'model.args={{{shown}}}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
