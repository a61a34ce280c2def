"""Runners: one loaded model that times single-frame inference at a given frame size.

:class:`BackendRunner` drives any runtime backend (ONNX Runtime, PyTorch) through ``Backend.infer``, exactly
what ``deblurrt run`` calls per frame; those calls return host arrays, so they are synchronous (torch's
``.cpu()`` waits for the GPU) and the wall clock around them is the latency.

:class:`TensorRTRunner` is written against the runtime's TensorRT backend and times what the GPU does with
device-resident buffers: the input is copied to the device once, each timed iteration is
``execute_async_v3`` (or a CUDA graph replay) followed by a stream synchronize, and CUDA events on the same
stream measure H2D copy, compute and D2H copy separately. TensorRT, cuda-python and a GPU are needed; the
imports are lazy, and where they are missing the case is skipped with the reason.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from deblurrt.errors import DeblurrtError


class Runner:
    """Interface: ``setup(h, w)`` -> ``padded (H, W)``; ``step()`` -> ms; ``phases()``; ``close()``."""

    backend: Any
    #: TensorRT: whether the size set up last replays a CUDA graph (None for backends without graphs)
    cuda_graph_used: bool | None = None
    graph_error: str | None = None

    def setup(self, height: int, width: int) -> tuple[int, int]:
        """Prepare a random frame of ``height x width`` padded to the model's multiple; return the padded size."""
        raise NotImplementedError

    def step(self) -> float:
        """Run one synchronised inference; return its latency in ms."""
        raise NotImplementedError

    def phases(self) -> dict[str, list[float]]:
        """Per-phase samples (ms) collected since the last :meth:`setup` (TensorRT: h2d/compute/d2h)."""
        return {}

    def close(self) -> None:
        """Release the model."""
        self.backend.close()


def _padded(backend, height: int, width: int) -> tuple[int, int]:
    from deblurrt.runtime.prepost import padded_size

    return padded_size(height, width, backend.info.pad_multiple, backend.input_spec.min_hw())


class BackendRunner(Runner):
    """Time ``backend.infer(batch)`` on a fixed random batch (ONNX Runtime, PyTorch)."""

    def __init__(self, backend):
        self.backend = backend
        self._batch: np.ndarray | None = None

    def setup(self, height: int, width: int) -> tuple[int, int]:
        padded = _padded(self.backend, height, width)
        rng = np.random.default_rng(0)
        # random content, not zeros: some kernels (and denormal handling) are faster on zeros
        self._batch = rng.random((1, 3, *padded), dtype=np.float32).astype(self.backend.input_dtype)
        return padded

    def step(self) -> float:
        start = time.perf_counter()
        self.backend.infer(self._batch)
        return (time.perf_counter() - start) * 1e3


class _Events:
    """CUDA events through cuda-python (``cudaEventCreate`` / ``Record`` / ``ElapsedTime``), errors checked."""

    def __init__(self, cuda):
        self.cuda = cuda
        self.rt = cuda.rt
        self.events = [cuda._call("cudaEventCreate", self.rt.cudaEventCreate()) for _ in range(6)]

    def record(self, index: int, stream: Any) -> None:
        self.cuda._call("cudaEventRecord", self.rt.cudaEventRecord(self.events[index], stream))

    def elapsed(self, start: int, end: int) -> float:
        return float(self.cuda._call("cudaEventElapsedTime",
                                     self.rt.cudaEventElapsedTime(self.events[start], self.events[end])))

    def destroy(self) -> None:
        for event in self.events:
            self.cuda._call("cudaEventDestroy", self.rt.cudaEventDestroy(event))
        self.events = []


class TensorRTRunner(Runner):
    """Device-resident TensorRT timing with per-phase CUDA events, with or without CUDA graphs.

    Uses the runtime backend's public device-level steps (``prepare``, ``input_buffer``, ``execute``), so the engine runs exactly
    as in ``deblurrt run``; only the copies move out of the timed region.
    """

    def __init__(self, path: str | Path, cuda_graph: bool):
        from deblurrt.runtime.backends import open_backend

        self.backend = open_backend(path, "trt", cuda_graph=cuda_graph)
        if cuda_graph and not self.backend.cuda_graph:
            self.backend.close()
            raise DeblurrtError("CUDA graphs need cuda-python (pycuda has no graph API here)")
        self.cuda = self.backend.cuda
        self.requested_graph = bool(cuda_graph)
        self.events = _Events(self.cuda) if hasattr(self.cuda, "rt") else None
        self._phases: dict[str, list[float]] = {"h2d": [], "compute": [], "d2h": []}

    def setup(self, height: int, width: int) -> tuple[int, int]:
        padded = _padded(self.backend, height, width)
        shape = (1, 3, *padded)
        backend = self.backend
        backend.check_input(np.zeros(shape, np.float32))  # the engine's profiles must accept the size
        with self.cuda.current():
            backend.prepare(shape)
            backend.input_buffer.host[...] = np.random.default_rng(0).random(shape, dtype=np.float32)
            self.cuda.htod(backend.input_buffer.device, backend.input_buffer.host, backend.stream)
            # The first run at a size captures the CUDA graph (when asked): done here, so that even with
            # --warmup 0 no timed step includes a capture, and the row can say whether a graph runs.
            backend.execute()
            self.cuda.stream_sync(backend.stream)
        self.cuda_graph_used = bool(backend.graph_active) if self.requested_graph else False
        self.graph_error = backend.graph_error if self.requested_graph else None
        self._phases = {"h2d": [], "compute": [], "d2h": []}
        return padded

    def step(self) -> float:
        with self.cuda.current():
            return self._step()

    def _step(self) -> float:
        backend, cuda, stream = self.backend, self.cuda, self.backend.stream
        events = self.events
        if events is not None:
            # copies are timed by events but stay outside the wall-clock model-only latency
            events.record(0, stream)
            cuda.htod(backend.input_buffer.device, backend.input_buffer.host, stream)
            events.record(1, stream)
            cuda.stream_sync(stream)
        start = time.perf_counter()
        if events is not None:
            events.record(2, stream)
        backend.execute()
        if events is not None:
            events.record(3, stream)
        cuda.stream_sync(stream)  # the sync inside the timed region: without it only the launch is timed
        latency = (time.perf_counter() - start) * 1e3
        if events is not None:
            events.record(4, stream)
            cuda.dtoh(backend.output_buffer.host, backend.output_buffer.device, stream)
            events.record(5, stream)
            cuda.stream_sync(stream)
            self._phases["h2d"].append(events.elapsed(0, 1))
            self._phases["compute"].append(events.elapsed(2, 3))
            self._phases["d2h"].append(events.elapsed(4, 5))
        return latency

    def phases(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self._phases.items() if v}

    def close(self) -> None:
        try:
            if self.events is not None:
                self.events.destroy()
        finally:
            self.backend.close()


def open_runner(path: str | Path, backend: str, *, threads: int | None = None, providers: str | None = None,
                cuda_graph: bool = False) -> Runner:
    """A runner for ``path`` on ``backend`` (canonical name). Raises :class:`DeblurrtError` when it cannot load."""
    from deblurrt.runtime.backends import open_backend

    if backend == "tensorrt":
        return TensorRTRunner(path, cuda_graph)
    options: dict[str, Any] = {"threads": threads}
    if backend == "onnxruntime":
        options["providers"] = providers
        # All cases stay open for the interleaved rounds; per-session memory arenas would add up (the zoo at
        # 720p exceeded 24 GB). Arena-free sessions time the same compute, allocations included.
        options["memory_arena"] = False
    return BackendRunner(open_backend(path, backend, **options))
