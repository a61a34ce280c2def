#!/usr/bin/env python3
"""Learning curves of a lineage: runs that continue one another (each run's ``model.init`` is the previous
run's weights), plotted on one step axis from the trainer's own validations.

Each run's ``metrics.csv`` (written by ``deblurrt train``) holds a validation row every ``run.val_every`` steps:
the gain over the input per blur set (``val_gain/<set>``, dB) and the do-no-harm PSNR (``val_noharm/<set>``).
Here the runs are laid end to end (run k starts where runs 1..k-1 ended, by their ``run.steps``, or by their
last logged step for a run still going), so one picture shows whether more steps of the same still move the
gains, and where each continuation started.

    python scripts/lineage_curves.py lineage.png ~/.cache/deblurrt/runs/s12/nano_guide2 \\
        ~/.cache/deblurrt/runs/s13/nano_guide4 ~/.cache/deblurrt/runs/s13/nano_guide5 --md lineage.md

The trainer validates on ``data.val_limit`` images per set (6 by default): the curves are the trend, not
a ship decision (that is ``deblurrt validate`` on the full sets).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from deblurrt.errors import DeblurrtError

GAIN, NOHARM = "val_gain/", "val_noharm/"


@dataclass
class Run:
    """One run's validation rows, placed on the lineage's step axis."""

    label: str
    start: int  # lineage step at which this run began
    length: int  # its steps (run.steps, or the last logged step of a run still going)
    rows: list[dict[str, float]] = field(default_factory=list)  # step (own) + the validation columns


def read_run(folder: Path, label: str, start: int) -> Run:
    """The validation rows of the run in ``folder`` (its ``metrics.csv``; ``config.yaml`` gives its length)."""
    metrics = folder / "metrics.csv"
    if not metrics.is_file():
        raise DeblurrtError(f"{folder} holds no metrics.csv: give the run.out_dir of a 'deblurrt train' run")
    with open(metrics, newline="") as handle:
        table = list(csv.DictReader(handle))
    rows = []
    for row in table:
        values = {key: float(value) for key, value in row.items()
                  if value not in ("", None) and key.startswith((GAIN, NOHARM))}
        if values:
            rows.append({"step": int(row["step"]), **values})
    if not rows:
        raise DeblurrtError(f"{metrics} has no validation rows (val_gain/..., val_noharm/...): the run validated "
                            "on no blur-only sets, or has not reached its first run.val_every step")
    last_logged = max(int(row["step"]) for row in table)
    planned = _planned_steps(folder / "config.yaml")
    # a finished run ends at run.steps; a run still going (or stopped) has reached only its last logged step
    length = planned if planned is not None and last_logged >= planned else last_logged
    return Run(label, start, length, rows)


def _planned_steps(config_path: Path) -> int | None:
    if not config_path.is_file():
        return None
    config = yaml.safe_load(config_path.read_text()) or {}
    steps = (config.get("run") or {}).get("steps")
    return int(steps) if steps else None


def read_lineage(folders: list[Path], labels: list[str]) -> list[Run]:
    """The runs in order, each starting where the previous one ended."""
    if labels and len(labels) != len(folders):
        raise DeblurrtError(f"--labels names {len(labels)} run(s) but {len(folders)} run folder(s) were given: "
                            "give one label per run, comma-separated")
    runs, start = [], 0
    for index, folder in enumerate(folders):
        run = read_run(folder, labels[index] if labels else folder.name, start)
        runs.append(run)
        start += run.length
    return runs


def set_names(runs: list[Run], prefix: str) -> list[str]:
    """The set names under ``prefix`` that any run validated on, in first-seen order."""
    names: list[str] = []
    for run in runs:
        for row in run.rows:
            names += [key[len(prefix):] for key in row if key.startswith(prefix) and key[len(prefix):] not in names]
    return names


def markdown(runs: list[Run]) -> str:
    """Every validation row as a table: lineage step, run, its own step, gain per blur set, do-no-harm PSNR."""
    gains, noharms = set_names(runs, GAIN), set_names(runs, NOHARM)
    header = ["lineage step", "run", "step"] + [f"{name} gain" for name in gains] + \
             [f"{name} PSNR" for name in noharms]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        for row in run.rows:
            cells = [f"{run.start + row['step']:,}", run.label, f"{row['step']:,}"]
            cells += [f"{row[GAIN + n]:+.2f}" if GAIN + n in row else "" for n in gains]
            cells += [f"{row[NOHARM + n]:.1f}" if NOHARM + n in row else "" for n in noharms]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: list[Run], out: Path, title: str) -> None:
    """Gain per blur set and do-no-harm PSNR against the lineage step, run boundaries marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gains, noharms = set_names(runs, GAIN), set_names(runs, NOHARM)
    figure, axes = plt.subplots(1, 2 if noharms else 1, figsize=(13 if noharms else 7, 4.5), squeeze=False)
    panels = [(axes[0][0], GAIN, gains, "gain over the input (dB)", "blur-only sets")]
    if noharms:
        panels.append((axes[0][1], NOHARM, noharms, "PSNR vs the input (dB)", "do no harm (sharp input)"))
    for axis, prefix, names, ylabel, panel_title in panels:
        for name in names:
            points = [(run.start + row["step"], row[prefix + name]) for run in runs for row in run.rows
                      if prefix + name in row]
            axis.plot(*zip(*points, strict=True), marker="o", markersize=3, label=name)
        for run in runs:
            axis.axvline(run.start, color="0.7", linestyle="--", linewidth=0.8)
            axis.text(run.start, 1.0, f" {run.label}", transform=axis.get_xaxis_transform(), fontsize=7,
                      rotation=90, va="top", color="0.4")
        axis.set(xlabel="lineage step", ylabel=ylabel, title=panel_title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="best")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the picture to write (.png)")
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (run.out_dir), in the order they continue")
    parser.add_argument("--labels", default="", help="comma-separated names for the runs (default: folder names)")
    parser.add_argument("--md", type=Path, help="also write every validation row as a Markdown table here")
    parser.add_argument("--title", default="", help="the picture's title (default: the runs' labels)")
    args = parser.parse_args(argv)
    if args.out.suffix.lower() != ".png":
        print(f"lineage_curves: OUT must end in .png, received '{args.out}'", file=sys.stderr)
        return 2
    try:
        runs = read_lineage(args.runs, [label.strip() for label in args.labels.split(",")] if args.labels else [])
    except DeblurrtError as error:
        print(f"lineage_curves: {error}", file=sys.stderr)
        return 2
    plot(runs, args.out, args.title or " -> ".join(run.label for run in runs))
    if args.md:
        args.md.write_text(markdown(runs))
    total = runs[-1].start + runs[-1].length
    print(f"{len(runs)} run(s), {total:,} steps in all: {args.out}" + (f", {args.md}" if args.md else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
