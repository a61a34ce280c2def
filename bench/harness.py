"""The benchmark harness: load every case, then time them round-robin so they share the machine's drift.

A *case* is one (model, backend, precision[, CUDA graph]) loaded once; it is measured at each frame size.
Speed drifts 5-15 % over minutes on a shared machine, so cases are never timed one after another: at each
size every case is warmed up, then the timing is split into rounds, and in each round every case runs its
share (a fixed number of iterations with ``iters``, a time slice with ``seconds``), in alternating order
(A B C, C B A, ...) so no case always runs right after the same neighbour. Each case's latency relative to
the first case is the median over rounds of the per-round p50 ratio, which cancels drift slower than a round.

Model-only numbers come from :mod:`deblurrt.bench.runners`; end-to-end numbers from the real ``run``
pipeline (:func:`run_e2e`), reported next to the model-only ones as ratios.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deblurrt.bench.models import ModelRef, artefact_for
from deblurrt.bench.stats import fps_from_ms, latency_summary, median
from deblurrt.errors import DeblurrtError

RANDOM_WEIGHTS = "random (registered model exported on the fly; latency does not depend on weight values)"
SCHEMA = "deblurrt-bench/1"


def stderr_log(message: str) -> None:
    """The default progress log: one line to stderr."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class Settings:
    """How to measure (see ``deblurrt bench --help``). Sizes are (H, W)."""

    sizes: list[tuple[int, int]] = field(default_factory=lambda: [(360, 640)])
    warmup: int = 10
    iters: int | None = None
    seconds: float | None = 3.0
    rounds: int = 5
    threads: int | None = None
    providers: str | None = None
    cache_dir: Path | None = None
    peak_seconds: float | None = 1.0
    e2e: str | None = None
    e2e_frames: int = 100
    keep_samples: bool = True
    log: Callable[[str], None] = stderr_log

    def validate(self) -> None:
        """Reject impossible settings with the fix."""
        if not self.sizes:
            raise DeblurrtError("no frame size. Fix: --size 640x360")
        if self.iters is not None and self.iters < 1:
            raise DeblurrtError(f"--iters must be >= 1, received {self.iters}")
        if self.seconds is not None and self.seconds <= 0:
            raise DeblurrtError(f"--seconds must be > 0, received {self.seconds}")
        if self.iters is None and self.seconds is None:
            raise DeblurrtError("give --iters N or --seconds S")
        if self.warmup < 0 or self.rounds < 1 or self.e2e_frames < 1:
            raise DeblurrtError("--warmup must be >= 0, --rounds and --e2e-frames >= 1")


@dataclass
class Case:
    """One loaded (model, backend, precision, CUDA graph) combination."""

    ref: ModelRef
    backend: str
    precision: str
    cuda_graph: bool | None = None
    path: Path | None = None
    runner: Any = None
    #: whether a CUDA graph really ran at the current size (None until set up): a failed capture leaves the
    #: backend running without one, and rows and labels say what ran, not what was asked
    graph_ran: bool | None = None
    graph_error: str | None = None

    @property
    def graph(self) -> bool | None:
        """What ran (once known), else what was requested."""
        return self.graph_ran if self.graph_ran is not None else self.cuda_graph

    @property
    def label(self) -> str:
        """``unet_nano ort fp32`` (``+graph`` for CUDA graphs): the name in tables and plots."""
        short = {"onnxruntime": "ort", "tensorrt": "trt", "torch": "torch"}[self.backend]
        graph = "+graph" if self.graph else ""
        failed = " (graph capture failed)" if self.cuda_graph and self.graph_ran is False else ""
        return f"{self.ref.label} {short}{graph} {self.precision}{failed}"

    def identity(self) -> dict[str, Any]:
        """The keys that identify a result row (``cuda_graph``: what ran; ``cuda_graph_requested``: asked)."""
        row = {"model": self.ref.label, "backend": self.backend, "precision": self.precision,
               "cuda_graph": self.graph, "cuda_graph_requested": self.cuda_graph,
               "weights": RANDOM_WEIGHTS if self.ref.registered else "from the file",
               "path": str(self.path) if self.path else None}
        if self.graph_error:
            row["cuda_graph_error"] = self.graph_error
        return row

    def note_graph(self) -> None:
        """Read from the runner whether a CUDA graph runs at the size just set up (TensorRT only)."""
        ran = getattr(self.runner, "cuda_graph_used", None)
        if self.cuda_graph is not None and ran is not None:
            self.graph_ran = bool(ran)
            self.graph_error = getattr(self.runner, "graph_error", None)


