"""The environment recorded with every benchmark result: CPU, GPU and clocks, Jetson power mode, versions.

Numbers are only comparable with the machine state they were measured in, so each report carries the CPU
model and cores (and how many this process may use), the load average (a background job halves a 2-core
machine), GPUs with their current and maximum clocks (``nvidia-smi``), the Jetson power mode
(``nvpmodel -q``), library versions, threads and the date. Probes reuse :mod:`deblurrt.doctor`; none of them
raises for a missing library or tool.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from importlib import metadata
from typing import Any

from deblurrt import __version__

# nvidia-smi fields worth knowing for a latency number: clocks decide speed, the power limit and
# performance state explain throttling.
GPU_QUERY = ("name,driver_version,memory.total,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,"
             "power.limit,pstate,temperature.gpu")

_LIBRARIES = {
    "numpy": ("numpy",),
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python"),
    "torch": ("torch",),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"),
    "cuda-python": ("cuda-python", "cuda-bindings"),
    "pytest-benchmark": ("pytest-benchmark",),
    "matplotlib": ("matplotlib",),
}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), which a container or taskset may limit."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape a measurement (None: not installed).

    Read from package metadata, so nothing heavy (torch, TensorRT) is imported just to learn its version.
    """
    versions: dict[str, str | None] = {"deblurrt": __version__}
    for key, distributions in _LIBRARIES.items():
        versions[key] = None
        for distribution in distributions:
            try:
                versions[key] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def gpu_info() -> dict[str, Any]:
    """GPUs with clocks from nvidia-smi, or ``{"ok": False, "reason": ...}``."""
    from deblurrt.doctor import _run_tool

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {"ok": False, "reason": "no nvidia-smi (no NVIDIA driver, or an older Jetson: see tegrastats)"}
    output, reason = _run_tool([exe, f"--query-gpu={GPU_QUERY}", "--format=csv,noheader"])
    if output is None:
        return {"ok": False, "reason": reason}
    keys = GPU_QUERY.split(",")
    gpus = [dict(zip(keys, (field.strip() for field in line.split(",")), strict=False))
            for line in output.strip().splitlines() if line.strip()]
    return {"ok": bool(gpus), "gpus": gpus}


def thread_settings(threads: int | None = None) -> dict[str, Any]:
    """Threads the benchmark uses and the environment variables that change them behind its back."""
    return {
        "inference_threads": threads,
        **{name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }


def collect_environment(threads: int | None = None) -> dict[str, Any]:
    """The environment block of a report (JSON-able; never raises for a missing library or tool).

    Keys: ``date``, ``cpu`` (model), ``cores``, ``cores_usable``, ``load_average``, ``platform``, ``python``,
    ``versions``, ``threads``, ``onnxruntime_providers``, ``gpu``, ``jetson``.
    """
    from deblurrt.doctor import _guarded, probe_jetson, probe_onnxruntime, probe_platform, probe_python

    plat = _guarded(probe_platform)
    jetson = _guarded(probe_jetson)
    ort = _guarded(probe_onnxruntime)
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not available on every platform
        load = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
        "cpu": plat.get("cpu"),
        "cores": plat.get("cpu_count"),
        "cores_usable": plat.get("cpu_usable"),
        "load_average": load,
        "platform": plat.get("platform"),
        "machine": plat.get("machine"),
        "python": _guarded(probe_python).get("version"),
        "versions": library_versions(),
        "threads": thread_settings(threads),
        "onnxruntime_providers": ort.get("providers"),
        "gpu": gpu_info(),
        "jetson": {"ok": bool(jetson.get("ok")), "model": jetson.get("model"),
                   "l4t": jetson.get("l4t"), "power_mode": jetson.get("power_mode"),
                   **({"reason": jetson["reason"]} if not jetson.get("ok") and "reason" in jetson else {})},
    }


def describe(environment: dict[str, Any]) -> str:
    """One line for report footers: CPU, cores, load, threads, key versions, GPU, date."""
    versions = environment.get("versions", {})
    parts = [f"{environment.get('cpu') or 'unknown CPU'}, {environment.get('cores_usable') or environment.get('cores')} "
             "cores usable"]
    if environment.get("load_average"):
        parts.append(f"load average {environment['load_average'][0]:g} at start")
    threads = environment.get("threads", {}).get("inference_threads")
    if threads:
        parts.append(f"{threads} inference threads")
    parts.append(", ".join(f"{name} {versions[name]}" for name in ("onnxruntime", "torch", "tensorrt")
                           if versions.get(name)))
    gpu = environment.get("gpu", {})
    if gpu.get("ok"):
        parts.append("; ".join(f"{g.get('name')} (SM {g.get('clocks.sm')} of {g.get('clocks.max.sm')})"
                               for g in gpu["gpus"]))
    else:
        parts.append("no GPU")
    jetson = environment.get("jetson", {})
    if jetson.get("ok"):
        parts.append(f"Jetson {jetson.get('model')} power mode {jetson.get('power_mode')}")
    parts.append(str(environment.get("date", ""))[:10])
    return ", ".join(p for p in parts if p)
