"""TensorRT backend: run a serialized engine (``model.engine`` / ``model.plan``) with pinned host buffers.

Written against the TensorRT >= 10.3 / 11.x Python API (name-based IO tensors, ``execute_async_v3``):
``trt.Runtime`` -> ``deserialize_cuda_engine`` -> ``create_execution_context``; IO tensors are found with
``num_io_tensors`` / ``get_tensor_name`` / ``get_tensor_mode`` / ``get_tensor_dtype``; per frame size the
context gets ``set_input_shape``, the output is sized from the context's resolved ``get_tensor_shape``
(never the profile maximum) and both addresses are bound with ``set_tensor_address``.

CUDA memory and streams come from cuda-python (``cuda.bindings.runtime``; every returned error code is
checked), or from pycuda where only that is installed. cuda-python's runtime API uses the device's primary
context on whichever thread calls it; pycuda works on explicit contexts, so the pycuda route retains the
primary context (the one TensorRT's runtime API uses) and makes it current around every call, on whatever
thread makes it: ``deblurrt run`` loads the engine on the main thread and infers on ``deblurrt-infer``.

Buffers are (re)allocated only when the frame size changes. With ``cuda_graph=True`` the enqueue of a fixed
shape is captured once into a CUDA graph (thread-local capture mode, as trtexec does, so that CUDA calls of
other threads of the pipeline neither break nor join the capture) and replayed, which removes per-layer
launch overhead (worth it on Jetson); a new shape re-captures. When a capture fails the backend says so,
keeps running without graphs, and :attr:`TensorRTBackend.graph_error` holds the reason.

An engine built for a DLA core records it in the sidecar (``dla_core``); the runtime sets ``DLA_core``
before deserializing, as trtexec does, so the engine runs on the core it was built for.

Metadata: an engine cannot carry deblurrt's metadata, so it sits in a JSON sidecar next to it, whose
format :mod:`deblurrt.sidecar` defines for export and runtime alike.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from deblurrt import cudaenv
from deblurrt.errors import DeblurrtError, MissingDependencyError
from deblurrt.runtime.backends.base import Backend, InputSpec, ModelInfo, ShapeRange, select_profile
from deblurrt.sidecar import read_sidecar, sidecar_path, write_sidecar  # noqa: F401  (re-exported)

log = logging.getLogger("deblurrt.runtime")

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")

HINT_TRT = ("on Jetson it comes with JetPack (sudo apt install python3-libnvinfer; create the venv with "
            "--system-site-packages); on a desktop GPU: " + cudaenv.install_hint() + ". Without TensorRT, run "
            "the .onnx with --backend ort")
HINT_CUDA = cudaenv.install_hint() + " (installs cuda-python)"


class CudaError(DeblurrtError):
    """A CUDA runtime call failed; the message names the call and the CUDA error."""


# ------------------------------------------------------------------------------------------------- sidecar

def profiles_for_input(document: Mapping[str, Any], input_name: str, *, source: str = "sidecar") -> tuple[ShapeRange, ...]:
    """The sidecar's profiles of one input as :class:`ShapeRange` s (checked: 4-D, min <= opt <= max)."""
    ranges = []
    for index, profile in enumerate(document.get("profiles", [])):
        entry = profile.get(input_name) if isinstance(profile, dict) else None
        if entry is None:
            raise DeblurrtError(f"{source}: profile {index} has no shapes for input {input_name!r}")
        try:
            lo, opt, hi = (tuple(int(v) for v in entry[key]) for key in ("min", "opt", "max"))
        except (KeyError, TypeError, ValueError) as error:
            raise DeblurrtError(f"{source}: profile {index} of {input_name!r} needs integer lists 'min', 'opt' "
                                f"and 'max', received {entry!r}") from error
        if not (len(lo) == len(opt) == len(hi) == 4) or not all(a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)):
            raise DeblurrtError(f"{source}: profile {index} of {input_name!r} must be 4-D with min <= opt <= max, "
                                f"received min {lo}, opt {opt}, max {hi}")
        ranges.append(ShapeRange(lo, opt, hi))
    return tuple(ranges)


# ---------------------------------------------------------------------------------------------------- CUDA

def _import_tensorrt():
    try:
        import tensorrt
    except ImportError as error:
        raise MissingDependencyError("tensorrt", "the TensorRT backend", HINT_TRT) from error
    return tensorrt


