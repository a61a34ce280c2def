#!/usr/bin/env python3
"""Write a coarse-guided checkpoint again with another nesting depth of its guide (``coarse_levels``).

``coarse_levels`` adds no weights (train/models/encdec.py): weights trained with one coarse level run two levels
deep as they are, where a 40-80 px streak is 10-20 px at the coarsest pass. This writes such a copy, to validate
or export it like any candidate, or to start a run from (the run then keeps the nesting by itself):

    python scripts/nest_guide.py weights/unet_nano_prior.safetensors /tmp/nano_L2.safetensors --levels 2
    deblurrt validate /tmp/nano_L2.safetensors unet_nano_prior --incumbent unet_nano_prior
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deblurrt.errors import DeblurrtError
from deblurrt.train.checkpoint import provenance, read_checkpoint, save_model


def nest(source: Path, out: Path, levels: int):
    """Rebuild ``source``'s network with ``coarse_levels=levels``, load its weights unchanged, save to ``out``."""
    from deblurrt.train.models import create_model
    from deblurrt.train.trainer import load_weights

    config, _, metadata = read_checkpoint(source)
    args = dict(config.get("args") or {})
    if not args.get("coarse_guide"):
        raise DeblurrtError(f"{source} has no coarse guide (model.args.coarse_guide is not true): there is nothing "
                            "to nest. Fix: give the weights of a run made with 'model.args={coarse_guide: true}'")
    if levels < 1:
        raise DeblurrtError(f"--levels must be >= 1 (the coarse passes under the guide), received {levels}")
    args["coarse_levels"] = levels
    args.pop("prior", None)  # the registered size's prior; create_model fills it in
    model = create_model(config["name"], **args)
    load_weights(model, str(source))
    return save_model(model, out, extra_metadata={**provenance(metadata), "deblurrt.nested_from": source.name})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a deblurrt .safetensors checkpoint with a coarse guide")
    parser.add_argument("out", type=Path, help="the checkpoint to write")
    parser.add_argument("--levels", type=int, required=True, help="coarse_levels of the copy (1: as trained so far)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.overwrite:
        print(f"nest_guide: '{args.out}' exists. Fix: --overwrite, or another OUT", file=sys.stderr)
        return 2
    try:
        path = nest(args.source, args.out, args.levels)
    except DeblurrtError as error:
        print(f"nest_guide: {error}", file=sys.stderr)
        return 2
    print(f"nest_guide: wrote {path} ({args.source.name} with coarse_levels={args.levels})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
