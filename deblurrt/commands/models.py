"""List the model zoo: every registered architecture with its backbone, whether it carries the semantic
prior, its parameter count and its cost in GMACs (multiply-accumulates) per 1280x720 frame.

Names are <backbone>_<size>[_prior]: backbones unet, mimo_unet, nafnet; sizes nano (CPU real time),
small (Jetson Orin real time at 720p with TensorRT FP16), base (desktop GPU quality). Each prior model
sits next to its no-prior twin, so the prior's extra cost reads off two adjacent rows.

examples:
  deblurrt models
  deblurrt models --json > zoo.json
  deblurrt models --tiny          also the tiny test variants
"""

from __future__ import annotations

import argparse
import json

from deblurrt.errors import MissingDependencyError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt models``."""
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of {name, backbone, prior, params, gmacs_720p}")
    parser.add_argument("--tiny", action="store_true", help="include the tiny test variants")


def run(args: argparse.Namespace) -> int:
    """Print the registry as a table or JSON."""
    try:
        from deblurrt.train.complexity import measure_cost
        from deblurrt.train.models.registry import get_spec, list_models
    except ImportError as error:
        raise MissingDependencyError("torch", "'deblurrt models'", "pip install 'deblurrt[train]'") from error

    rows = []
    for name in list_models(include_tiny=args.tiny):
        spec = get_spec(name)
        cost = measure_cost(name, 720, 1280)
        rows.append({"name": name, "backbone": spec.backbone, "prior": spec.prior, "params": cost.params,
                     "gmacs_720p": round(cost.gmacs, 3)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<24} {'backbone':<10} {'prior':<6} {'params':>10} {'GMACs@720p':>11}  prior cost")
    twins = {row["name"]: row for row in rows}
    for row in rows:
        extra = ""
        if row["prior"]:
            base = twins.get(row["name"].removesuffix("_prior"))
            if base:
                extra = (f"+{(row['params'] - base['params']) / 1e6:.2f} M params, "
                         f"+{row['gmacs_720p'] - base['gmacs_720p']:.2f} GMACs")
        print(f"{row['name']:<24} {row['backbone']:<10} {'yes' if row['prior'] else 'no':<6} "
              f"{row['params'] / 1e6:>9.3f}M {row['gmacs_720p']:>11.2f}  {extra}")
    return 0