class _CudaPython:
    """The few CUDA runtime calls the backend needs, through cuda-python; every error code is checked.

    The runtime API works on the device's primary context from any thread, so :meth:`current` has nothing
    to do here (it exists for the pycuda route).
    """

    supports_graphs = True

    def __init__(self):
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart  # cuda-python < 12.6 layout
        self.rt = cudart

    def _call(self, what: str, result: Any) -> Any:
        error, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if int(error) != 0:
            name = self.rt.cudaGetErrorName(error)
            text = name[1].decode() if isinstance(name, tuple) and isinstance(name[1], bytes) else str(error)
            fix = "check the GPU with 'deblurrt doctor' (driver loaded, enough free memory)"
            if "InsufficientDriver" in text:
                # the usual cause: a cuda-python for a newer CUDA major than the driver runs (13.x on JetPack 6)
                fix = (f"the driver is missing or older than this cuda-python "
                       f"{cudaenv.installed_version('cuda-python', 'cuda-bindings') or '?'} needs: "
                       f"{cudaenv.install_hint()}")
            raise CudaError(f"{what} failed: {text} ({int(error)}). Fix: {fix}")
        return values[0] if len(values) == 1 else (values or None)

    @staticmethod
    def current() -> contextlib.AbstractContextManager:
        """Nothing to make current: the runtime API binds the primary context on any thread."""
        return contextlib.nullcontext()

    def release(self) -> None:
        """Nothing to release (the primary context belongs to the process)."""

    def stream_create(self) -> Any:
        return self._call("cudaStreamCreateWithFlags",
                          self.rt.cudaStreamCreateWithFlags(self.rt.cudaStreamNonBlocking))

    @staticmethod
    def stream_handle(stream: Any) -> int:
        return int(stream)

    def stream_sync(self, stream: Any) -> None:
        self._call("cudaStreamSynchronize", self.rt.cudaStreamSynchronize(stream))

    def stream_destroy(self, stream: Any) -> None:
        self._call("cudaStreamDestroy", self.rt.cudaStreamDestroy(stream))

    def host_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, Any]:
        """A page-locked numpy array (fast async copies) and the handle to free it with."""
        dtype = np.dtype(dtype)
        count = int(np.prod(shape))
        pointer = self._call("cudaMallocHost", self.rt.cudaMallocHost(max(count, 1) * dtype.itemsize))
        ctype = np.ctypeslib.as_ctypes_type(dtype) if dtype != np.float16 else ctypes.c_uint16
        array = np.ctypeslib.as_array(ctypes.cast(int(pointer), ctypes.POINTER(ctype)), (max(count, 1),))
        return array.view(dtype)[:count].reshape(shape), pointer

    def host_free(self, handle: Any) -> None:
        self._call("cudaFreeHost", self.rt.cudaFreeHost(handle))

    def device_alloc(self, nbytes: int) -> Any:
        return self._call("cudaMalloc", self.rt.cudaMalloc(max(int(nbytes), 1)))

    @staticmethod
    def device_pointer(allocation: Any) -> int:
        return int(allocation)

    def device_free(self, allocation: Any) -> None:
        self._call("cudaFree", self.rt.cudaFree(allocation))

    def htod(self, device: Any, host: np.ndarray, stream: Any) -> None:
        self._call("cudaMemcpyAsync(host->device)", self.rt.cudaMemcpyAsync(
            device, host.ctypes.data, host.nbytes, self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream))

    def dtoh(self, host: np.ndarray, device: Any, stream: Any) -> None:
        self._call("cudaMemcpyAsync(device->host)", self.rt.cudaMemcpyAsync(
            host.ctypes.data, device, host.nbytes, self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream))

    def capture_begin(self, stream: Any) -> None:
        # Thread-local mode (trtexec's choice): in global mode an unsafe CUDA call from any other thread of
        # the pipeline (a cudaMalloc in capture or pre/post code) would invalidate this capture, or fail itself.
        self._call("cudaStreamBeginCapture", self.rt.cudaStreamBeginCapture(
            stream, self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))

    def capture_end(self, stream: Any) -> Any:
        """End a capture and return an instantiated graph ``(graph, graph_exec)``."""
        graph = self._call("cudaStreamEndCapture", self.rt.cudaStreamEndCapture(stream))
        try:
            graph_exec = self._call("cudaGraphInstantiate", self.rt.cudaGraphInstantiate(graph, 0))
        except CudaError:
            self._call("cudaGraphDestroy", self.rt.cudaGraphDestroy(graph))
            raise
        return graph, graph_exec

    def clear_error(self) -> None:
        """Reset the thread's last CUDA error after a failed capture (as trtexec does), so that the next
        checked call does not report the capture's error as its own."""
        self.rt.cudaGetLastError()

    def graph_launch(self, graph_exec: Any, stream: Any) -> None:
        self._call("cudaGraphLaunch", self.rt.cudaGraphLaunch(graph_exec, stream))

    def graph_destroy(self, graphs: tuple[Any, Any]) -> None:
        graph, graph_exec = graphs
        self._call("cudaGraphExecDestroy", self.rt.cudaGraphExecDestroy(graph_exec))
        self._call("cudaGraphDestroy", self.rt.cudaGraphDestroy(graph))


