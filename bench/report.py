"""Reports of a benchmark run: JSON (machine), Markdown (README-ready) and plots (PNG, matplotlib).

JSON keeps everything (environment, peak, every result with its samples, end-to-end rows, skipped cases).
The Markdown has one table of model-only results, one of end-to-end results, the skipped cases with their
reasons, and an environment footer. Plots: the latency distribution of every case at every size (box or
violin), and quality (PSNR from ``deblurrt eval --json`` files) against p50 latency.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deblurrt.errors import DeblurrtError
from deblurrt.outputs import atomic_path, write_json_atomic, write_text_atomic

SHORT_BACKEND = {"onnxruntime": "ort", "tensorrt": "trt", "torch": "torch"}


def _fmt(value: Any, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{suffix}"


def _backend_label(row: dict[str, Any]) -> str:
    label = SHORT_BACKEND.get(row["backend"], row["backend"])
    if row.get("cuda_graph"):
        label += " (graph)"
    elif row.get("cuda_graph") is False and row.get("cuda_graph_requested"):
        label += " (graph capture failed)"
    elif row.get("cuda_graph") is False:
        label += " (no graph)"
    return label


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    """Write the report as JSON (atomically: a reader never sees half a file)."""
    return write_json_atomic(path, report)


def markdown(report: dict[str, Any]) -> str:
    """The README-ready Markdown: model-only table, end-to-end table, skipped cases, environment."""
    from deblurrt.bench.environment import describe

    results = report.get("results", [])
    has_quality = any(r.get("quality") for r in results)
    has_phases = any(r.get("phases_ms") for r in results)
    header = ["model", "backend", "precision", "size", "p50 ms", "p90 ms", "p99 ms", "mean ms", "FPS",
              "vs first", "GMACs", "GMAC/s", "% of peak"]
    if has_phases:
        header += ["H2D ms", "compute ms", "D2H ms"]
    if has_quality:
        header += ["PSNR dB", "SSIM"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in results:
        latency = row["latency_ms"]
        cells = [row["model"], _backend_label(row), row["precision"], f"{row['width']}x{row['height']}",
                 _fmt(latency["p50"], 2), _fmt(latency["p90"], 2), _fmt(latency["p99"], 2),
                 _fmt(latency["mean"], 2), _fmt(row["fps"], 1), _fmt(row.get("relative_to_first"), 2, "x"),
                 _fmt(row.get("gmacs"), 2), _fmt(row.get("gmac_per_s"), 1),
                 _fmt(100 * row["peak_fraction"], 0, " %") if row.get("peak_fraction") is not None else "-"]
        if has_phases:
            phases = row.get("phases_ms") or {}
            cells += [_fmt((phases.get(k) or {}).get("p50"), 3) for k in ("h2d", "compute", "d2h")]
        if has_quality:
            quality = row.get("quality") or {}
            cells += [_fmt(quality.get("psnr"), 2), _fmt(quality.get("ssim"), 4)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    out = ["## Model-only latency", "", *lines, ""]
    e2e = report.get("e2e") or []
    if e2e:
        out += ["## End to end (the `deblurrt run` pipeline)", "",
                "| model | backend | precision | size | delivered FPS | model-only FPS | FPS ratio | "
                "e2e p50 ms | latency ratio | capture / pre / infer / post / write p50 ms | bottleneck | "
                "dropped |", "|" + "---|" * 12]
        for row in e2e:
            stages = row["stage_latency_ms"]
            stage_text = " / ".join(_fmt(stages[s]["p50"], 1) for s in ("capture", "pre", "infer", "post", "write"))
            out.append(f"| {row['model']} | {_backend_label(row)} | {row['precision']} | "
                       f"{row['width']}x{row['height']} | {_fmt(row['fps'], 1)} | {_fmt(row['model_only_fps'], 1)} | "
                       f"{_fmt(row['fps_ratio'], 2, 'x')} | {_fmt(stages['end_to_end']['p50'], 1)} | "
                       f"{_fmt(row['latency_ratio'], 2, 'x')} | {stage_text} | {row['bottleneck'] or '-'} | "
                       f"{row['dropped']} |")
        out += ["", "e2e = capture to written, every stage plus the wait in the queues. From a paced (live) source it "
                "is a camera's latency; from an unpaced one (a file, synthetic://?live=0, the default here) frames "
                "wait behind earlier ones, so it measures the backlog: compare delivered FPS there.", ""]
    skipped = report.get("skipped") or []
    if skipped:
        out += ["Skipped:", ""]
        for item in skipped:
            size = f" at {item['width']}x{item['height']}" if "width" in item else ""
            out.append(f"- {item['model']} {_backend_label(item)} "
                       f"{item['precision']}{size}: {item['reason']}")
        out.append("")
    environment = report.get("environment", {})
    settings = report.get("settings", {})
    budget = (f"{settings.get('iters')} iteration(s)" if settings.get("iters") else f"{settings.get('seconds')} s") \
        + f" per case in {settings.get('rounds')} interleaved rounds, {settings.get('warmup')} warm-up"
    peak = report.get("peak") or {}
    peak_text = ", ".join(f"{name} {value['gmac_per_s']} GMAC/s" for name, value in peak.items()
                          if isinstance(value, dict) and value.get("gmac_per_s"))
    end_load = environment.get("load_average_end")
    load_text = f" (load average {end_load[0]:g} at the end)" if end_load else ""
    out.append(f"Measured {describe(environment)}{load_text}; {budget}. 'vs first' is the latency relative to the first "
               "row of the same size (median of per-round ratios). FPS = 1000 / mean latency. "
               + (f"Peak of this machine: {peak_text}. " if peak_text else "")
               + " ".join(report.get("notes", [])))
    return "\n".join(out) + "\n"


def write_markdown(report: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`markdown` to ``path`` (atomically)."""
    return write_text_atomic(path, markdown(report))


