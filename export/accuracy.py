"""Accuracy of exported models, measured in ONNX Runtime CPU: what each precision costs.

For every precision the report gives PSNR/SSIM against the sharp ground truth and the PSNR of the output
against the FP32 ONNX output (how far the conversion moved the result, independent of how good the model
is). All metrics come from :mod:`deblurrt.metrics`, the one implementation used for training validation
and evaluation too (8-bit RGB, BasicSR conventions), so numbers are comparable across the project.

:func:`int8_sensitivity` ranks quantized layers by how much accuracy they cost: it re-quantizes the model
with one group of layers left in float at a time, reusing one calibration, and measures the PSNR regained.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deblurrt.metrics import MetricAccumulator, psnr
from deblurrt.outputs import write_json_atomic

Pair = tuple[str, np.ndarray, np.ndarray]


def run_onnx(path_or_session, images: Sequence[np.ndarray], pad_multiple: int) -> list[np.ndarray]:
    """Run an ONNX model on HxWx3 images one at a time, padding each to ``pad_multiple`` (edge replicate,
    as the runtime does) and cropping the output back. Returns HxWx3 float32 outputs."""
    from deblurrt.export.onnx_export import input_dtype, ort_session

    session = ort_session(path_or_session) if isinstance(path_or_session, str | Path) else path_or_session
    name, dtype = session.get_inputs()[0].name, input_dtype(session)
    outputs = []
    for image in images:
        height, width = image.shape[:2]
        pad = ((0, -height % pad_multiple), (0, -width % pad_multiple), (0, 0))
        padded = np.pad(image, pad, mode="edge") if any(p[1] for p in pad) else image
        batch = np.ascontiguousarray(padded.transpose(2, 0, 1)[None]).astype(dtype)
        result = session.run(None, {name: batch})[0][0].transpose(1, 2, 0)[:height, :width]
        outputs.append(np.ascontiguousarray(result, dtype=np.float32))
    return outputs


def _finite(value: float) -> float | None:
    """JSON has no inf/NaN: identical images (inf dB) and undefined values are written as null."""
    return float(value) if math.isfinite(value) else None


def _mean_psnr(outputs: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> float:
    values = [psnr(o, r) for o, r in zip(outputs, references, strict=True)]
    return float(np.mean(values)) if values else float("nan")


@dataclass
class AccuracyReport:
    """Rows of (precision, metrics) for one model on one paired set, plus where the numbers came from."""

    model: str
    source: str
    count: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    sensitivity: list[dict[str, Any]] = field(default_factory=list)
    int8_budget: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (inf and NaN become null)."""
        return {
            "model": self.model,
            "eval": {"source": self.source, "count": self.count},
            "metrics": "deblurrt.metrics: 8-bit RGB PSNR (dB) and SSIM, BasicSR conventions; ONNX Runtime CPU",
            "columns": ["precision", "psnr", "ssim", "psnr_vs_fp32", "max_abs_vs_fp32", "path"],
            "rows": self.rows,
            "sensitivity": self.sensitivity,
            "int8_budget": self.int8_budget,
        }

    def write_json(self, path: str | Path) -> Path:
        """Save :meth:`as_dict` as indented JSON (strict: no NaN/Infinity tokens)."""
        return write_json_atomic(path, self.as_dict())

    def format(self) -> str:
        """A fixed-width table: one row per precision (and the blurry input as a baseline)."""
        def number(value, digits):
            return "-" if value is None else f"{value:.{digits}f}"

        lines = [f"accuracy on {self.count} pair(s) from {self.source} (ONNX Runtime CPU, deblurrt.metrics)",
                 f"  {'precision':<10} {'PSNR dB':>8} {'SSIM':>7} {'PSNR vs FP32':>13} {'max|d| vs FP32':>15}"]
        for row in self.rows:
            versus = "reference" if row["precision"] == "fp32" else number(row["psnr_vs_fp32"], 2)
            if row["precision"] != "fp32" and row["psnr_vs_fp32"] is None and row["max_abs_vs_fp32"] is not None:
                versus = "identical"
            lines.append(f"  {row['precision']:<10} {number(row['psnr'], 2):>8} {number(row['ssim'], 4):>7} "
                         f"{versus:>13} {number(row['max_abs_vs_fp32'], 4):>15}")
        if self.source == "synthetic pairs":
            # drawn shapes with sRGB blur and noise: fit to compare precisions, not to judge deblurring
            lines.append("  (synthetic shapes: the columns vs FP32 compare precisions; how well the model deblurs "
                         "is 'deblurrt validate MODEL')")
        return "\n".join(lines)