class _PyCuda:
    """The same calls through pycuda (raises its own exceptions); no CUDA graphs.

    pycuda's driver API needs a current context on the calling thread, and ``pycuda.autoinit`` makes one
    current on the importing thread only (and a context of its own, not the primary one TensorRT uses). So
    the device's primary context is retained here and pushed around every call (:meth:`current`), on any
    thread; nested calls on one thread push once.
    """

    supports_graphs = False

    def __init__(self, device: int = 0):
        import pycuda.driver as driver

        driver.init()
        count = int(driver.Device.count())
        if not 0 <= device < count:
            raise CudaError(f"pycuda sees {count} CUDA device(s); device {device} does not exist. Fix: check the "
                            "GPU with 'deblurrt doctor'")
        self.driver = driver
        self.context = driver.Device(device).retain_primary_context()
        self._local = threading.local()

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        """Make the retained primary context current on this thread for the duration of the block."""
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self.context.push()
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                self.driver.Context.pop()

    def release(self) -> None:
        """Drop this backend's reference to the primary context (after every buffer is freed)."""
        self.context.detach()

    def stream_create(self) -> Any:
        return self.driver.Stream()

    @staticmethod
    def stream_handle(stream: Any) -> int:
        return int(stream.handle)

    def stream_sync(self, stream: Any) -> None:
        stream.synchronize()

    def stream_destroy(self, stream: Any) -> None:
        """pycuda frees streams when they are garbage-collected."""

    def host_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, Any]:
        array = self.driver.pagelocked_empty(shape, dtype)
        return array, array

    def host_free(self, handle: Any) -> None:
        handle.base.free()

    def device_alloc(self, nbytes: int) -> Any:
        return self.driver.mem_alloc(max(int(nbytes), 1))

    @staticmethod
    def device_pointer(allocation: Any) -> int:
        return int(allocation)

    def device_free(self, allocation: Any) -> None:
        allocation.free()

    def htod(self, device: Any, host: np.ndarray, stream: Any) -> None:
        self.driver.memcpy_htod_async(device, host, stream)

    def dtoh(self, host: np.ndarray, device: Any, stream: Any) -> None:
        self.driver.memcpy_dtoh_async(host, device, stream)


def cuda_api(prefer: str | None = None):
    """cuda-python (default) or pycuda (``prefer="pycuda"`` or when only it is installed)."""
    order = ("pycuda", "cuda-python") if prefer == "pycuda" else ("cuda-python", "pycuda")
    reasons = []
    for name in order:
        try:
            return _CudaPython() if name == "cuda-python" else _PyCuda()
        except ImportError as error:
            reasons.append(f"{name}: {error}")
        except (OSError, RuntimeError) as error:
            # installed but unusable (cuda-python 12.x without libcuda.so.1, pycuda's cuInit failing): say so
            # rather than calling it missing
            reasons.append(f"{name}: installed but {type(error).__name__}: {error}")
    raise MissingDependencyError("cuda-python", "the TensorRT backend (CUDA memory and streams)",
                                 f"{HINT_CUDA}; pycuda also works where it is installed ({'; '.join(reasons)})")


