#!/usr/bin/env python3
"""The one-shot GPU check's driver: everything ``scripts/gpu_check.sh`` runs after it has built the venv.

    python scripts/gpu_check.py OUT_DIR --deadline EPOCH_SECONDS [--setup OUT_DIR/setup.jsonl] [--dry-run]

Steps, in priority order (a machine may be lent for minutes: the most telling results come first, and every
step gets at most the time left before the deadline, minus what the report needs):

1. ``deblurrt doctor --json``                                      -> doctor.json
2. engines of the shipped models (weights/*.onnx): FP16 and INT8 + FP16, each with static profiles
   (640x360 and 1280x720) first, dynamic ones (360p..1080p) last; every engine is built in a subprocess
   (a crash is recorded, the check goes on) and compared with ONNX Runtime CPU on the same frames at both
   sizes, with and without CUDA graphs: PSNR (float, peak 1) of the engine's output against the FP32 ONNX
   and against the same-precision ONNX; FP16 passes at >= 40 dB against FP32, INT8 + FP16 at >= 35 dB
   against its own Q/DQ graph                                        -> engines/*.json
3. ``deblurrt bench`` on the static engines (TensorRT, each precision, 640x360 and 1280x720, with and
   without CUDA graphs)                                             -> bench.json, bench.md
4. ``deblurrt run`` of a synthetic:// camera through an engine to an mp4 -> run/stats.json, run/run.mp4
5. the GPU-marked tests (``pytest -m gpu``)                         -> gpu_tests.xml
6. the dynamic-profile engines.

Everything is written to OUT_DIR/results.json after each step (a killed check keeps what it measured) and
summarised in OUT_DIR/report.md. Failures are recorded with their output and the check continues. Exit code
0 when every step that ran passed, 1 otherwise, 2 for bad arguments.

Only the standard library is imported at module level: ``--dry-run`` runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCHEMA = "deblurrt-gpu-check/1"
SIZES = ((360, 640), (720, 1280))  # (H, W): the frame sizes checked and benchmarked
DYNAMIC = ((360, 640), (720, 1280), (1080, 1920))  # min, opt, max of the dynamic profile
PRECISIONS = ("fp16", "int8+fp16")
FP16_MIN_DB = 40.0  # engine vs ONNX Runtime CPU FP32
INT8_MIN_DB = 35.0  # engine vs ONNX Runtime CPU running the same Q/DQ graph
REPORT_RESERVE_S = 10  # kept for writing the report
RUN_URI = "synthetic://?size=1280x720&severity=moderate&frames=150&seed=0&live=0"  # every frame: fps and PSNR over all 150


@dataclass
class Step:
    """One step of the check: what it runs, its longest time, the least time worth starting it with."""

    name: str
    kind: str
    timeout_s: int
    min_s: int
    describe: str
    args: dict[str, Any] = field(default_factory=dict)


def shipped_models(repo: Path = REPO) -> list[Path]:
    """weights/*.onnx, the larger model first (its numbers matter more on a GPU: it is the Orin-720p one)."""
    return sorted((repo / "weights").glob("*.onnx"), key=lambda p: ("small" not in p.name, p.name))


def plan(out: Path, repo: Path = REPO) -> list[Step]:
    """The steps in the order they run (see the module docstring)."""
    models = shipped_models(repo)
    engines = out / "engines"
    steps = [Step("doctor", "doctor", 45, 5, "deblurrt doctor --json")]
    for profile in ("static", "dynamic"):
        for model in models:
            for precision in PRECISIONS:
                name = f"engine {model.stem} {precision} {profile}"
                steps.append(Step(name, "engine", 150, 30, f"build + compare with ONNX Runtime CPU ({name})",
                                  {"onnx": model, "precision": precision, "profile": profile, "work": engines}))
        if profile == "static":
            steps += [
                Step("bench", "bench", 150, 30, "deblurrt bench --backend trt on the static engines, "
                     f"{', '.join(f'{w}x{h}' for h, w in SIZES)}, with and without CUDA graphs"),
                Step("run", "run", 90, 20, f"deblurrt run '{RUN_URI}' run/run.mp4 --model <engine> --cuda-graph"),
                Step("gpu tests", "pytest", 180, 45, "pytest -m gpu (the GPU-marked tests)"),
            ]
    return steps


# --------------------------------------------------------------------------------------------- helpers

def _python() -> str:
    return sys.executable


def run_command(command: list[str], timeout: float, log_path: Path, cwd: Path = REPO) -> dict[str, Any]:
    """Run ``command`` with a timeout, output to ``log_path``; return rc, seconds, status and the output tail."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with log_path.open("w") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        try:
            done = subprocess.run(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                                  check=False)
            rc, status = done.returncode, "passed" if done.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            rc, status = None, "timeout"
        except OSError as error:
            log.write(f"could not start: {error}\n")
            rc, status = None, "failed"
    text = log_path.read_text(errors="replace")
    return {"status": status, "rc": rc, "seconds": round(time.monotonic() - start, 2),
            "command": " ".join(command), "log": str(log_path), "tail": text[-2000:]}


def float_psnr(a, b) -> float | None:
    """PSNR (dB) of two float images in [0, 1] with peak 1 (None when identical); finer than 8-bit PSNR,
    which saturates where engines and ONNX Runtime differ by rounding only."""
    import numpy as np

    a = np.clip(np.asarray(a, np.float64), 0, 1)
    b = np.clip(np.asarray(b, np.float64), 0, 1)
    mse = float(np.mean((a - b) ** 2))
    return None if mse == 0 else round(10 * math.log10(1.0 / mse), 2)


# --------------------------------------------------------------------------------------------- engine case

def precision_onnx(fp32: Path, precision: str, folder: Path) -> Path:
    """The shipped FP32 ONNX at ``precision`` (made once per model and precision, reused by both profiles)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{fp32.stem}.{precision.replace('+', '')}.onnx"
    if target.is_file():
        return target
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    if precision == "fp16":
        from deblurrt.export.fp16 import convert_fp16

        convert_fp16(fp32, tmp)
    elif precision == "int8+fp16":
        from deblurrt.export.images import calibration_images
        from deblurrt.export.int8 import Int8Options, quantize_int8
        from deblurrt.export.onnx_export import read_metadata

        multiple = int(read_metadata(fp32).get("deblurrt.pad_multiple", "32"))
        side = -(-256 // multiple) * multiple
        quantize_int8(fp32, tmp, calibration_images(None, side, side, 16), Int8Options(float_dtype="fp16"))
    else:
        raise ValueError(f"unknown precision {precision!r}")
    tmp.replace(target)
    return target


def _pad(image, multiple: int):
    import numpy as np

    height, width = image.shape[:2]
    pad = ((0, -height % multiple), (0, -width % multiple), (0, 0))
    padded = np.pad(image, pad, mode="edge")
    return np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32)


def engine_case(fp32: Path, precision: str, profile: str, work: Path) -> dict[str, Any]:
    """Build one engine and compare it with ONNX Runtime CPU at every size, with and without CUDA graphs."""
    import numpy as np

    from deblurrt.export.engine import build_engine, build_profiles
    from deblurrt.export.images import synthetic_pairs
    from deblurrt.export.onnx_export import ort_session, read_metadata
    from deblurrt.export.trt_compat import import_tensorrt
    from deblurrt.runtime.backends.tensorrt import TensorRTBackend

    import_tensorrt()  # first: without TensorRT there is nothing to build, and no reason to convert the ONNX
    result: dict[str, Any] = {"model": fp32.stem, "precision": precision, "profile": profile}
    started = time.monotonic()
    onnx_path = precision_onnx(fp32, precision, work / "onnx")
    result["onnx_s"] = round(time.monotonic() - started, 2)
    multiple = int(read_metadata(fp32).get("deblurrt.pad_multiple", "32"))
    if profile == "static":
        profiles = build_profiles(multiple, cameras=list(SIZES))
    else:
        profiles = build_profiles(multiple, min_shape=DYNAMIC[0], opt_shape=DYNAMIC[1], max_shape=DYNAMIC[2])
    engine = work / f"{fp32.stem}.{precision.replace('+', '')}.{profile}.engine"
    messages: list[str] = []
    started = time.monotonic()
    sidecar = build_engine(onnx_path, engine, profiles, workspace_gib=4.0, timing_cache=work / "timing.cache",
                           log=messages.append)
    result.update(engine=str(engine), build_s=round(time.monotonic() - started, 2), build_log=messages,
                  tensorrt=sidecar.get("tensorrt"), gpu=sidecar.get("gpu"),
                  timing_cache=sidecar.get("timing_cache"), engine_mib=round(engine.stat().st_size / 2**20, 2))
    threads = min(8, os.cpu_count() or 2)
    reference = ort_session(fp32, threads)
    same = ort_session(onnx_path, threads)
    threshold, versus = (FP16_MIN_DB, "fp32") if precision == "fp16" else (INT8_MIN_DB, "same")
    sizes = []
    backends = {graph: TensorRTBackend(engine, cuda_graph=graph) for graph in (False, True)}
    try:
        for index, (height, width) in enumerate(SIZES):
            _, blurry, _ = synthetic_pairs(1, height, width, seed=700 + index)[0]
            batch = _pad(blurry, multiple)
            expected32 = reference.run(None, {reference.get_inputs()[0].name: batch})[0]
            same_dtype = np.float16 if "16" in same.get_inputs()[0].type else np.float32
            expected_same = same.run(None, {same.get_inputs()[0].name: batch.astype(same_dtype)})[0]
            outputs = {}
            for graph, backend in backends.items():
                for _ in range(3):  # the first run at a size captures the graph; the replays are what is compared
                    outputs[graph] = np.asarray(backend.infer(batch.astype(backend.input_dtype)), np.float32)
            crop = (slice(None), slice(None), slice(0, height), slice(0, width))
            row = {"size": f"{width}x{height}",
                   "psnr_vs_ort_fp32": float_psnr(outputs[False][crop], expected32[crop]),
                   "psnr_vs_ort_same": float_psnr(outputs[False][crop], np.asarray(expected_same, np.float32)[crop]),
                   "ort_same_vs_fp32": float_psnr(np.asarray(expected_same, np.float32)[crop], expected32[crop]),
                   "graph_max_abs_diff": float(np.abs(outputs[True] - outputs[False]).max()),
                   "graph_active": bool(backends[True].graph_active),
                   "graph_error": backends[True].graph_error,
                   "finite": bool(np.isfinite(outputs[False]).all())}
            value = row["psnr_vs_ort_fp32"] if versus == "fp32" else row["psnr_vs_ort_same"]
            row["ok"] = row["finite"] and (value is None or value >= threshold) and row["graph_max_abs_diff"] < 1e-3
            sizes.append(row)
    finally:
        for backend in backends.values():
            backend.close()
    result.update(sizes=sizes, threshold_db=threshold, threshold_vs="ONNX Runtime CPU " + (
        "FP32" if versus == "fp32" else "same Q/DQ graph"), ok=all(row["ok"] for row in sizes))
    return result


# --------------------------------------------------------------------------------------------- steps

class Check:
    """Runs the plan against a deadline and keeps results.json up to date."""

    def __init__(self, out: Path, deadline: float, setup: Path | None, run_uri: str = RUN_URI):
        self.out = out
        self.deadline = deadline
        self.run_uri = run_uri
        self.results: dict[str, Any] = {"schema": SCHEMA, "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                                        "deadline_epoch": deadline, "python": sys.executable,
                                        "setup": read_setup(setup), "steps": [], "engines": [],
                                        "bench": None, "run": None, "gpu_tests": None, "doctor": None}

    def left(self) -> float:
        return self.deadline - time.time() - REPORT_RESERVE_S

    def save(self) -> None:
        path = self.out / "results.json"
        tmp = path.with_name(".results.json.tmp")
        tmp.write_text(json.dumps(self.results, indent=2, default=str) + "\n")
        tmp.replace(path)

    def record(self, step: Step, outcome: dict[str, Any]) -> None:
        entry = {"name": step.name, **outcome}
        self.results["steps"].append(entry)
        self.save()
        print(f"gpu_check: {step.name}: {entry['status']} ({entry.get('seconds', 0)} s)"
              + (f" - {entry['note']}" if entry.get("note") else ""), flush=True)

    def run(self, steps: list[Step]) -> None:
        for step in steps:
            left = self.left()
            if left < step.min_s:
                self.record(step, {"status": "skipped", "seconds": 0,
                                   "note": f"out of time ({max(left, 0):.0f} s left, needs {step.min_s} s)"})
                continue
            try:
                outcome = getattr(self, f"_{step.kind}")(step, min(step.timeout_s, left))
            except Exception as error:  # noqa: BLE001 - a step's own bug is recorded, the check goes on
                outcome = {"status": "failed", "seconds": 0, "note": f"{type(error).__name__}: {error}"}
            self.record(step, outcome)

    def _doctor(self, step: Step, timeout: float) -> dict[str, Any]:
        outcome = run_command([_python(), "-m", "deblurrt", "doctor", "--json"], timeout,
                              self.out / "logs" / "doctor.log")
        try:
            text = Path(outcome["log"]).read_text().split("\n", 1)[1]
            doctor = json.loads(text[text.index("{"):])
            (self.out / "doctor.json").write_text(json.dumps(doctor, indent=2) + "\n")
            self.results["doctor"] = {key: doctor.get(key) for key in ("tensorrt", "cuda_python", "gpu", "torch",
                                                                        "onnxruntime", "jetson")}
            self.results["doctor"]["can_run"] = doctor.get("can_run", {}).get("backends")
            outcome["note"] = "; ".join(f"{name} {'yes' if v.get('ok') else 'no'}"
                                        for name, v in (doctor.get("can_run", {}).get("backends") or {}).items())
        except (ValueError, OSError, IndexError) as error:
            outcome["note"] = f"no JSON from doctor ({error})"
            outcome["status"] = "failed"
        return outcome

    def _engine(self, step: Step, timeout: float) -> dict[str, Any]:
        args = step.args
        work = Path(args["work"])
        tag = f"{args['onnx'].stem}.{args['precision'].replace('+', '')}.{args['profile']}"
        json_path = work / f"{tag}.json"
        outcome = run_command([_python(), str(Path(__file__).resolve()), "engine", str(args["onnx"]),
                               args["precision"], args["profile"], str(work), str(json_path)], timeout,
                              self.out / "logs" / f"engine.{tag}.log")
        if json_path.is_file():
            case = json.loads(json_path.read_text())
            self.results["engines"].append(case)
            if outcome["status"] == "passed" and not case.get("ok"):
                outcome["status"] = "failed"
            if case.get("error"):
                outcome["note"] = str(case["error"])[:300]
            else:
                sizes = [f"{row['size']}: {row['psnr_vs_ort_fp32']} dB vs FP32, {row['psnr_vs_ort_same']} dB vs "
                         "same graph" for row in case.get("sizes", [])]
                outcome["note"] = f"build {case.get('build_s')} s; " + "; ".join(sizes)
        else:
            self.results["engines"].append({"model": args["onnx"].stem, "precision": args["precision"],
                                            "profile": args["profile"], "ok": False,
                                            "error": outcome["tail"][-600:]})
        return outcome

    def _engines_built(self, profile: str = "static") -> list[str]:
        return [case["engine"] for case in self.results["engines"]
                if case.get("profile") == profile and case.get("engine") and Path(case["engine"]).is_file()]

    def _bench(self, step: Step, timeout: float) -> dict[str, Any]:
        engines = self._engines_built()
        if not engines:
            return {"status": "skipped", "seconds": 0, "note": "no static engine was built"}
        sizes = ",".join(f"{w}x{h}" for h, w in SIZES)
        outcome = run_command([_python(), "-m", "deblurrt", "bench", "--model", *engines, "--size", sizes,
                               "--warmup", "10", "--seconds", "1", "--rounds", "3", "--no-peak",
                               "--json", str(self.out / "bench.json"), "--md", str(self.out / "bench.md")],
                              timeout, self.out / "logs" / "bench.log")
        bench_json = self.out / "bench.json"
        if bench_json.is_file():
            report = json.loads(bench_json.read_text())
            self.results["bench"] = [
                {key: row.get(key) for key in ("model", "precision", "cuda_graph", "cuda_graph_requested",
                                               "width", "height", "fps", "with_copies_p50_ms")}
                | {"p50_ms": row["latency_ms"]["p50"], "p99_ms": row["latency_ms"]["p99"]}
                for row in report.get("results", [])]
            outcome["note"] = f"{len(report.get('results', []))} rows, {len(report.get('skipped', []))} skipped"
        return outcome

    def _run(self, step: Step, timeout: float) -> dict[str, Any]:
        engines = self._engines_built()
        if not engines:
            return {"status": "skipped", "seconds": 0, "note": "no static engine was built"}
        engine = next((e for e in engines if "small" in e and ".fp16." in e), engines[0])
        folder = self.out / "run"
        folder.mkdir(parents=True, exist_ok=True)
        graph = ["--cuda-graph"] if engine.endswith(".engine") else []
        outcome = run_command([_python(), "-m", "deblurrt", "run", self.run_uri, str(folder / "run.mp4"), "--model",
                               engine, "--headless", *graph, "--stats-json", str(folder / "stats.json")],
                              timeout, self.out / "logs" / "run.log")
        stats_path = folder / "stats.json"
        if stats_path.is_file():
            stats = json.loads(stats_path.read_text())
            summary = {key: stats.get(key) for key in ("frames_out", "dropped", "fps", "model_fps", "psnr_db",
                                                       "interrupted", "error", "backend")}
            summary["engine"] = engine
            summary["end_to_end_p50_ms"] = (stats.get("latency_ms") or {}).get("end_to_end", {}).get("p50")
            self.results["run"] = summary
            video = folder / "run.mp4"
            outcome["note"] = f"{stats.get('frames_out')} frames, {stats.get('fps')} fps, " \
                              f"mp4 {video.stat().st_size if video.is_file() else 0} bytes"
            if outcome["status"] == "passed" and not stats.get("frames_out"):
                outcome["status"] = "failed"
        return outcome

    def _pytest(self, step: Step, timeout: float) -> dict[str, Any]:
        xml_path = self.out / "gpu_tests.xml"
        outcome = run_command([_python(), "-m", "pytest", "-m", "gpu", "-q", "-rA", "-p", "no:cacheprovider",
                               f"--junitxml={xml_path}", "tests"], timeout, self.out / "logs" / "gpu_tests.log")
        if outcome["rc"] == 5:  # pytest: no test collected
            outcome["status"] = "failed"
        if xml_path.is_file():
            suite = ElementTree.parse(xml_path).getroot()
            suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
            counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
            self.results["gpu_tests"] = counts
            outcome["note"] = ", ".join(f"{v} {k}" for k, v in counts.items())
            if counts["tests"] and counts["skipped"] == counts["tests"]:
                outcome["status"] = "failed"  # every GPU test skipped on a GPU machine: something is missing
                outcome["note"] += " (all skipped: see the log for why)"
        return outcome


def read_setup(path: Path | None) -> list[dict[str, Any]]:
    """The venv steps gpu_check.sh recorded (one JSON object per line)."""
    if path is None or not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            entries.append({"name": "unparsed", "line": line})
    return entries


# --------------------------------------------------------------------------------------------- report

def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def markdown(results: dict[str, Any]) -> str:
    """The Markdown summary of results.json."""
    lines = ["# deblurrt GPU check", "", f"Started {results['started']}; Python {results['python']}.", ""]
    doctor = results.get("doctor") or {}
    if doctor:
        gpu = doctor.get("gpu") or {}
        names = ", ".join(f"{g['name']} (driver {g['driver']})" for g in gpu.get("gpus", [])) or gpu.get("reason")
        trt = doctor.get("tensorrt") or {}
        cudapy = doctor.get("cuda_python") or {}
        lines += [f"GPU: {names}; TensorRT {trt.get('version') or trt.get('reason')}; cuda-python "
                  f"{cudapy.get('version')} (driver CUDA {cudapy.get('driver_version')})", ""]
    if results.get("setup"):
        lines += ["## Setup", "", "| step | ok | seconds | note |", "|---|---|---|---|"]
        lines += [f"| {s.get('name')} | {s.get('ok')} | {_cell(s.get('seconds'))} | {_cell(s.get('note'))} |"
                  for s in results["setup"]]
        lines.append("")
    lines += ["## Steps", "", "| step | status | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {s['name']} | {s['status']} | {_cell(s.get('seconds'))} | {_cell(s.get('note'))} |"
              for s in results["steps"]]
    engines = results.get("engines") or []
    if engines:
        lines += ["", "## Engines vs ONNX Runtime CPU (float PSNR, peak 1)", "",
                  "| model | precision | profile | build s | size | vs ORT FP32 dB | vs ORT same graph dB | "
                  "ORT same vs FP32 dB | graph max abs diff | graph active | ok |", "|" + "---|" * 11]
        for case in engines:
            for row in case.get("sizes") or [{}]:
                lines.append(f"| {case.get('model')} | {case.get('precision')} | {case.get('profile')} | "
                             f"{_cell(case.get('build_s'))} | {_cell(row.get('size'))} | "
                             f"{_cell(row.get('psnr_vs_ort_fp32'))} | {_cell(row.get('psnr_vs_ort_same'))} | "
                             f"{_cell(row.get('ort_same_vs_fp32'))} | {_cell(row.get('graph_max_abs_diff'))} | "
                             f"{_cell(row.get('graph_active'))} | {row.get('ok', case.get('ok'))} |")
        lines += ["", f"Pass: FP16 >= {FP16_MIN_DB:g} dB vs ONNX Runtime FP32; INT8 + FP16 >= {INT8_MIN_DB:g} dB vs "
                  "ONNX Runtime running the same Q/DQ graph; CUDA-graph replays equal plain runs (< 1e-3).", ""]
        failed = [case for case in engines if case.get("error")]
        if failed:
            lines += ["Engines that failed:", ""]
            lines += [f"- {c.get('model')} {c.get('precision')} {c.get('profile')}: "
                      f"{str(c['error']).strip().splitlines()[-1][:300]}" for c in failed]
            lines.append("")
    if results.get("bench"):
        lines += ["## deblurrt bench (model-only, TensorRT)", "",
                  "| engine | precision | CUDA graph | size | p50 ms | p99 ms | FPS | with copies p50 ms |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['precision']} | {r['cuda_graph']} | {r['width']}x{r['height']} | "
                  f"{_cell(r['p50_ms'])} | {_cell(r['p99_ms'])} | {_cell(r['fps'])} | {_cell(r['with_copies_p50_ms'])} |"
                  for r in results["bench"]]
        lines.append("")
    if results.get("run"):
        lines += ["## deblurrt run", "", "```", json.dumps(results["run"], indent=2), "```", ""]
    if results.get("gpu_tests"):
        lines += ["## GPU-marked tests", "", ", ".join(f"{v} {k}" for k, v in results["gpu_tests"].items()), ""]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- CLI

def dry_run(out: Path, deadline: float, repo: Path = REPO) -> int:
    """Print the plan and check what it needs without running anything; 0 when the check could start."""
    problems = []
    models = shipped_models(repo)
    if not models:
        problems.append(f"no shipped model: {repo / 'weights'}/*.onnx is empty")
    if out.exists() and not out.is_dir():
        problems.append(f"OUT_DIR {out} exists and is not a folder")
    parent = out if out.is_dir() else out.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        problems.append(f"cannot write under {parent}")
    budget = deadline - time.time()
    print(f"gpu_check plan: {len(plan(out, repo))} steps in priority order, within {budget:.0f} s; results in "
          f"{out}/results.json and {out}/report.md")
    for number, step in enumerate(plan(out, repo), 1):
        print(f"  {number:2d}. {step.name:<44} up to {step.timeout_s:3d} s  {step.describe}")
    print(f"  models: {', '.join(str(m.relative_to(repo)) for m in models) or 'none'}")
    for problem in problems:
        print(f"gpu_check: error: {problem}", file=sys.stderr)
    return 2 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Run the check (or one engine case, for the subprocess the check starts)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["engine"]:
        if len(argv) != 6:
            print("usage: gpu_check.py engine FP32_ONNX PRECISION PROFILE WORK_DIR OUT_JSON", file=sys.stderr)
            return 2
        fp32, precision, profile, work, out_json = Path(argv[1]), argv[2], argv[3], Path(argv[4]), Path(argv[5])
        work.mkdir(parents=True, exist_ok=True)
        try:
            result = engine_case(fp32, precision, profile, work)
        except Exception as error:  # noqa: BLE001 - the failure is the result: recorded for the report
            result = {"model": fp32.stem, "precision": precision, "profile": profile, "ok": False,
                      "error": f"{type(error).__name__}: {error}"}
        out_json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(json.dumps(result, default=str)[:4000])
        return 0 if result.get("ok") else 1
    parser = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, metavar="OUT_DIR")
    parser.add_argument("--deadline", type=float, default=None, metavar="EPOCH_S",
                        help="stop starting steps so that the report is written by then (default: now + 480 s)")
    parser.add_argument("--setup", type=Path, default=None, help="setup.jsonl written by gpu_check.sh")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and check the files; run nothing")
    parser.add_argument("--only", default=None, metavar="KINDS",
                        help="run only these kinds of step, comma-separated: doctor, engine, bench, run, pytest "
                        "(e.g. to rerun the engines on a machine that is still lent)")
    args = parser.parse_args(argv)
    kinds = {step.kind for step in plan(args.out)}
    only = set(filter(None, (args.only or "").split(","))) or kinds
    if only - kinds:
        parser.error(f"--only takes {', '.join(sorted(kinds))}; received {', '.join(sorted(only - kinds))}")
    deadline = args.deadline if args.deadline is not None else time.time() + 480
    if args.dry_run:
        return dry_run(args.out, deadline)
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, deadline, args.setup)
    check.save()
    try:
        check.run([step for step in plan(args.out) if step.kind in only])
    finally:
        check.results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
        check.save()
        (args.out / "report.md").write_text(markdown(check.results))
        print(f"gpu_check: wrote {args.out / 'results.json'} and {args.out / 'report.md'}", flush=True)
    ran = [s for s in check.results["steps"] if s["status"] != "skipped"]
    return 0 if ran and all(s["status"] == "passed" for s in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