def accuracy_report(models: dict[str, str | Path], pairs: Sequence[Pair], pad_multiple: int,
                    model_name: str = "", source: str = "synthetic") -> AccuracyReport:
    """Evaluate each ONNX model of ``models`` (precision -> path; must include ``fp32``) on ``pairs``.

    The first row is the blurry input itself (``input``), the floor any deblurring should beat.
    """
    if "fp32" not in models:
        raise ValueError("accuracy_report needs the fp32 model as the reference")
    blurry = [b for _, b, _ in pairs]
    sharp = [s for _, _, s in pairs]
    names = [n for n, _, _ in pairs]
    report = AccuracyReport(model_name, source, len(pairs))
    baseline = MetricAccumulator()
    for name, b, s in pairs:
        baseline.update(b, s, name)
    report.rows.append({"precision": "input", "psnr": _finite(baseline.mean_psnr),
                        "ssim": _finite(baseline.mean_ssim), "psnr_vs_fp32": None, "max_abs_vs_fp32": None,
                        "path": None})
    reference = run_onnx(models["fp32"], blurry, pad_multiple)
    for precision, path in models.items():
        outputs = reference if precision == "fp32" else run_onnx(path, blurry, pad_multiple)
        if not all(np.isfinite(o).all() for o in outputs):
            report.rows.append({"precision": precision, "psnr": None, "ssim": None, "psnr_vs_fp32": None,
                                "max_abs_vs_fp32": None, "path": str(path), "error": "NaN/Inf in the output"})
            continue
        metrics = MetricAccumulator()
        for output, target, name in zip(outputs, sharp, names, strict=True):
            metrics.update(output, target, name)
        max_abs = max(float(np.abs(o - r).max()) for o, r in zip(outputs, reference, strict=True))
        report.rows.append({
            "precision": precision,
            "psnr": _finite(metrics.mean_psnr),
            "ssim": _finite(metrics.mean_ssim),
            "psnr_vs_fp32": None if precision == "fp32" else _finite(_mean_psnr(outputs, reference)),
            "max_abs_vs_fp32": max_abs,
            "path": str(path),
        })
    return report


def group_of(node_name: str, depth: int | None) -> str:
    """The sensitivity group of a node: its first ``depth`` name-scope segments (None: the node itself).

    ``/encoders.0/encoders.0.0/expand/Conv`` at depth 1 is ``/encoders.0``, at depth 2
    ``/encoders.0/encoders.0.0``.
    """
    if depth is None:
        return node_name
    parts = [p for p in node_name.split("/") if p]
    scope = parts[:-1] if len(parts) > 1 else parts
    return "/" + "/".join(scope[:depth])


def calibration_reuse(fp32_path: str | Path, folder: str | Path) -> tuple[Path, Path]:
    """(the preprocessed model, the calibration cache path) kept in ``folder``, for :func:`quantize_int8`.

    Every quantization of one export shares them: the first one calibrates and writes the cache, later ones
    (sensitivity trials, budget trials, the final INT8 graph) only read the ranges.
    """
    from deblurrt.export.int8 import preprocess

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pre = folder / "pre.onnx"
    if not pre.is_file():
        preprocess(fp32_path, pre)
    return pre, folder / "calibration.json"


def int8_sensitivity(fp32_path: str | Path, frames: Sequence[np.ndarray], options, pairs: Sequence[Pair],
                     pad_multiple: int, group_depth: int | None = None,
                     workdir: str | Path | None = None, reuse: str | Path | None = None) -> list[dict[str, Any]]:
    """Rank the quantized layers of an INT8 export by the PSNR (vs FP32) regained when left in float.

    The model is quantized once as ``options`` asks (the baseline), then once per group with that group
    added to the excluded nodes; calibration runs once and its ranges are reused through ONNX Runtime's
    calibration cache (kept in ``reuse`` when given, see :func:`calibration_reuse`). Returns rows
    ``{group, nodes, psnr_vs_fp32, gain_db}``, highest gain first, where ``gain_db`` is the improvement over
    the baseline.
    """
    from dataclasses import replace

    from deblurrt.export.int8 import quantize_int8

    blurry = [b for _, b, _ in pairs]
    reference = run_onnx(fp32_path, blurry, pad_multiple)
    with tempfile.TemporaryDirectory(prefix="deblurrt-sens-", dir=workdir) as tmp:
        tmp = Path(tmp)
        pre, cache = calibration_reuse(fp32_path, reuse or tmp)
        base = quantize_int8(fp32_path, tmp / "base.onnx", frames, options, cache, pre)
        base_psnr = _mean_psnr(run_onnx(base.path, blurry, pad_multiple), reference)
        groups: dict[str, list[str]] = {}
        for node in base.quantized_nodes:
            groups.setdefault(group_of(node, group_depth), []).append(node)
        rows = []
        for group, nodes in groups.items():
            trial = replace(options, exclude_nodes=tuple(options.exclude_nodes) + tuple(nodes))
            result = quantize_int8(fp32_path, tmp / "trial.onnx", frames, trial, cache, pre)
            value = _mean_psnr(run_onnx(result.path, blurry, pad_multiple), reference)
            rows.append({"group": group, "nodes": nodes, "psnr_vs_fp32": _finite(value),
                         "gain_db": _finite(value - base_psnr)})
    rows.sort(key=lambda row: -(row["gain_db"] if row["gain_db"] is not None else math.inf))
    return [{"baseline_psnr_vs_fp32": _finite(base_psnr)} | row for row in rows]