def gpu_ready() -> tuple[bool, str]:
    """Whether TensorRT imports and cuda-python sees a CUDA device here, and why not; never raises.

    Safe at test collection time: cuda-python 12.x raises ``RuntimeError: Failed to dlopen libcuda.so.1``
    on a machine without a driver instead of returning an error code.
    """
    try:
        import tensorrt  # noqa: F401
    except (ImportError, OSError, RuntimeError) as error:
        return False, f"TensorRT does not import: {type(error).__name__}: {error}"
    try:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart  # cuda-python < 12.6 layout
        error_code, count = cudart.cudaGetDeviceCount()
    except (ImportError, OSError, RuntimeError) as error:
        return False, f"cuda-python is unusable: {type(error).__name__}: {error}"
    if int(error_code) != 0:
        return False, f"cuda-python sees no CUDA device ({getattr(error_code, 'name', error_code)})"
    if not count:
        return False, "cuda-python sees no CUDA device"
    return True, ""


class _Buffer:
    """A pinned host array and a device allocation of the same shape and dtype."""

    def __init__(self, cuda: Any, shape: tuple[int, ...], dtype: np.dtype):
        self.cuda, self.shape, self.dtype = cuda, tuple(int(s) for s in shape), np.dtype(dtype)
        self.host, self._host_handle = cuda.host_empty(self.shape, self.dtype)
        try:
            self.device = cuda.device_alloc(self.host.nbytes)
        except Exception:
            cuda.host_free(self._host_handle)
            raise

    @property
    def pointer(self) -> int:
        return self.cuda.device_pointer(self.device)

    def free(self) -> None:
        self.cuda.device_free(self.device)
        self.cuda.host_free(self._host_handle)


# ------------------------------------------------------------------------------------------------- backend