def plan_cases(refs: Sequence[ModelRef], backends: Sequence[str] | None, precisions: Sequence[str]) -> list[Case]:
    """Every (model, backend, precision[, graph]) to try, in the order given (the first is the reference).

    ``backends`` None: ONNX Runtime for registered names, the file's own backend for files. Files run at
    their own precision (``--precision`` applies to registered names). TensorRT runs with and without CUDA
    graphs.
    """
    from deblurrt.runtime.backends import backend_for_path

    cases: list[Case] = []
    for ref in refs:
        chosen = list(backends) if backends else (["onnxruntime"] if ref.registered
                                                   else [backend_for_path(ref.path)])
        for backend in chosen:
            for precision in (precisions if ref.registered else ["file"]):
                for graph in ((False, True) if backend == "tensorrt" else (None,)):
                    cases.append(Case(ref, backend, precision, graph))
    return cases


def load_case(case: Case, settings: Settings) -> None:
    """Export/find the artefact and open its runner. Raises :class:`DeblurrtError` (incl. SkipCase)."""
    from deblurrt.bench.runners import open_runner

    case.path = artefact_for(case.ref, case.backend, case.precision, settings.sizes, settings.cache_dir,
                             log=settings.log)
    case.runner = open_runner(case.path, case.backend, threads=settings.threads, providers=settings.providers,
                              cuda_graph=bool(case.cuda_graph))
    if case.precision in ("file", "int8"):
        # what the artefact is: an INT8 engine with FP16 float layers is labelled int8+fp16
        case.precision = case.runner.backend.info.precision_label


class _Costs:
    """GMACs per frame, cached per (model, H, W); None where torch is missing or the model is unknown."""

    def __init__(self):
        self._cache: dict[tuple[str, int, int], float | None] = {}

    def gmacs(self, case: Case, height: int, width: int) -> float | None:
        source: str | dict | None = case.ref.name
        if source is None:
            config = dict(case.runner.backend.info.config or {})
            source = config if config.get("backbone") else None
        if source is None:
            return None
        key = (str(source), height, width)
        if key not in self._cache:
            try:
                from deblurrt.train.complexity import measure_cost

                self._cache[key] = round(measure_cost(source, height, width).gmacs, 4)
            except ImportError:  # torch is not installed: GMACs are unknown, the timing still stands
                self._cache[key] = None
            except (KeyError, ValueError, TypeError):  # a config this version cannot rebuild
                self._cache[key] = None
        return self._cache[key]


def round_plan(settings: Settings) -> tuple[int, int | None, float | None]:
    """``(rounds, iterations per round, seconds per round)``: at least ``iters`` or ``seconds`` per case."""
    if settings.iters is not None:
        rounds = max(1, min(settings.rounds, settings.iters))
        return rounds, math.ceil(settings.iters / rounds), None
    return settings.rounds, None, float(settings.seconds) / settings.rounds


def time_cases(cases: Sequence[Case], settings: Settings) -> dict[int, dict[str, Any]]:
    """Round-robin timing of ``cases`` (already set up at one size): ``{index: {samples, rounds, phases}}``."""
    rounds, per_round, slice_s = round_plan(settings)
    out = {i: {"samples": [], "rounds": []} for i in range(len(cases))}
    order = list(range(len(cases)))
    for number in range(rounds):
        for index in (order if number % 2 == 0 else order[::-1]):
            runner = cases[index].runner
            chunk: list[float] = []
            deadline = time.perf_counter() + (slice_s or 0.0)
            while (len(chunk) < per_round) if per_round is not None else (not chunk or time.perf_counter() < deadline):
                chunk.append(runner.step())
            out[index]["samples"].extend(chunk)
            out[index]["rounds"].append(median(chunk))
    for index, case in enumerate(cases):
        out[index]["phases"] = case.runner.phases()
    return out


