"""Fakes of the TensorRT runtime, cuda-python's calls (as the backend wraps them) and pycuda, for CPU tests of
the behaviour that is deblurrt's own: state after failures, DLA core at load, CUDA-graph fallbacks, contexts.

Device memory is a registry of numpy arrays keyed by fake pointers; the fake engine computes ``2 * x`` from
the bound input address into the bound output address, so a frame's result proves which buffers were used.
A copy to or from a freed allocation raises, which is how a use after free shows up.
"""

from __future__ import annotations

import itertools
import threading
import types
from typing import Any

import numpy as np


class Memory:
    """Fake device memory: pointer -> array, with a record of what was freed."""

    def __init__(self):
        self.arrays: dict[int, np.ndarray] = {}
        self.freed: set[int] = set()
        self._ids = itertools.count(0x1000, 0x1000)

    def alloc(self, nbytes: int) -> int:
        pointer = next(self._ids)
        self.arrays[pointer] = np.zeros(int(nbytes), np.uint8)
        return pointer

    def get(self, pointer: int) -> np.ndarray:
        if pointer in self.freed:
            raise AssertionError(f"use after free of device pointer {pointer:#x}")
        return self.arrays[pointer]

    def free(self, pointer: int) -> None:
        if pointer in self.freed:
            raise AssertionError(f"double free of device pointer {pointer:#x}")
        self.freed.add(pointer)

    @property
    def live(self) -> int:
        return len(set(self.arrays) - self.freed)


class FakeCudaError(Exception):
    pass


class FakeCuda:
    """The interface of ``_CudaPython`` over :class:`Memory`; knobs make chosen calls fail."""

    supports_graphs = True

    def __init__(self, memory: Memory | None = None):
        self.memory = memory or Memory()
        self.host_live: set[int] = set()
        self.calls: list[str] = []
        self.fail_alloc_at: int | None = None  # fail the n-th device_alloc (1-based)
        self.fail_capture_end = False
        self.released = 0
        self._allocs = 0

    # contexts
    @staticmethod
    def current():
        import contextlib

        return contextlib.nullcontext()

    def release(self) -> None:
        self.released += 1

    # streams
    def stream_create(self):
        return 7

    @staticmethod
    def stream_handle(stream):
        return int(stream)

    def stream_sync(self, stream):
        self.calls.append("sync")

    def stream_destroy(self, stream):
        self.calls.append("stream_destroy")

    # memory
    def host_empty(self, shape, dtype):
        array = np.zeros(shape, dtype)
        self.host_live.add(id(array))
        return array, array

    def host_free(self, handle):
        self.host_live.discard(id(handle))

    def device_alloc(self, nbytes):
        self._allocs += 1
        if self.fail_alloc_at is not None and self._allocs == self.fail_alloc_at:
            from deblurrt.runtime.backends.tensorrt import CudaError

            raise CudaError("cudaMalloc failed: cudaErrorMemoryAllocation (2)")
        return self.memory.alloc(nbytes)

    @staticmethod
    def device_pointer(allocation):
        return int(allocation)

    def device_free(self, allocation):
        self.memory.free(int(allocation))

    def htod(self, device, host, stream):
        target = self.memory.get(int(device))
        target[: host.nbytes] = np.frombuffer(host.tobytes(), np.uint8)

    def dtoh(self, host, device, stream):
        source = self.memory.get(int(device))
        host[...] = np.frombuffer(source[: host.nbytes].tobytes(), host.dtype).reshape(host.shape)

    # graphs
    def capture_begin(self, stream):
        self.calls.append("capture_begin")

    def capture_end(self, stream):
        self.calls.append("capture_end")
        if self.fail_capture_end:
            from deblurrt.runtime.backends.tensorrt import CudaError

            raise CudaError("cudaStreamEndCapture failed: cudaErrorStreamCaptureInvalidated (901)")
        return ("graph", "graph_exec")

    def clear_error(self):
        self.calls.append("clear_error")

    def graph_launch(self, graph_exec, stream):
        self.calls.append("graph_launch")
        self.on_launch()

    def graph_destroy(self, graphs):
        self.calls.append("graph_destroy")

    def on_launch(self):  # replaced by the fake context so a replay computes like a run
        pass


