"""What INT8 costs each trained model, and which layers must stay in float to keep the cost under a budget.

For every checkpoint: `deblurrt export --precision int8 --compare-all` with the default float groups (first
and last convolution, output residual, normalisation) on the evaluation set; where INT8 costs more than
the budget there, a second export with `--int8-budget` ranks the layers (per-layer sensitivity measured on
a separate paired set, so the evaluation set stays unseen) and keeps the worst ones in float until the cost
fits. Writes one JSON with everything and a Markdown table.

usage: python scripts/int8_report.py CKPT [CKPT ...] --eval VAL_PAIRS --calib CALIB_PAIRS --out DIR
       [--budget 0.3] [--max-groups 8] [--eval-count 36]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


class ExportFailed(RuntimeError):
    """One export exited non-zero; carries its exit code and output."""

    def __init__(self, command: list[str], result: subprocess.CompletedProcess):
        super().__init__(f"{' '.join(command)} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
        self.returncode = result.returncode


def export(checkpoint: Path, out: Path, *extra: str) -> dict:
    """Run one INT8 export and return its accuracy JSON; raise :class:`ExportFailed` with its output."""
    command = [sys.executable, "-m", "deblurrt", "export", str(checkpoint), "--precision", "int8",
               "--out", str(out), *extra]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ExportFailed(command, result)
    return json.loads(out.with_name(out.name + ".accuracy.json").read_text())


def rows_by_precision(report: dict) -> dict:
    """The accuracy rows of an export report, keyed by precision (input, fp32, fp16, int8)."""
    return {row["precision"]: row for row in report["rows"]}


def measure(checkpoint: Path, args: argparse.Namespace) -> dict:
    """Default INT8 and, if over budget, the budget-fitted INT8 of one checkpoint."""
    # runs/<run>/last.safetensors is named by its run (best.safetensors gets a suffix), weights/<m>.safetensors
    # by its file
    name = {"last": checkpoint.parent.name, "best": f"{checkpoint.parent.name}_best"}.get(checkpoint.stem,
                                                                                           checkpoint.stem)
    common = ["--eval", str(args.eval), "--eval-count", str(args.eval_count), "--calib", str(args.calib / "blur"),
              "--calib-count", str(args.calib_count), "--calib-method", args.calib_method]
    report = export(checkpoint, args.out / f"{name}.int8.onnx", "--compare-all", *common)
    rows = rows_by_precision(report)
    entry = {"run": name, "checkpoint": str(checkpoint), "model": report["model"], "eval": report["eval"],
             "input_psnr": rows["input"]["psnr"], "fp32_psnr": rows["fp32"]["psnr"],
             "fp16_psnr": rows["fp16"]["psnr"], "int8_psnr": rows["int8"]["psnr"],
             "int8_vs_fp32_psnr": rows["int8"]["psnr_vs_fp32"],
             "int8_cost_db": rows["fp32"]["psnr"] - rows["int8"]["psnr"],
             "fp16_cost_db": rows["fp32"]["psnr"] - rows["fp16"]["psnr"]}
    if entry["int8_cost_db"] > args.budget:
        fitted = export(checkpoint, args.out / f"{name}.int8_budget.onnx", *common, "--int8-budget",
                        str(args.fit_budget if args.fit_budget is not None else args.budget), "--keep-top", str(args.max_groups), "--sensitivity-eval", str(args.calib))
        fitted_rows = rows_by_precision(fitted)
        budget = fitted["int8_budget"]
        chosen = next(step for step in budget["steps"] if step["chosen"])
        entry["fitted"] = {"int8_psnr": fitted_rows["int8"]["psnr"],
                           "int8_cost_db": fitted_rows["fp32"]["psnr"] - fitted_rows["int8"]["psnr"],
                           "within_on_sensitivity_set": budget["within"],
                           "kept_in_float": chosen["kept"],
                           "trials": budget["steps"],
                           "top_sensitivity": [{k: row[k] for k in ("group", "gain_db")}
                                               for row in fitted["sensitivity"][:5]]}
    return entry


def markdown(entries: list[dict], args: argparse.Namespace) -> str:
    """The report as a Markdown table: PSNR (dB) and cost vs FP32 per precision, layers kept in float."""
    lines = [f"INT8 cost per model on {args.eval} ({args.eval_count} pairs, ONNX Runtime CPU); budget "
             f"{args.budget} dB, fitted to {args.fit_budget if args.fit_budget is not None else args.budget} dB on {args.calib} (calibration and sensitivity), reported on the eval set.", "",
             "| model | input | FP32 | FP16 (cost) | INT8 default (cost) | INT8 budget-fitted (cost) | kept in float |",
             "|---|---|---|---|---|---|---|"]
    for e in entries:
        fitted = e.get("fitted")
        fit = "-" if not fitted else f"{fitted['int8_psnr']:.2f} ({fitted['int8_cost_db']:+.2f})"
        kept = "-" if not fitted else (", ".join(f"`{g}`" for g in fitted["kept_in_float"]) or "none")
        lines.append(f"| {e['run']} | {e['input_psnr']:.2f} | {e['fp32_psnr']:.2f} | {e['fp16_psnr']:.2f} "
                     f"({e['fp16_cost_db']:+.2f}) | {e['int8_psnr']:.2f} ({e['int8_cost_db']:+.2f}) | {fit} | {kept} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Measure every checkpoint; the JSON and Markdown are rewritten after each, so a failure loses nothing."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--eval", type=Path, required=True, help="paired set (blur/, sharp/) to report on")
    parser.add_argument("--calib", type=Path, required=True,
                        help="paired set for calibration (its blur/) and the sensitivity analysis")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=0.3, help="allowed INT8 cost in dB (default 0.3)")
    parser.add_argument("--fit-budget", type=float, default=None,
                        help="budget the fit aims for on the calibration set (default: --budget); lower it for a "
                        "margin when the evaluation set is harder than the calibration set")
    parser.add_argument("--max-groups", type=int, default=8, help="layers kept in float at most (default 8)")
    parser.add_argument("--eval-count", type=int, default=36)
    parser.add_argument("--calib-count", type=int, default=32)
    parser.add_argument("--calib-method", default="minmax", choices=("minmax", "percentile", "entropy"))
    args = parser.parse_args()
    if args.max_groups < 1:
        parser.error(f"--max-groups must be >= 1, received {args.max_groups}")
    for folder in (args.eval, args.calib):
        if not (folder / "blur").is_dir() or not (folder / "sharp").is_dir():
            parser.error(f"{folder} is not a paired set: it needs blur/ and sharp/ (make one with deblurrt data synth)")
    args.out.mkdir(parents=True, exist_ok=True)
    entries = []
    for checkpoint in args.checkpoints:
        try:
            entry = measure(checkpoint, args)
        except ExportFailed as error:
            print(error, file=sys.stderr)
            return error.returncode
        entries.append(entry)
        (args.out / "int8_report.json").write_text(json.dumps({"budget_db": args.budget, "models": entries},
                                                              indent=2))
        (args.out / "int8_report.md").write_text(markdown(entries, args))
        fitted = entry.get("fitted")
        print(f"{entry['run']}: FP32 {entry['fp32_psnr']:.2f} dB, INT8 cost {entry['int8_cost_db']:+.3f} dB"
              + (f" -> {fitted['int8_cost_db']:+.3f} dB keeping {len(fitted['kept_in_float'])} layer(s) in float"
                 if fitted else ""), flush=True)
    print(markdown(entries, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