class TensorRTBackend(Backend):
    """Run a TensorRT engine (built by TensorRT >= 10.3 on this GPU) with deblurrt's sidecar metadata.

    Args:
        path: ``model.engine`` / ``model.plan`` (with ``model.engine.json`` next to it).
        cuda_graph: capture the enqueue of each frame size into a CUDA graph and replay it.
        cuda: ``"cuda-python"`` (default) or ``"pycuda"``.
        pad_multiple: used only when the sidecar is missing (then profiles come from the engine alone).

    After a failed capture :attr:`cuda_graph` is False and :attr:`graph_error` says why; :attr:`graph_active`
    tells whether the prepared shape replays a graph.
    """

    name = "tensorrt"

    def __init__(self, path: str | Path, *, cuda_graph: bool = False, cuda: str | None = None,
                 pad_multiple: int | None = None):
        super().__init__(path)
        self._buffers: list[_Buffer] = []
        self._graph: Any = None
        self.stream: Any = None
        self.context: Any = None
        self.engine: Any = None
        self._runtime: Any = None
        self.graph_error: str | None = None
        self.input_buffer: _Buffer | None = None
        self.output_buffer: _Buffer | None = None
        trt = _import_tensorrt()
        if not self.path.is_file():
            raise DeblurrtError(f"engine file {self.path} does not exist. Fix: build it from the .onnx first")
        document: dict[str, Any] = {"metadata": {}, "profiles": []}
        if pad_multiple is None or sidecar_path(self.path).is_file():
            document = read_sidecar(self.path)
        self.cuda = cuda_api(cuda)
        self.trt = trt
        try:
            with self.cuda.current():
                self._load(trt, document, pad_multiple)
        except BaseException:
            # nothing to close but the CUDA handle: keep the finaliser from closing a half-built backend
            self._closed = True
            self.cuda.release()
            raise
        self.cuda_graph = bool(cuda_graph) and self.cuda.supports_graphs
        if cuda_graph and not self.cuda.supports_graphs:
            self.graph_error = "CUDA graphs need cuda-python (the pycuda route has none)"
            log.warning("%s; running without them", self.graph_error)

    def _load(self, trt: Any, document: dict[str, Any], pad_multiple: int | None) -> None:
        """Runtime, engine, IO tensors, profiles, context and stream (the calling thread's context is current)."""
        self._logger = trt.Logger(trt.Logger.WARNING)
        try:
            # trt.Runtime raises (pybind11: TypeError for a null factory result) rather than returning None
            self._runtime = trt.Runtime(self._logger)
        except (RuntimeError, TypeError) as error:
            raise DeblurrtError(f"TensorRT could not create a runtime ({type(error).__name__}: {error}): no "
                                "usable NVIDIA GPU or driver. Fix: check 'deblurrt doctor'") from error
        dla_core = document.get("dla_core")
        if dla_core is not None:
            # Set before deserializing (trtexec does the same): a DLA engine loads onto the runtime's core.
            try:
                self._runtime.DLA_core = int(dla_core)
            except (TypeError, ValueError, RuntimeError) as error:
                raise DeblurrtError(f"{sidecar_path(self.path)} says dla_core {dla_core!r}, which this TensorRT "
                                    f"runtime refuses ({error}). Fix: run the engine on the Jetson it was built "
                                    "for, or rebuild it without --dla") from error
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise DeblurrtError(
                f"TensorRT {trt.__version__} could not deserialize {self.path}. Engines only load on the "
                "TensorRT version and GPU model that built them. Fix: rebuild the engine on this machine")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or not outputs:
            raise DeblurrtError(f"{self.path} has inputs {inputs} and outputs {outputs}; a deblurring engine "
                                "has one input and one output")
        self.info = ModelInfo.from_metadata(document["metadata"], source=str(sidecar_path(self.path)),
                                            input_name=inputs[0], output_name=outputs[0],
                                            default_pad_multiple=pad_multiple)
        self._input_name = self.info.input_name if self.info.input_name in inputs else inputs[0]
        self._output_name = self.info.output_name if self.info.output_name in outputs else outputs[0]
        profiles = []
        for index in range(self.engine.num_optimization_profiles):
            lo, opt, hi = self.engine.get_tensor_profile_shape(self._input_name, index)
            profiles.append(ShapeRange(tuple(lo), tuple(opt), tuple(hi)))
        if not profiles:
            profiles = list(profiles_for_input(document, self._input_name, source=str(sidecar_path(self.path))))
        engine_shape = tuple(self.engine.get_tensor_shape(self._input_name))
        self.input_spec = InputSpec(
            name=self._input_name, dtype=np.dtype(trt.nptype(self.engine.get_tensor_dtype(self._input_name))),
            shape=tuple(None if d < 0 else int(d) for d in engine_shape), profiles=tuple(profiles))
        self._output_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self._output_name)))
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise DeblurrtError(f"TensorRT could not create an execution context for {self.path} (GPU memory?)")
        self.stream = self.cuda.stream_create()
        # A new context starts on profile 0.
        self._profile: int | None = 0
        self._shape: tuple[int, ...] | None = None
        self._runs_at_shape = 0

    def describe(self) -> str:
        """One line: engine, TensorRT version, profiles, CUDA graphs."""
        ranges = "; ".join(p.describe() for p in self.input_spec.profiles)
        graph = "on" if self.cuda_graph else (f"off ({self.graph_error})" if self.graph_error else "off")
        return super().describe() + f" [TensorRT {self.trt.__version__}; profiles {ranges}; CUDA graph {graph}]"

    @property
    def graph_active(self) -> bool:
        """True when the prepared shape replays a captured CUDA graph."""
        return self._graph is not None

    def _release_graph(self) -> None:
        if self._graph is not None:
            graph, self._graph = self._graph, None
            self.cuda.graph_destroy(graph)

    def _release_buffers(self) -> None:
        self._release_graph()
        buffers, self._buffers = self._buffers, []
        self.input_buffer = self.output_buffer = None
        for buffer in buffers:
            buffer.free()

    def prepare(self, shape: tuple[int, ...]) -> None:
        """Select the profile, set the input shape and (re)allocate buffers: only when the size changes.

        The old buffers are freed first, so the prepared shape is forgotten right away: if anything below
        fails (profile switch, shape, allocation), the next frame prepares again instead of writing into
        freed pinned memory.
        """
        profile = select_profile(shape, self.input_spec.profiles, source=str(self.path))
        with self.cuda.current():
            handle = self.cuda.stream_handle(self.stream)
            self._shape = None
            self._runs_at_shape = 0
            self._release_buffers()
            if profile != self._profile:
                self._profile = None  # unknown until the switch succeeds
                ranges = self.input_spec.profiles[profile].describe() if self.input_spec.profiles else "?"
                try:
                    # The binding raises RuntimeError when TensorRT refuses (it never returns False).
                    self.context.set_optimization_profile_async(profile, handle)
                except RuntimeError as error:
                    raise DeblurrtError(f"TensorRT refused optimization profile {profile} ({ranges}) of "
                                        f"{self.path}: {error}") from error
                self._profile = profile
            if not self.context.set_input_shape(self._input_name, shape):
                raise DeblurrtError(f"TensorRT refused input shape {shape} for {self.path} (profile {profile}: "
                                    f"{self.input_spec.profiles[profile].describe() if self.input_spec.profiles else '?'})")
            out_shape = tuple(int(d) for d in self.context.get_tensor_shape(self._output_name))
            if any(d < 0 for d in out_shape):
                raise DeblurrtError(f"TensorRT could not resolve the output shape of {self.path} for input {shape}")
            input_buffer = _Buffer(self.cuda, shape, self.input_dtype)
            self._buffers.append(input_buffer)
            output_buffer = _Buffer(self.cuda, out_shape, self._output_dtype)
            self._buffers.append(output_buffer)
            for name, buffer in ((self._input_name, input_buffer), (self._output_name, output_buffer)):
                if not self.context.set_tensor_address(name, buffer.pointer):
                    raise DeblurrtError(f"TensorRT refused the device address of tensor {name!r}")
            self.input_buffer, self.output_buffer = input_buffer, output_buffer
            self._shape = tuple(shape)

    def execute(self) -> None:
        """Enqueue the engine on ``stream`` for the prepared shape (replaying the CUDA graph when enabled); the
        caller synchronises. Public so that benchmarks can time device-resident execution alone.

        With CUDA graphs, the first run at a shape also captures the graph (after a synchronisation), so a
        benchmark keeps that first call out of its timed steps.
        """
        if self._shape is None:
            raise DeblurrtError(f"{self.path}: execute() before a successful prepare(). Fix: call prepare(shape)")
        with self.cuda.current():
            if self._graph is not None:
                self.cuda.graph_launch(self._graph[1], self.stream)
                return
            handle = self.cuda.stream_handle(self.stream)
            if not self.context.execute_async_v3(handle):
                raise DeblurrtError(f"TensorRT execute_async_v3 failed for {self.path} (see the TensorRT log above)")
            self._runs_at_shape += 1
            # the first run at a shape lets TensorRT finish lazy setup; capture afterwards (NVIDIA's recipe)
            if self.cuda_graph and self._runs_at_shape == 1:
                self._capture(handle)

    def _capture(self, handle: int) -> None:
        """Capture one enqueue into a CUDA graph; on failure keep running without graphs and record why.

        The frame's result comes from the plain run before: work recorded during a capture is not executed.
        """
        self.cuda.stream_sync(self.stream)
        try:
            self.cuda.capture_begin(self.stream)
        except CudaError as error:
            self._graph_failed(str(error))
            return
        reason = None
        enqueued = False
        graph = None
        try:
            enqueued = bool(self.context.execute_async_v3(handle))
        except RuntimeError as error:
            reason = f"execute_async_v3 raised during capture: {error}"
        finally:
            # always end the capture: a stream left capturing fails every later call on it
            try:
                graph = self.cuda.capture_end(self.stream)
            except CudaError as error:
                reason = reason or str(error)
        if graph is not None and (reason or not enqueued):
            self.cuda.graph_destroy(graph)
            graph = None
            reason = reason or "execute_async_v3 returned False during capture"
        if graph is None:
            self._graph_failed(reason or "no graph was captured")
            return
        self._graph = graph

    def _graph_failed(self, reason: str) -> None:
        self.cuda.clear_error()
        self.cuda_graph = False
        self.graph_error = f"CUDA graph capture failed: {reason}"
        log.warning("%s; running without CUDA graphs", self.graph_error)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        shape = tuple(int(s) for s in batch.shape)
        with self.cuda.current():
            if shape != self._shape:
                self.prepare(shape)
            np.copyto(self.input_buffer.host, batch, casting="same_kind")
            self.cuda.htod(self.input_buffer.device, self.input_buffer.host, self.stream)
            self.execute()
            self.cuda.dtoh(self.output_buffer.host, self.output_buffer.device, self.stream)
            self.cuda.stream_sync(self.stream)
            return self.output_buffer.host.copy()  # the pinned buffer is reused by the next frame

    def _close(self) -> None:
        try:
            with self.cuda.current():
                try:
                    if self.stream is not None:
                        self.cuda.stream_sync(self.stream)
                    self._release_buffers()
                    if self.stream is not None:
                        self.cuda.stream_destroy(self.stream)
                finally:
                    self.stream = None
                    self._shape = None
                    # the context must go before the engine, and the engine before the runtime
                    self.context = None
                    self.engine = None
                    self._runtime = None
        finally:
            self.cuda.release()