class FakeContext:
    """IExecutionContext: profiles, shapes, addresses, ``execute_async_v3`` computing ``2 * x``."""

    def __init__(self, engine: FakeEngine):
        self.engine = engine
        self.profile = 0
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.refuse_profiles: set[int] = set()
        self.refuse_shapes: set[tuple[int, ...]] = set()
        self.profile_calls: list[int] = []
        self.enqueue_result = True
        self.runs = 0

    def set_optimization_profile_async(self, index, stream_handle):
        self.profile_calls.append(index)
        if index in self.refuse_profiles:
            raise RuntimeError("Error in set optimization profile async.")  # what the binding really does
        self.profile = index
        return True

    def set_input_shape(self, name, shape):
        if tuple(shape) in self.refuse_shapes:
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return self.shapes.get("blurry", (-1, 3, -1, -1))

    def set_tensor_address(self, name, pointer):
        self.addresses[name] = int(pointer)
        return True

    def execute_async_v3(self, stream_handle):
        self.runs += 1
        self.compute()
        return self.enqueue_result

    def compute(self):
        memory = self.engine.memory
        shape = self.shapes["blurry"]
        count = int(np.prod(shape))
        source = memory.get(self.addresses["blurry"])[: count * 4].view(np.float32)
        target = memory.get(self.addresses["sharp"])[: count * 4].view(np.float32)
        target[...] = 2 * source


class FakeEngine:
    """ICudaEngine with one input ``blurry`` and one output ``sharp`` and the given profiles."""

    def __init__(self, memory: Memory, profiles):
        self.memory = memory
        self.profiles = profiles
        self.num_io_tensors = 2
        self.num_optimization_profiles = len(profiles)
        self.contexts: list[FakeContext] = []

    def get_tensor_name(self, index):
        return ("blurry", "sharp")[index]

    def get_tensor_mode(self, name):
        return "input" if name == "blurry" else "output"

    def get_tensor_profile_shape(self, name, index):
        return self.profiles[index]

    def get_tensor_shape(self, name):
        return (-1, 3, -1, -1)

    def get_tensor_dtype(self, name):
        return "float"

    def create_execution_context(self):
        context = FakeContext(self)
        self.contexts.append(context)
        return context


def fake_tensorrt(memory: Memory, profiles, version: str = "10.3.0", runtime_error: Exception | None = None):
    """A module object standing in for ``tensorrt``; ``.events`` records the runtime's calls in order."""
    module = types.ModuleType("tensorrt")
    module.__version__ = version
    module.events = []

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    class Runtime:
        def __init__(self, logger):
            if runtime_error is not None:
                raise runtime_error
            self._dla = None

        @property
        def DLA_core(self):  # noqa: N802 - mirrors tensorrt.IRuntime
            return self._dla

        @DLA_core.setter
        def DLA_core(self, value):  # noqa: N802
            module.events.append(f"DLA_core={value}")
            self._dla = value

        def deserialize_cuda_engine(self, data):
            module.events.append("deserialize")
            module.engine = FakeEngine(memory, profiles)
            return module.engine

    module.Logger = Logger
    module.Runtime = Runtime
    module.TensorIOMode = types.SimpleNamespace(INPUT="input", OUTPUT="output")
    module.nptype = lambda dtype: np.float32
    return module


def open_fake_engine(tmp_path, monkeypatch, *, profiles=None, cuda: Any = None, sidecar_extra=None,
                     version: str = "10.3.0", cuda_graph: bool = False, runtime_error: Exception | None = None):
    """A :class:`TensorRTBackend` on the fakes: returns ``(backend, trt module, cuda)``."""
    from deblurrt.runtime.backends import tensorrt as trt_backend

    profiles = profiles or [((1, 3, 32, 32), (1, 3, 32, 32), (1, 3, 32, 32)),
                            ((1, 3, 64, 64), (1, 3, 64, 64), (1, 3, 64, 64))]
    cuda = cuda if cuda is not None else FakeCuda()
    memory = cuda.memory if hasattr(cuda, "memory") else Memory()
    trt = fake_tensorrt(memory, profiles, version, runtime_error)
    monkeypatch.setattr(trt_backend, "_import_tensorrt", lambda: trt)
    monkeypatch.setattr(trt_backend, "cuda_api", lambda prefer=None: cuda)
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"engine")
    metadata = {"deblurrt.model": "unet_tiny_prior", "deblurrt.pad_multiple": "32", "deblurrt.input": "blurry",
                "deblurrt.output": "sharp", "deblurrt.precision": "fp16"}
    shapes = [{"blurry": {"min": list(lo), "opt": list(opt), "max": list(hi)}} for lo, opt, hi in profiles]
    trt_backend.write_sidecar(engine, metadata, shapes, **(sidecar_extra or {}))
    backend = trt_backend.TensorRTBackend(engine, cuda_graph=cuda_graph)
    if hasattr(cuda, "on_launch"):
        cuda.on_launch = lambda: trt.engine.contexts[0].compute()
    return backend, trt, cuda