def _result_row(case: Case, height: int, width: int, padded: tuple[int, int], timing: dict[str, Any],
                reference: dict[str, Any] | None, costs: _Costs, peak: dict[str, Any] | None,
                keep_samples: bool) -> dict[str, Any]:
    from deblurrt.bench.peak import reference_peak

    samples = timing["samples"]
    latency = latency_summary(samples)
    fps = fps_from_ms(latency["mean"])
    gmacs = costs.gmacs(case, height, width)
    achieved = gmacs * fps if gmacs is not None and fps else None
    peak_value = reference_peak(peak, case.backend)
    row = {
        **case.identity(), "height": height, "width": width, "padded": list(padded),
        "iterations": len(samples), "rounds": len(timing["rounds"]), "latency_ms": latency,
        "fps": round(fps, 2) if fps else None, "gmacs": gmacs,
        "gmac_per_s": round(achieved, 2) if achieved is not None else None,
        "peak_gmac_per_s": peak_value,
        "peak_fraction": round(achieved / peak_value, 4) if achieved is not None and peak_value else None,
        "relative_to_first": None,
        "round_p50_ms": [round(v, 4) for v in timing["rounds"]],
    }
    if reference is not None:
        ratios = [mine / ref for mine, ref in zip(timing["rounds"], reference["rounds"], strict=False) if ref > 0]
        row["relative_to_first"] = round(median(ratios), 4) if ratios else None
    if timing.get("phases"):
        phases = {name: latency_summary(values) for name, values in timing["phases"].items()}
        row["phases_ms"] = phases
        row["with_copies_p50_ms"] = round(sum(p["p50"] for p in phases.values()), 4)
    if keep_samples:
        row["samples_ms"] = [round(v, 4) for v in samples]
    return row


# ------------------------------------------------------------------------------------------------- e2e

def e2e_targets(uri: str, sizes: Sequence[tuple[int, int]]) -> list[tuple[str, tuple[int, int]]]:
    """``(source URI, frame (H, W))`` pairs for an end-to-end run.

    ``synthetic://`` without ``size=`` runs once per benchmarked size (the size is added to the URI); any
    other source runs once at its own frame size, read from its first frame. ``synthetic://`` without
    ``live=`` gets ``live=0``: unpaced, every frame, so the pipeline's throughput is what is measured (a
    paced camera would cap it at its fps).
    """
    if uri.startswith("synthetic://"):
        from deblurrt.runtime.synthetic import parse_synthetic_uri

        query = uri.partition("?")[2]
        if not any(part.startswith("live=") for part in query.split("&")):
            uri = f"{uri}{'&' if '?' in uri else '?'}live=0"
            query = uri.partition("?")[2]
        if not any(part.startswith("size=") for part in query.split("&")):
            sep = "&" if "?" in uri else "?"
            return [(f"{uri}{sep}size={w}x{h}", (h, w)) for h, w in sizes]
        width, height = parse_synthetic_uri(uri).size
        return [(uri, (height, width))]
    from deblurrt.runtime.sources import open_source

    source = open_source(uri)
    try:
        frame = source.read(timeout=10.0)
    finally:
        source.close()
    if frame is None:
        raise DeblurrtError(f"the --e2e source {uri!r} delivered no frame. Fix: check it with 'deblurrt run'")
    height, width = frame.image.shape[:2]
    return [(uri, (int(height), int(width)))]


def run_e2e(case: Case, uri: str, frames: int) -> dict[str, Any]:
    """Run the real ``deblurrt run`` pipeline (source -> pre -> infer -> post -> null sink) with the case's
    already warm backend; return the pipeline's statistics."""
    from deblurrt.runtime.pipeline import Pipeline, PipelineOptions
    from deblurrt.runtime.sinks import open_sink
    from deblurrt.runtime.sources import open_source

    source = open_source(uri)
    try:
        sink = open_sink("none", fps=source.fps, headless=True)
        pipeline = Pipeline(source, case.runner.backend, sink,
                            PipelineOptions(max_frames=frames, status=None, handle_signals=False))
        return pipeline.run()
    finally:
        source.close()


def _e2e_row(case: Case, uri: str, size: tuple[int, int], stats: dict[str, Any],
             model_only: dict[str, Any] | None) -> dict[str, Any]:
    latency = stats["latency_ms"]
    e2e_p50 = latency["end_to_end"]["p50"]
    infer_p50 = latency["infer"]["p50"]
    row = {
        **case.identity(), "source": uri, "height": size[0], "width": size[1],
        "frames": stats["frames_out"], "dropped": stats["dropped"], "fps": stats["fps"],
        "stage_latency_ms": {name: latency[name] for name in ("capture", "pre", "infer", "post", "write",
                                                               "end_to_end")},
        "model_only_fps": None, "model_only_p50_ms": None, "fps_ratio": None, "latency_ratio": None,
        "infer_ratio": None, "bottleneck": None,
    }
    stages = {name: latency[name]["p50"] for name in ("capture", "pre", "infer", "post", "write")
              if latency[name]["p50"] is not None}
    if stages:
        row["bottleneck"] = max(stages, key=stages.get)
    if model_only is not None:
        p50 = model_only["latency_ms"]["p50"]
        row["model_only_fps"] = model_only["fps"]
        row["model_only_p50_ms"] = p50
        if model_only["fps"] and stats["fps"]:
            row["fps_ratio"] = round(stats["fps"] / model_only["fps"], 4)
        if e2e_p50 is not None and p50:
            row["latency_ratio"] = round(e2e_p50 / p50, 4)
        if infer_p50 is not None and p50:
            row["infer_ratio"] = round(infer_p50 / p50, 4)
    return row