def format_sensitivity(rows: Sequence[dict[str, Any]], top: int = 10) -> str:
    """The ``top`` most sensitive groups as a short table."""
    if not rows:
        return "INT8 sensitivity: no quantized layers"
    lines = [f"INT8 sensitivity (PSNR vs FP32 regained when a group stays in float; baseline "
             f"{rows[0]['baseline_psnr_vs_fp32']:.2f} dB):"]
    for row in rows[:top]:
        gain = "-" if row["gain_db"] is None else f"{row['gain_db']:+.2f} dB"
        lines.append(f"  {gain:>10}  {row['group']}  ({len(row['nodes'])} node(s))")
    return "\n".join(lines)


def _mean_psnr_vs_sharp(outputs: Sequence[np.ndarray], pairs: Sequence[Pair]) -> float:
    metrics = MetricAccumulator()
    for output, (name, _, sharp) in zip(outputs, pairs, strict=True):
        metrics.update(output, sharp, name)
    return float(metrics.mean_psnr)


def fit_int8_budget(fp32_path: str | Path, frames: Sequence[np.ndarray], options, pairs: Sequence[Pair],
                    pad_multiple: int, ranked: Sequence[dict[str, Any]], budget_db: float, max_groups: int,
                    workdir: str | Path | None = None,
                    reuse: str | Path | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """Keep the most sensitive groups in float, in ``ranked`` order, until INT8 is within ``budget_db``.

    The cost is measured against the ground truth, as a user sees it: FP32 PSNR minus INT8 PSNR vs the
    sharp images of ``pairs``. Groups whose sensitivity gain was not positive are never added (they buy
    nothing), and at most ``max_groups`` are. Returns (the options to quantize with, one step per trial:
    ``{kept, psnr, fp32_psnr, cost_db, chosen}``). The chosen step is the first within the budget; when
    none is, the cheapest one tried (the ranking is by PSNR vs FP32, the cost is vs the sharp images, so
    keeping one more group in float is not guaranteed to lower the cost). ``reuse``: as in
    :func:`int8_sensitivity`.
    """
    from dataclasses import replace

    from deblurrt.export.int8 import quantize_int8

    blurry = [b for _, b, _ in pairs]
    fp32_psnr = _mean_psnr_vs_sharp(run_onnx(fp32_path, blurry, pad_multiple), pairs)
    candidates = [row for row in ranked if (row.get("gain_db") or 0) > 0][:max(max_groups, 0)]
    steps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="deblurrt-budget-", dir=workdir) as tmp:
        tmp = Path(tmp)
        pre, cache = calibration_reuse(fp32_path, reuse or tmp)
        trials = []
        for count in range(len(candidates) + 1):
            kept = candidates[:count]
            trial = replace(options, exclude_nodes=tuple(options.exclude_nodes)
                            + tuple(node for row in kept for node in row["nodes"]))
            result = quantize_int8(fp32_path, tmp / "trial.onnx", frames, trial, cache, pre)
            value = _mean_psnr_vs_sharp(run_onnx(result.path, blurry, pad_multiple), pairs)
            cost = fp32_psnr - value
            trials.append((trial, cost))
            steps.append({"kept": [row["group"] for row in kept], "psnr": _finite(value),
                          "fp32_psnr": _finite(fp32_psnr), "cost_db": _finite(cost), "chosen": False})
            if cost <= budget_db:
                break
    costs = [cost if math.isfinite(cost) else math.inf for _, cost in trials]
    best = len(trials) - 1 if costs[-1] <= budget_db else int(np.argmin(costs))
    steps[best]["chosen"] = True
    return trials[best][0], steps


def format_budget(steps: Sequence[dict[str, Any]], budget_db: float) -> str:
    """One line per trial of :func:`fit_int8_budget` and the verdict."""
    def number(value, spec):
        return "-" if value is None else format(value, spec)

    lines = [f"INT8 budget {budget_db:.2f} dB (FP32 {number(steps[0]['fp32_psnr'], '.2f')} dB vs sharp):"]
    for step in steps:
        kept = ", ".join(step["kept"]) or "(default float groups only)"
        lines.append(f"  cost {number(step['cost_db'], '+.3f')} dB  INT8 {number(step['psnr'], '.2f')} dB  "
                     f"kept in float: {kept}")
    chosen = next(step for step in steps if step["chosen"])
    within = chosen["cost_db"] is not None and chosen["cost_db"] <= budget_db
    verdict = f"within budget keeping {len(chosen['kept'])} group(s) in float" if within else (
        f"NOT within budget: the cheapest trial costs {number(chosen['cost_db'], '.3f')} dB (kept: "
        f"{len(chosen['kept'])} group(s)); raise --keep-top, use --sensitivity-depth for coarser groups, or try "
        "--calib-method percentile")
    lines.append(f"  -> {verdict}")
    return "\n".join(lines)
