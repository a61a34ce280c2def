"""ONNX Runtime backend: CPU, CUDA or TensorRT execution provider, from a deblurrt ``.onnx`` file.

Providers are asked for by short name (``trt``, ``cuda``, ``cpu``); one that this onnxruntime build lacks is
skipped with a logged warning and the next one is tried, and the CPU provider always closes the list, so a
GPU configuration still runs (slowly) on a CPU-only machine. The model's metadata comes from
``session.get_modelmeta().custom_metadata_map``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deblurrt.errors import DeblurrtError, MissingDependencyError
from deblurrt.runtime.backends.base import Backend, InputSpec, ModelInfo

log = logging.getLogger("deblurrt.runtime")

PROVIDER_ALIASES: dict[str, str] = {
    "trt": "TensorrtExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
# ONNX tensor type strings -> numpy
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def _import_ort():
    try:
        import onnxruntime
    except ImportError as error:
        raise MissingDependencyError("onnxruntime", "the ONNX Runtime backend",
                                     "pip install 'deblurrt[ort]' (or onnxruntime-gpu on NVIDIA GPUs)") from error
    return onnxruntime


def resolve_providers(requested: str | Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """The provider list to give ONNX Runtime: requested ones that exist, in order, then CPU.

    ``requested`` is None (auto: CUDA when available, then CPU), a comma-separated string or a list of short
    (``trt``, ``cuda``, ``cpu``) or full provider names. Unavailable providers are dropped with a warning.
    Unknown names raise :class:`DeblurrtError`.
    """
    if requested is None:
        wanted = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
    else:
        items = requested.split(",") if isinstance(requested, str) else list(requested)
        wanted = []
        for item in (i.strip() for i in items if i.strip()):
            full = PROVIDER_ALIASES.get(item.lower(), item)
            if not full.endswith("ExecutionProvider"):
                raise DeblurrtError(f"unknown ONNX Runtime provider {item!r}. Fix: use trt, cuda or cpu "
                                    f"(or a full name; this build has {', '.join(available)})")
            wanted.append(full)
    chosen: list[str] = []
    for name in wanted:
        if name in available:
            if name not in chosen:
                chosen.append(name)
        else:
            log.warning("ONNX Runtime provider %s is not available in this onnxruntime build (it has %s); "
                        "falling back to the next one. Install onnxruntime-gpu for CUDA/TensorRT.",
                        name, ", ".join(available))
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class OnnxRuntimeBackend(Backend):
    """Run a deblurrt ONNX model with ONNX Runtime.

    Args:
        path: the ``.onnx`` file.
        providers: see :func:`resolve_providers` (``"cpu"``, ``"cuda"``, ``"trt,cuda"``, a list, or None).
        threads: intra-op threads (None: ONNX Runtime's default, one per core).
        io_binding: run through an IO binding (None: only when CUDA/TensorRT is the first provider, where it
            avoids re-allocating device outputs every frame).
        trt_cache_dir: engine/timing cache folder of the TensorRT provider (default: ``<model>.ort-trt-cache``
            next to the model; building engines takes minutes, the cache makes later starts fast).
        pad_multiple: used only for ONNX files without deblurrt metadata.
    """

    name = "onnxruntime"

    def __init__(self, path: str | Path, *, providers: str | Sequence[str] | None = None,
                 threads: int | None = None, io_binding: bool | None = None,
                 trt_cache_dir: str | Path | None = None, pad_multiple: int | None = None,
                 memory_arena: bool = True):
        super().__init__(path)
        ort = _import_ort()
        if not self.path.is_file():
            raise DeblurrtError(f"model file {self.path} does not exist. Fix: give the path of an exported .onnx")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the provider fallback is logged by us, once
        if not memory_arena:
            # Free activations after every run instead of keeping a per-session arena: many sessions open at
            # once (a benchmark of the zoo at 720p) would otherwise hold tens of GB.
            options.enable_cpu_mem_arena = False
            options.enable_mem_pattern = False
        chosen = resolve_providers(providers, ort.get_available_providers())
        provider_args: list[Any] = []
        for name in chosen:
            if name == "TensorrtExecutionProvider":
                cache = Path(trt_cache_dir) if trt_cache_dir else self.path.with_name(self.path.name + ".ort-trt-cache")
                cache.mkdir(parents=True, exist_ok=True)
                provider_args.append((name, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                                             "trt_timing_cache_enable": True,
                                             "trt_timing_cache_path": str(cache)}))
            else:
                provider_args.append(name)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=provider_args)
        except Exception as error:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            raise DeblurrtError(f"ONNX Runtime cannot load {self.path}: {error}. Fix: check that it is an ONNX "
                                "model exported by deblurrt (python -c \"import onnx; onnx.checker.check_model("
                                f"'{self.path}')\")") from error
        self.providers = self.session.get_providers()
        if chosen[0] != self.providers[0]:
            log.warning("ONNX Runtime could not start %s; running on %s", chosen[0], self.providers[0])
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            raise DeblurrtError(f"{self.path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                                "a deblurring model takes one image batch")
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info = ModelInfo.from_metadata(meta, source=str(self.path), input_name=inputs[0].name,
                                            output_name=outputs[0].name, default_pad_multiple=pad_multiple)
        by_name = {o.name: o for o in outputs}
        self._output_name = self.info.output_name if self.info.output_name in by_name else outputs[0].name
        model_input = inputs[0]
        if model_input.type not in _ORT_TYPES:
            raise DeblurrtError(f"{self.path}: input {model_input.name} is {model_input.type}; the runtime "
                                "feeds float32 or float16 images")
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in model_input.shape)
        if len(shape) != 4:
            raise DeblurrtError(f"{self.path}: input {model_input.name} has shape {model_input.shape}; "
                                "expected NCHW (4 dimensions)")
        self.input_spec = InputSpec(name=model_input.name, dtype=np.dtype(_ORT_TYPES[model_input.type]),
                                    shape=shape)
        on_gpu = self.providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        self.io_binding = on_gpu if io_binding is None else bool(io_binding)
        self._device = "cuda" if on_gpu else "cpu"
        self.threads = threads or os.cpu_count()

    def describe(self) -> str:
        """One line: providers, threads, model."""
        return super().describe() + f" [providers {', '.join(self.providers)}; threads {self.threads}]"

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        # FP16-input models: cast here so callers may always hand over float32
        feed = np.ascontiguousarray(batch, dtype=self.input_dtype)
        if not self.io_binding:
            return self.session.run([self._output_name], {self.input_spec.name: feed})[0]
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_spec.name, feed)
        # the output lives on the provider's device; ONNX Runtime allocates it once per shape
        binding.bind_output(self._output_name, self._device)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def _close(self) -> None:
        self.session = None