# ------------------------------------------------------------------------------------------------- run

def run_benchmark(refs: Sequence[ModelRef], backends: Sequence[str] | None, precisions: Sequence[str],
                  settings: Settings) -> dict[str, Any]:
    """Benchmark every case at every size; return the report (``environment``, ``results``, ...)."""
    from deblurrt.bench.environment import collect_environment
    from deblurrt.bench.peak import measure_peak

    settings.validate()
    log = settings.log
    report: dict[str, Any] = {"schema": SCHEMA, "environment": collect_environment(settings.threads),
                              "settings": _settings_json(settings, refs, backends, precisions),
                              "peak": None, "results": [], "e2e": [], "skipped": [], "notes": []}
    sizes = list(dict.fromkeys(settings.sizes))
    targets: list[tuple[str, tuple[int, int]]] = []
    if settings.e2e:
        targets = e2e_targets(settings.e2e, sizes)
        sizes.extend(size for _, size in targets if size not in sizes)
        settings.sizes = sizes

    cases: list[Case] = []
    for case in plan_cases(refs, backends, precisions):
        try:
            log(f"deblurrt bench: loading {case.label}")
            load_case(case, settings)
            cases.append(case)
        except DeblurrtError as error:
            report["skipped"].append({**case.identity(), "reason": str(error)})
            log(f"deblurrt bench: skipping {case.label}: {error}")
    if any(case.ref.registered for case in cases):
        report["notes"].append("Registered model names are exported with random weights (seed 0): the "
                               "latency is real, the output is not a deblurred image.")
    try:
        if settings.peak_seconds:
            log(f"deblurrt bench: measuring this machine's peak ({settings.peak_seconds:g} s per micro-benchmark)")
            report["peak"] = measure_peak(settings.peak_seconds, settings.threads)
        costs = _Costs()
        by_key: dict[tuple[int, int, int], dict[str, Any]] = {}
        for height, width in sizes:
            active, padded = [], {}
            for case in cases:
                try:
                    padded[id(case)] = case.runner.setup(height, width)
                    case.note_graph()
                    if case.cuda_graph and case.graph_ran is False:
                        log(f"deblurrt bench: {case.label} at {width}x{height}: {case.graph_error}")
                    for _ in range(settings.warmup):
                        case.runner.step()
                    active.append(case)
                except DeblurrtError as error:
                    report["skipped"].append({**case.identity(), "height": height, "width": width,
                                              "reason": str(error)})
                    log(f"deblurrt bench: skipping {case.label} at {width}x{height}: {error}")
            if not active:
                continue
            log(f"deblurrt bench: timing {len(active)} case(s) at {width}x{height}, round-robin")
            timings = time_cases(active, settings)
            for index, case in enumerate(active):
                row = _result_row(case, height, width, padded[id(case)], timings[index],
                                  timings[0] if index else None, costs, report["peak"], settings.keep_samples)
                if index == 0:
                    row["relative_to_first"] = 1.0
                report["results"].append(row)
                by_key[(id(case), height, width)] = row
                log(f"deblurrt bench:   {case.label:<40} p50 {row['latency_ms']['p50']:8.2f} ms  "
                    f"{row['fps'] or 0:7.1f} fps")
        for uri, (height, width) in targets:
            for case in cases:
                model_only = by_key.get((id(case), height, width))
                if model_only is None:
                    continue
                log(f"deblurrt bench: end to end {case.label} on {uri} ({settings.e2e_frames} frames)")
                stats = run_e2e(case, uri, settings.e2e_frames)
                report["e2e"].append(_e2e_row(case, uri, (height, width), stats, model_only))
    finally:
        for case in cases:
            case.runner.close()
    try:
        # a load that changed during the run (a background job starting) explains outliers
        report["environment"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        report["environment"]["load_average_end"] = None
    return report


def _settings_json(settings: Settings, refs, backends, precisions) -> dict[str, Any]:
    return {"models": [r.text for r in refs], "backends": list(backends) if backends else None,
            "precisions": list(precisions), "sizes": [f"{w}x{h}" for h, w in settings.sizes],
            "warmup": settings.warmup, "iters": settings.iters, "seconds": settings.seconds,
            "rounds": settings.rounds, "threads": settings.threads, "providers": settings.providers,
            "e2e": settings.e2e, "e2e_frames": settings.e2e_frames, "peak_seconds": settings.peak_seconds}
