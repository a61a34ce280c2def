"""ONNX Runtime CPU inference of the tiny and nano models (random weights) through the runtime's backend."""

from __future__ import annotations

import numpy as np
import pytest

from deblurrt.bench.environment import usable_cores

THREADS = usable_cores()

CASES = [("unet_tiny", (360, 640)), ("unet_nano", (360, 640)), ("unet_nano_prior", (360, 640))]


@pytest.mark.parametrize(("name", "size"), CASES, ids=[f"{n}-{s[1]}x{s[0]}" for n, s in CASES])
def test_ort_inference(benchmark, onnx_models, name, size):
    """Model-only latency of one padded frame (ONNX Runtime returns host arrays: synchronous)."""
    from deblurrt.runtime.backends import open_backend
    from deblurrt.runtime.prepost import padded_size

    with open_backend(onnx_models(name), "ort", providers="cpu", threads=THREADS) as backend:
        padded = padded_size(*size, backend.info.pad_multiple)
        batch = np.random.default_rng(0).random((1, 3, *padded), dtype=np.float32)
        backend.infer(batch)  # warm-up: the first run allocates ONNX Runtime's arena
        benchmark.extra_info.update({"model": name, "precision": "fp32", "backend": "onnxruntime",
                                     "resolution": f"{size[1]}x{size[0]}", "padded": list(padded),
                                     "weights": "random"})
        out = benchmark(backend.infer, batch)
    assert out.shape == batch.shape
