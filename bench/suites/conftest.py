"""pytest-benchmark suites of deblurrt (``make bench``): not part of ``make test``.

Every benchmark records the environment: the run-level ``machine_info`` of the saved JSON gets deblurrt's
environment block (CPU, cores, load, GPU/clocks, Jetson power mode, versions), and each benchmark's
``extra_info`` gets threads, load average and its own resolution/precision. Saved runs
(``--benchmark-autosave``) compare with ``--benchmark-compare`` (``make bench BENCH_ARGS=--benchmark-compare``).

Registered models are exported once into the bench cache (``$DEBLURRT_BENCH_CACHE``, default
``~/.cache/deblurrt/bench``) with random weights.
"""

from __future__ import annotations

import os

import pytest

from deblurrt.bench.environment import usable_cores

#: Inference threads: every core this process may use (the CI machine has 2).
THREADS = usable_cores()

_ENVIRONMENT: dict | None = None


def environment() -> dict:
    """deblurrt's environment block, collected once per session."""
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        from deblurrt.bench.environment import collect_environment

        _ENVIRONMENT = collect_environment(THREADS)
    return _ENVIRONMENT


def pytest_benchmark_update_machine_info(config, machine_info):
    """Put the environment into the saved run, where --benchmark-compare shows machine differences."""
    machine_info["deblurrt"] = environment()


@pytest.fixture(autouse=True)
def _record_environment(request):
    """Every benchmark's extra_info: threads, load average, versions that matter (plus what the test adds)."""
    if "benchmark" in request.fixturenames:
        benchmark = request.getfixturevalue("benchmark")
        env = environment()
        benchmark.extra_info.update({
            "threads": THREADS, "cpu": env["cpu"], "cores": env["cores_usable"],
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "onnxruntime": env["versions"].get("onnxruntime"), "numpy": env["versions"].get("numpy"),
            "opencv": env["versions"].get("opencv"), "date": env["date"],
        })
    yield


@pytest.fixture(scope="session")
def onnx_models():
    """``name -> path`` of the exported ONNX models the suites time (exported on first use, cached)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from deblurrt.bench.models import export_registered

    cache: dict[str, object] = {}

    def get(name: str, precision: str = "fp32"):
        key = f"{name}:{precision}"
        if key not in cache:
            cache[key] = export_registered(name, precision)
        return cache[key]

    return get