# ---------------------------------------------------------------------------------------------- quality

def load_quality(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Read ``deblurrt eval --json`` files: each needs ``model`` and ``output: {psnr, ssim}``.

    Returns ``[{model, precision?, backend?, psnr, ssim, file}]``; a file that does not fit raises
    :class:`DeblurrtError` naming the missing key.
    """
    entries = []
    for path in map(Path, paths):
        try:
            document = json.loads(path.read_text())
        except OSError as error:
            raise DeblurrtError(f"cannot read quality file {path}: {error}") from error
        except json.JSONDecodeError as error:
            raise DeblurrtError(f"quality file {path} is not JSON ({error}). Fix: pass 'deblurrt eval --json' "
                                "output") from error
        items = document if isinstance(document, list) else [document]
        for item in items:
            output = item.get("output") if isinstance(item, dict) else None
            if not isinstance(item, dict) or "model" not in item or not isinstance(output, dict) \
                    or not isinstance(output.get("psnr"), int | float):
                raise DeblurrtError(f"quality file {path} lacks 'model' and 'output': {{'psnr', 'ssim'}} (the "
                                    "'deblurrt eval --json' format)")
            entries.append({"model": str(item["model"]), "precision": item.get("precision"),
                            "backend": item.get("backend"), "psnr": float(output["psnr"]),
                            "ssim": float(output["ssim"]) if isinstance(output.get("ssim"), int | float) else None,
                            "file": str(path)})
    return entries


def attach_quality(report: dict[str, Any], quality: Sequence[dict[str, Any]]) -> int:
    """Copy PSNR/SSIM onto the results of the same model (and precision/backend where the eval file says).

    Returns the number of rows that received a quality figure.
    """
    from deblurrt.runtime.backends import normalize_backend

    matched = 0
    for row in report.get("results", []):
        for entry in quality:
            names = {entry["model"], Path(entry["model"]).name, Path(entry["model"]).stem}
            if row["model"] not in names and Path(row["model"]).stem not in names:
                continue
            if entry.get("precision") and entry["precision"] != row["precision"]:
                continue
            if entry.get("backend"):
                try:
                    if normalize_backend(str(entry["backend"])) != row["backend"]:
                        continue
                except DeblurrtError:
                    continue
            row["quality"] = {"psnr": entry["psnr"], "ssim": entry["ssim"], "file": entry["file"]}
            matched += 1
            break
    return matched


# ------------------------------------------------------------------------------------------------ plots

def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        from deblurrt.errors import MissingDependencyError

        raise MissingDependencyError("matplotlib", "benchmark plots", "pip install 'deblurrt[bench]'") from error
    matplotlib.use("Agg")  # files only: no display needed (CI, SSH, Jetson without X)
    import matplotlib.pyplot as plt

    return plt


def _mpl_version() -> tuple[int, int]:
    import matplotlib

    major, minor = (int(part) for part in matplotlib.__version__.split(".")[:2])
    return major, minor


def plot_latency(report: dict[str, Any], path: str | Path, kind: str = "box") -> Path:
    """Latency distribution per case, one panel per frame size (box or violin); needs ``samples_ms``."""
    plt = _pyplot()
    rows = [r for r in report.get("results", []) if r.get("samples_ms")]
    if not rows:
        raise DeblurrtError("no latency samples to plot (every case was skipped?)")
    sizes = list(dict.fromkeys((r["height"], r["width"]) for r in rows))
    height = max(2.5, 0.45 * max(sum(1 for r in rows if (r["height"], r["width"]) == s) for s in sizes) + 1.4)
    figure, axes = plt.subplots(len(sizes), 1, figsize=(9, height * len(sizes)), squeeze=False)
    for axis, size in zip(axes[:, 0], sizes, strict=True):
        subset = [r for r in rows if (r["height"], r["width"]) == size][::-1]  # first row on top
        data = [r["samples_ms"] for r in subset]
        labels = [f"{r['model']} {_backend_label(r)} {r['precision']}" for r in subset]
        # matplotlib 3.10 replaced vert=False by orientation="horizontal" (vert warns from 3.11)
        horizontal = {"orientation": "horizontal"} if _mpl_version() >= (3, 10) else {"vert": False}
        if kind == "violin":
            axis.violinplot(data, showmedians=True, **horizontal)
        else:
            axis.boxplot(data, showfliers=True, whis=(1, 99), **horizontal)
        axis.set_yticks(range(1, len(labels) + 1), labels)
        axis.set_xlabel("latency per frame (ms)")
        axis.set_title(f"model-only latency at {size[1]}x{size[0]}")
        axis.grid(axis="x", alpha=0.3)
        spread = max(max(d) for d in data) / max(min(min(d) for d in data), 1e-6)
        if spread > 20:
            axis.set_xscale("log")  # tiny and base models side by side: a linear axis hides the small ones
    environment = report.get("environment", {})
    figure.suptitle(f"deblurrt bench, {environment.get('cpu') or ''} ({str(environment.get('date', ''))[:10]})",
                    fontsize=9)
    figure.tight_layout()
    return _save(figure, plt, path)


def plot_quality(report: dict[str, Any], path: str | Path) -> Path:
    """PSNR (from eval files) against p50 latency, one point per result row that has a quality figure."""
    plt = _pyplot()
    rows = [r for r in report.get("results", []) if r.get("quality")]
    if not rows:
        raise DeblurrtError("no result matches a --quality file by model name. Fix: benchmark the models the "
                            "eval files describe (their 'model' key)")
    figure, axis = plt.subplots(figsize=(7, 4.5))
    sizes = list(dict.fromkeys((r["height"], r["width"]) for r in rows))
    markers = "osD^v<>"
    for marker, size in zip(markers * 4, sizes, strict=False):
        subset = [r for r in rows if (r["height"], r["width"]) == size]
        axis.scatter([r["latency_ms"]["p50"] for r in subset], [r["quality"]["psnr"] for r in subset],
                     marker=marker, label=f"{size[1]}x{size[0]}")
        for r in subset:
            axis.annotate(f"{r['model']} {r['precision']}", (r["latency_ms"]["p50"], r["quality"]["psnr"]),
                          fontsize=7, xytext=(3, 3), textcoords="offset points")
    axis.set_xlabel("p50 latency per frame (ms), lower is better")
    axis.set_ylabel("PSNR (dB), higher is better")
    axis.set_title("quality vs latency")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, plt, path)


def _save(figure, plt, path: str | Path) -> Path:
    """Save ``figure`` atomically (its format from ``path``'s suffix, PNG when there is none) and close it."""
    path = Path(path)
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=120, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(figure)
    return path


def quality_plot_path(plot_path: str | Path) -> Path:
    """Where the quality chart goes next to ``--plot OUT.png``: ``OUT.quality.png``."""
    plot_path = Path(plot_path)
    return plot_path.with_name(f"{plot_path.stem}.quality{plot_path.suffix or '.png'}")
