"""This machine's measured compute peak, so a model's achieved GMAC/s reads as a fraction of the possible.

Two micro-benchmarks of about a second each, both single-frame and FP32 like the models:

* numpy GEMM: ``C = A @ B`` on 1024x1024 float32 (BLAS sgemm, all cores): the dense-math ceiling;
* ONNX Runtime dense 3x3 convolution, 32 -> 32 channels at 368x640 (the bread and butter of the zoo), with
  the benchmark's thread count: what the inference library reaches on its best kernel.

Both report GMAC/s (one multiply-accumulate = 2 FLOP). On a loaded machine both drop along with the models,
which keeps the ratio meaningful.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def _timed_loop(run, seconds: float, min_iters: int = 3) -> tuple[float, int]:
    """Median seconds per call of ``run`` over about ``seconds`` (after one warm-up call), and the count."""
    run()
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(samples) < min_iters or time.perf_counter() < deadline:
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples)), len(samples)


def gemm_peak(seconds: float = 1.0, n: int = 1024) -> dict[str, Any]:
    """numpy float32 GEMM throughput: ``{"gmac_per_s", "n", "iterations"}``."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    per_call, count = _timed_loop(lambda: np.matmul(a, b, out=out), seconds)
    return {"gmac_per_s": round(n ** 3 / per_call / 1e9, 2), "n": n, "iterations": count}


def conv_model_bytes(channels: int = 32) -> bytes:
    """A one-node ONNX model: dense 3x3 Conv, ``channels`` -> ``channels``, padding 1, dynamic H/W."""
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).standard_normal((channels, channels, 3, 3)).astype(np.float32) * 0.05
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node], "conv3x3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, "h", "w"])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)  # readable by older onnxruntime builds too
    return model.SerializeToString()


def ort_conv_peak(seconds: float = 1.0, threads: int | None = None, channels: int = 32,
                  size: tuple[int, int] = (368, 640)) -> dict[str, Any]:
    """ONNX Runtime CPU dense 3x3 conv throughput: ``{"gmac_per_s", "channels", "size", "iterations"}``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3
    session = ort.InferenceSession(conv_model_bytes(channels), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, channels, *size), dtype=np.float32)
    per_call, count = _timed_loop(lambda: session.run(None, {"x": x}), seconds)
    macs = channels * channels * 9 * size[0] * size[1]
    return {"gmac_per_s": round(macs / per_call / 1e9, 2), "channels": channels, "size": list(size),
            "iterations": count}


def measure_peak(seconds: float = 1.0, threads: int | None = None) -> dict[str, Any]:
    """Both micro-benchmarks; one that cannot run (no onnxruntime) becomes ``{"error": ...}``."""
    peak: dict[str, Any] = {"seconds_each": seconds, "threads": threads}
    peak["numpy_gemm"] = gemm_peak(seconds)
    try:
        peak["ort_conv3x3"] = ort_conv_peak(seconds, threads)
    except ImportError as error:
        peak["ort_conv3x3"] = {"error": f"onnxruntime/onnx not installed: {error}"}
    return peak


def reference_peak(peak: dict[str, Any] | None, backend: str) -> float | None:
    """The peak GMAC/s a CPU backend's model is compared with: the ORT conv for ONNX Runtime, else GEMM.

    GPU backends (TensorRT) have no measured peak here: None.
    """
    if not peak or backend == "tensorrt":
        return None
    first = "ort_conv3x3" if backend == "onnxruntime" else "numpy_gemm"
    for key in (first, "numpy_gemm"):
        value = (peak.get(key) or {}).get("gmac_per_s")
        if value:
            return float(value)
    return None
