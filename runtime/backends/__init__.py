"""Inference backends behind one interface (:class:`Backend`): ONNX Runtime, TensorRT, PyTorch.

:func:`open_backend` picks the backend from the model file's suffix (``.engine``/``.plan`` -> TensorRT,
``.onnx`` -> ONNX Runtime, ``.safetensors`` -> PyTorch) unless one is forced. Each backend's library is
imported only when that backend is opened, so this package imports with numpy alone.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from deblurrt.errors import DeblurrtError
from deblurrt.runtime.backends.base import (
    Backend,
    InputShapeError,
    InputSpec,
    ModelInfo,
    ModelMismatchError,
    ShapeRange,
    format_shape,
    select_profile,
)

__all__ = ["BACKENDS", "Backend", "InputShapeError", "InputSpec", "ModelInfo", "ModelMismatchError",
           "ShapeRange", "backend_for_path", "format_shape", "normalize_backend", "open_backend",
           "select_profile"]

# canonical name -> (module, class, suffixes it runs)
BACKENDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "onnxruntime": ("deblurrt.runtime.backends.onnxruntime", "OnnxRuntimeBackend", (".onnx",)),
    "tensorrt": ("deblurrt.runtime.backends.tensorrt", "TensorRTBackend", (".engine", ".plan", ".trt")),
    "torch": ("deblurrt.runtime.backends.torch", "TorchBackend", (".safetensors",)),
}
_ALIASES = {"ort": "onnxruntime", "onnxruntime": "onnxruntime", "onnx": "onnxruntime",
            "trt": "tensorrt", "tensorrt": "tensorrt",
            "torch": "torch", "pytorch": "torch", "pt": "torch"}


def normalize_backend(name: str) -> str:
    """``ort``/``trt``/``torch`` (or the long names) -> the canonical backend name."""
    try:
        return _ALIASES[name.strip().lower()]
    except KeyError:
        raise DeblurrtError(f"unknown backend {name!r}. Fix: use ort (ONNX Runtime), trt (TensorRT) or torch") from None


def backend_for_path(path: str | Path) -> str:
    """The backend that runs a model file, from its suffix."""
    if Path(path).is_dir():
        inside = sorted(p.name for p in Path(path).iterdir()
                        if p.suffix.lower() in {s for _, _, suffixes in BACKENDS.values() for s in suffixes})
        hint = f" (it holds {', '.join(inside[:3])})" if inside else ""
        raise ModelMismatchError(f"the model {path} is a directory, not a model file{hint}. Fix: give the model "
                                 "file itself: .onnx (ONNX Runtime), .engine/.plan (TensorRT) or .safetensors "
                                 "(PyTorch)")
    suffix = Path(path).suffix.lower()
    for name, (_, _, suffixes) in BACKENDS.items():
        if suffix in suffixes:
            return name
    raise ModelMismatchError(f"cannot tell the model format of {path} from its suffix {suffix!r}. Fix: use "
                             ".onnx (ONNX Runtime), .engine/.plan (TensorRT) or .safetensors (PyTorch)")


_MISMATCH_FIX = {
    ("tensorrt", "onnxruntime"): "build an engine on this GPU first with 'deblurrt export CHECKPOINT --format "
                                 "engine' (it writes the engine and the .engine.json sidecar the runtime reads), "
                                 "or run the .onnx with --backend ort (add --providers trt to use ONNX Runtime's "
                                 "TensorRT execution provider)",
    ("torch", "onnxruntime"): "run the .onnx with --backend ort, or give the .safetensors checkpoint it was "
                              "exported from",
    ("onnxruntime", "tensorrt"): "a TensorRT engine runs only with --backend trt; give the .onnx it was built "
                                 "from to use ONNX Runtime",
    ("torch", "tensorrt"): "a TensorRT engine runs only with --backend trt",
    ("onnxruntime", "torch"): "export the checkpoint to ONNX first (deblurrt.export.onnx_export.export_onnx), or "
                              "use --backend torch",
    ("tensorrt", "torch"): "export the checkpoint to ONNX and build an engine first, or use --backend torch",
}


def open_backend(path: str | Path, backend: str | None = None, **options: Any) -> Backend:
    """Open ``path`` with the backend its suffix implies, or with ``backend`` (``ort``, ``trt``, ``torch``).

    ``options`` go to the backend's constructor (e.g. ``providers``, ``threads`` for ONNX Runtime;
    ``cuda_graph`` for TensorRT; ``device`` for torch); options a backend does not take are ignored when
    they are None, and rejected otherwise.
    A file the forced backend cannot run raises :class:`ModelMismatchError` saying what to do instead.
    """
    path = Path(path)
    implied = backend_for_path(path)
    chosen = normalize_backend(backend) if backend else implied
    if chosen != implied:
        fix = _MISMATCH_FIX.get((chosen, implied), f"use --backend {implied}").format(p=path)
        raise ModelMismatchError(f"the {chosen} backend cannot run {path} (a {implied} model). Fix: {fix}")
    module_name, class_name, _ = BACKENDS[chosen]
    cls = getattr(importlib.import_module(module_name), class_name)
    accepted = set(inspect.signature(cls.__init__).parameters)
    unknown = sorted(k for k, v in options.items() if k not in accepted and v is not None)
    if unknown:
        raise DeblurrtError(f"the {chosen} backend has no option(s) {', '.join(unknown)}; it takes "
                            f"{', '.join(sorted(accepted - {'self', 'path'}))}")
    return cls(path, **{k: v for k, v in options.items() if k in accepted})
