"""The TensorRT backend's own behaviour on fakes of TensorRT and CUDA (tests/fake_trt.py): what state a failed
prepare leaves, how refusals surface, the DLA core at load, CUDA-graph capture mode and fallback, pycuda's
context on the inference thread, and bench rows labelled from what ran."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from fake_trt import FakeCuda, Memory, fake_pycuda, open_fake_engine

from deblurrt.errors import DeblurrtError
from deblurrt.runtime.backends import tensorrt as trt_backend

A = (1, 3, 32, 32)
B = (1, 3, 64, 64)


def _frame(shape, value=0.25):
    return np.full(shape, value, np.float32)


def test_failed_prepare_forgets_the_freed_buffers(tmp_path, monkeypatch):
    backend, trt, cuda = open_fake_engine(tmp_path, monkeypatch)
    np.testing.assert_allclose(backend.infer(_frame(A)), 0.5)
    context = trt.engine.contexts[0]
    context.refuse_shapes.add(B)
    with pytest.raises(DeblurrtError, match="refused input shape"):
        backend.infer(_frame(B))
    # The buffers of A were freed by the failed prepare: the next frame at A must prepare again (the fake
    # memory raises on any copy into a freed allocation) and compute with fresh buffers.
    np.testing.assert_allclose(backend.infer(_frame(A, 0.125)), 0.25)
    backend.close()
    assert cuda.memory.live == 0 and not cuda.host_live


def test_failed_allocation_leaves_no_buffer_behind(tmp_path, monkeypatch):
    cuda = FakeCuda()
    backend, _, _ = open_fake_engine(tmp_path, monkeypatch, cuda=cuda)
    backend.infer(_frame(A))
    cuda.fail_alloc_at = cuda._allocs + 2  # the output buffer of the next prepare: out of memory
    with pytest.raises(DeblurrtError, match="cudaMalloc"):
        backend.infer(_frame(B))
    cuda.fail_alloc_at = None
    np.testing.assert_allclose(backend.infer(_frame(B, 1.0)), 2.0)
    np.testing.assert_allclose(backend.infer(_frame(A, 1.0)), 2.0)
    backend.close()
    assert cuda.memory.live == 0


def test_a_refused_profile_switch_is_an_error_and_is_retried(tmp_path, monkeypatch):
    backend, trt, _ = open_fake_engine(tmp_path, monkeypatch)
    backend.infer(_frame(A))
    context = trt.engine.contexts[0]
    context.refuse_profiles.add(1)
    # the binding raises RuntimeError (never returns False): it becomes a DeblurrtError naming the profile
    with pytest.raises(DeblurrtError, match="refused optimization profile 1"):
        backend.infer(_frame(B))
    context.refuse_profiles.clear()
    np.testing.assert_allclose(backend.infer(_frame(B)), 0.5)
    # after the failed switch the active profile was unknown, so going back to A switches explicitly
    np.testing.assert_allclose(backend.infer(_frame(A)), 0.5)
    assert context.profile_calls == [1, 1, 0]
    backend.close()


def test_dla_core_from_the_sidecar_is_set_before_deserializing(tmp_path, monkeypatch):
    backend, trt, _ = open_fake_engine(tmp_path, monkeypatch, sidecar_extra={"dla_core": 1})
    assert trt.events == ["DLA_core=1", "deserialize"]
    backend.close()
    backend, trt, _ = open_fake_engine(tmp_path, monkeypatch)
    assert trt.events == ["deserialize"]
    backend.close()


def test_runtime_creation_failure_is_a_clear_error(tmp_path, monkeypatch):
    cuda = FakeCuda()
    error = TypeError("pybind11::init(): factory function returned nullptr")
    with pytest.raises(DeblurrtError, match="could not create a runtime.*deblurrt doctor"):
        open_fake_engine(tmp_path, monkeypatch, cuda=cuda, runtime_error=error)
    assert cuda.released == 1


def test_cuda_graph_replays_after_the_first_run(tmp_path, monkeypatch):
    backend, trt, cuda = open_fake_engine(tmp_path, monkeypatch, cuda_graph=True)
    np.testing.assert_allclose(backend.infer(_frame(A)), 0.5)
    assert backend.graph_active and cuda.calls.count("capture_begin") == 1
    np.testing.assert_allclose(backend.infer(_frame(A, 1.0)), 2.0)  # a replay computes like a run
    assert "graph_launch" in cuda.calls
    backend.close()


@pytest.mark.parametrize("failure", ["capture_end", "enqueue"])
def test_failed_capture_runs_on_without_graphs_and_says_why(tmp_path, monkeypatch, caplog, failure):
    cuda = FakeCuda()
    cuda.fail_capture_end = failure == "capture_end"
    backend, trt, _ = open_fake_engine(tmp_path, monkeypatch, cuda=cuda, cuda_graph=True)
    if failure == "enqueue":
        backend.prepare(A)
        original = trt.engine.contexts[0].execute_async_v3
        calls = iter([True, False])  # the plain run succeeds, the captured enqueue fails, later runs succeed
        trt.engine.contexts[0].execute_async_v3 = lambda handle: original(handle) and next(calls, True)
    np.testing.assert_allclose(backend.infer(_frame(A)), 0.5)
    assert not backend.cuda_graph and not backend.graph_active
    assert backend.graph_error.startswith("CUDA graph capture failed")
    assert "capture_end" in cuda.calls  # the capture is always ended, even when the enqueue failed
    assert "clear_error" in cuda.calls
    if failure == "enqueue":
        assert "graph_destroy" in cuda.calls
    assert "running without CUDA graphs" in caplog.text
    np.testing.assert_allclose(backend.infer(_frame(A, 1.0)), 2.0)
    assert "graph_launch" not in cuda.calls
    backend.close()


def test_capture_uses_thread_local_mode():
    runtime = pytest.importorskip("cuda.bindings.runtime")
    seen = []

    class Recorder:
        cudaStreamCaptureMode = runtime.cudaStreamCaptureMode

        @staticmethod
        def cudaStreamBeginCapture(stream, mode):  # noqa: N802 - mirrors cuda-python
            seen.append(mode)
            return (runtime.cudaError_t.cudaSuccess,)

    cuda = object.__new__(trt_backend._CudaPython)
    cuda.rt = Recorder
    cuda.capture_begin(5)
    assert seen == [runtime.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal]


def test_insufficient_driver_error_names_the_cuda_python_pin():
    runtime = pytest.importorskip("cuda.bindings.runtime")
    cuda = trt_backend._CudaPython()
    with pytest.raises(trt_backend.CudaError, match=r"cudaErrorInsufficientDriver.*trt-cu12.*cuda-python>=12.3,<13"):
        cuda._call("cudaMalloc", (runtime.cudaError_t.cudaErrorInsufficientDriver, None))


def test_pycuda_route_makes_the_primary_context_current_on_the_infer_thread(tmp_path, monkeypatch):
    memory = Memory()
    package, driver = fake_pycuda(memory)
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    monkeypatch.delitem(sys.modules, "pycuda.autoinit", raising=False)
    cuda = trt_backend._PyCuda()
    cuda.memory = memory
    backend, trt, _ = open_fake_engine(tmp_path, monkeypatch, cuda=cuda)
    assert driver.stack() == []  # loading pushed and popped on this thread
    results, errors = [], []

    def infer():
        try:
            results.append(backend.infer(_frame(A)))
            results.append(driver.stack() == [])
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    worker = threading.Thread(target=infer, name="deblurrt-infer")
    worker.start()
    worker.join()
    assert not errors, errors
    np.testing.assert_allclose(results[0], 0.5)
    assert results[1] is True  # balanced push/pop on the infer thread
    threads = {thread for call, thread, _ in driver.log if call in ("mem_alloc", "memcpy_htod_async")}
    assert threads == {"deblurrt-infer"}
    assert max(depth for _, _, depth in driver.log) == 1  # nested calls push once
    backend.close()
    assert driver.stack() == [] and driver.Context.detached == 1


def test_bench_rows_say_when_the_graph_capture_failed(tmp_path, monkeypatch):
    from deblurrt.bench.harness import Settings, run_benchmark
    from deblurrt.bench.models import resolve_models
    from deblurrt.bench.report import markdown

    cuda = FakeCuda()
    cuda.fail_capture_end = True
    backend, trt, _ = open_fake_engine(tmp_path, monkeypatch, cuda=cuda)
    backend.close()
    engine = tmp_path / "model.engine"
    settings = Settings(sizes=[(32, 32)], warmup=0, iters=3, seconds=None, rounds=1, peak_seconds=None,
                        log=lambda message: None)
    report = run_benchmark(resolve_models([str(engine)]), ["tensorrt"], ["fp32"], settings)
    rows = {row["cuda_graph_requested"]: row for row in report["results"]}
    assert rows[True]["cuda_graph"] is False and "capture failed" in rows[True]["cuda_graph_error"]
    assert rows[False]["cuda_graph"] is False and "cuda_graph_error" not in rows[False]
    assert "trt (graph capture failed)" in markdown(report)
    # --warmup 0: the capture happened while setting up, never inside a timed step
    assert cuda.calls.count("capture_begin") == 1


def test_bench_setup_captures_before_timing(tmp_path, monkeypatch):
    from deblurrt.bench.runners import TensorRTRunner

    cuda = FakeCuda()
    backend, _, _ = open_fake_engine(tmp_path, monkeypatch, cuda=cuda)
    backend.close()
    runner = TensorRTRunner(tmp_path / "model.engine", cuda_graph=True)
    runner.setup(32, 32)
    assert runner.cuda_graph_used is True and cuda.calls.count("capture_begin") == 1
    captures = cuda.calls.count("capture_begin")
    for _ in range(3):
        runner.step()
    assert cuda.calls.count("capture_begin") == captures and cuda.calls.count("graph_launch") == 3
    runner.close()


def test_gpu_ready_survives_cuda_python_12_without_a_driver(monkeypatch):
    import types

    fake_tensorrt = types.ModuleType("tensorrt")
    runtime = types.ModuleType("cuda.bindings.runtime")

    def no_driver():
        raise RuntimeError("Failed to dlopen libcuda.so.1")

    runtime.cudaGetDeviceCount = no_driver
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = runtime
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", runtime)
    ready, reason = trt_backend.gpu_ready()
    assert not ready and "Failed to dlopen libcuda.so.1" in reason