# ------------------------------------------------------------------------------------------------ pycuda

def fake_pycuda(memory: Memory):
    """``pycuda`` and ``pycuda.driver`` modules whose calls need a current context on the calling thread,
    as the real driver API does; ``driver.log`` records (call, thread name, context depth)."""
    package = types.ModuleType("pycuda")
    driver = types.ModuleType("pycuda.driver")
    package.driver = driver
    local = threading.local()
    driver.log = []

    def stack():
        if not hasattr(local, "stack"):
            local.stack = []
        return local.stack

    def need_context(what):
        if not stack():
            raise FakeCudaError(f"{what}: no current context on thread {threading.current_thread().name}")
        driver.log.append((what, threading.current_thread().name, len(stack())))

    class Context:
        detached = 0

        def push(self):
            stack().append(self)

        @staticmethod
        def pop():
            stack().pop()

        def detach(self):
            Context.detached += 1

    class Device:
        def __init__(self, index):
            self.index = index

        @staticmethod
        def count():
            return 1

        def retain_primary_context(self):
            return Context()

    class Allocation:
        def __init__(self, nbytes):
            self.pointer = memory.alloc(nbytes)

        def __int__(self):
            return self.pointer

        def free(self):
            need_context("mem_free")
            memory.free(self.pointer)

    class Stream:
        def __init__(self):
            need_context("Stream")
            self.handle = 9

        def synchronize(self):
            need_context("synchronize")

    class HostAllocation:
        def free(self):
            need_context("host_free")

    def pagelocked_empty(shape, dtype):
        need_context("pagelocked_empty")
        base = np.zeros(shape, dtype)
        holder = types.SimpleNamespace(array=base)
        array = base.view(type(base))
        # numpy views keep ``base``; stand in an object with free() there, as pycuda's HostAllocation
        return _HostArray(array, HostAllocation(), holder)

    def mem_alloc(nbytes):
        need_context("mem_alloc")
        return Allocation(nbytes)

    def memcpy_htod_async(device, host, stream):
        need_context("memcpy_htod_async")
        target = memory.get(int(device))
        target[: host.nbytes] = np.frombuffer(np.ascontiguousarray(host).tobytes(), np.uint8)

    def memcpy_dtoh_async(host, device, stream):
        need_context("memcpy_dtoh_async")
        source = memory.get(int(device))
        host[...] = np.frombuffer(source[: host.nbytes].tobytes(), host.dtype).reshape(host.shape)

    driver.init = lambda: None
    driver.Context = Context
    driver.Device = Device
    driver.Stream = Stream
    driver.pagelocked_empty = pagelocked_empty
    driver.mem_alloc = mem_alloc
    driver.memcpy_htod_async = memcpy_htod_async
    driver.memcpy_dtoh_async = memcpy_dtoh_async
    driver.stack = stack
    return package, driver


class _HostArray(np.ndarray):
    """An ndarray whose ``.base`` has ``free()`` (pycuda's page-locked arrays)."""

    def __new__(cls, array, allocation, holder):
        obj = np.asarray(array).view(cls)
        obj._allocation = allocation
        obj._holder = holder
        return obj

    def __array_finalize__(self, obj):
        self._allocation = getattr(obj, "_allocation", None)
        self._holder = getattr(obj, "_holder", None)

    @property
    def base(self):  # noqa: D401 - mirrors pycuda: the allocation frees the memory
        return self._allocation
