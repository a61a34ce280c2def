"""List the model zoo: every registered architecture with its backbone, whether it carries the semantic
prior, its parameter count and its cost in GMACs (multiply-accumulates) per 1280x720 frame.

Names are <backbone>_<size>[_prior]: backbones unet, mimo_unet, nafnet; sizes nano (CPU real time),
small (Jetson Orin real time at 720p with TensorRT FP16), base (desktop GPU quality). Each prior model
sits next to its no-prior twin, so the prior's extra cost reads off two adjacent rows.

The table is computed once with torch and stored: deblurrt/zoo.json ships with the package, stamped with a
fingerprint of the model code (train/models/*.py, train/complexity.py). While the code matches, the table is
printed without importing torch (instant, and on installs without torch); when the code changed, it is
measured again (torch needed, a few seconds) and cached in ~/.cache/deblurrt/ ($XDG_CACHE_HOME). --measure
always measures. Maintainers refresh the shipped table with:
  python -m deblurrt.commands.models --write-table

examples:
  deblurrt models
  deblurrt models --json > zoo.json
  deblurrt models --tiny          also the tiny test variants
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from deblurrt.errors import DeblurrtError, MissingDependencyError

#: the table shipped with the package (all models, tiny ones included)
SHIPPED_TABLE = Path(__file__).resolve().parents[1] / "zoo.json"
#: the frame the GMACs are counted for
HEIGHT, WIDTH = 720, 1280


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt models``."""
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of {name, backbone, prior, params, gmacs_720p}")
    parser.add_argument("--tiny", action="store_true", help="include the tiny test variants")
    parser.add_argument("--measure", action="store_true",
                        help="measure now with torch instead of using the stored table (a few seconds)")


def model_sources() -> list[Path]:
    """The files the table depends on: the model code and the cost counter (found without importing them)."""
    spec = importlib.util.find_spec("deblurrt.train")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations)))
    return sorted((root / "models").glob("*.py")) + [root / "complexity.py"]


def fingerprint() -> str:
    """A hash of :func:`model_sources` (names and contents): the table is valid while it is unchanged."""
    digest = hashlib.sha256()
    for path in model_sources():
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"missing")
    return digest.hexdigest()[:16]


def measure_rows() -> list[dict[str, Any]]:
    """Every registered model (tiny ones included), measured with torch on the meta device."""
    try:
        from deblurrt.train.complexity import measure_cost
        from deblurrt.train.models.registry import get_spec, list_models
    except ImportError as error:
        raise MissingDependencyError("torch", "'deblurrt models' (the model code changed since the stored table "
                                     "was made, so it must be measured)", "pip install 'deblurrt[train]'") from error
    rows = []
    for name in list_models(include_tiny=True):
        spec = get_spec(name)
        cost = measure_cost(name, HEIGHT, WIDTH)
        rows.append({"name": name, "backbone": spec.backbone, "size": spec.size, "prior": spec.prior,
                     "params": cost.params, "gmacs_720p": round(cost.gmacs, 3)})
    return rows


def _cache_path(stamp: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "deblurrt" / f"zoo-{stamp}.json"


def _read_table(path: Path, stamp: str) -> list[dict[str, Any]] | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("fingerprint") != stamp:
        return None
    rows = document.get("rows")
    return rows if isinstance(rows, list) else None


def table_document(rows: list[dict[str, Any]], stamp: str) -> dict[str, Any]:
    """What the shipped table and the cache hold."""
    return {"fingerprint": stamp, "frame": [WIDTH, HEIGHT], "rows": rows}


def load_rows(measure: bool = False) -> list[dict[str, Any]]:
    """The zoo table: the shipped one while the model code matches it, else a cached or new measurement."""
    from deblurrt.outputs import write_json_atomic

    stamp = fingerprint()
    if not measure:
        for path in (SHIPPED_TABLE, _cache_path(stamp)):
            rows = _read_table(path, stamp)
            if rows is not None:
                return rows
    rows = measure_rows()
    try:
        write_json_atomic(_cache_path(stamp), table_document(rows, stamp))
    except DeblurrtError as error:  # a cache that cannot be written only costs time on the next run
        print(f"deblurrt models: note: the table could not be cached ({error})", file=sys.stderr)
    return rows


def run(args: argparse.Namespace) -> int:
    """Print the registry as a table or JSON."""
    rows = [{key: row[key] for key in ("name", "backbone", "prior", "params", "gmacs_720p")}
            for row in load_rows(args.measure) if args.tiny or row.get("size") != "tiny"]
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


def write_table(path: Path = SHIPPED_TABLE) -> Path:
    """Measure every model and write the shipped table (maintainers, after changing the model code)."""
    from deblurrt.outputs import write_text_atomic

    document = table_document(measure_rows(), fingerprint())
    return write_text_atomic(path, json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    maintainer = argparse.ArgumentParser(description="refresh the shipped zoo table (deblurrt/zoo.json)")
    maintainer.add_argument("--write-table", action="store_true", required=True)
    maintainer.parse_args()
    print(f"wrote {write_table()}")
