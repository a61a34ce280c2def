"""The backend interface: load a model, describe it, check and run a batch, release it.

Every backend (ONNX Runtime, TensorRT, PyTorch) subclasses :class:`Backend` and implements ``_infer``; the
base class owns the input checks so that a wrong frame fails the same way, with the same message, whatever
runs the model. Errors say what was expected and what was received.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deblurrt.errors import DeblurrtError

log = logging.getLogger("deblurrt.runtime")

# Metadata keys written by deblurrt.export.onnx_export.export_metadata (and copied into engine sidecars).
KEY_MODEL = "deblurrt.model"
KEY_CONFIG = "deblurrt.config"
KEY_PAD = "deblurrt.pad_multiple"
KEY_INPUT = "deblurrt.input"
KEY_OUTPUT = "deblurrt.output"
KEY_LAYOUT = "deblurrt.layout"
KEY_COLOR = "deblurrt.color"
KEY_RANGE = "deblurrt.value_range"
KEY_PRECISION = "deblurrt.precision"


class InputShapeError(DeblurrtError):
    """A batch given to :meth:`Backend.infer` does not fit the model (layout, channels, dtype or size)."""


class ModelMismatchError(DeblurrtError):
    """The model file cannot be run by the requested backend (e.g. an ONNX file given to TensorRT)."""


@dataclass(frozen=True)
class ShapeRange:
    """One optimization-profile range of an input, NCHW: every dimension of a valid shape lies in [min, max]."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def contains(self, shape: Sequence[int]) -> bool:
        """True when every dimension of ``shape`` is within [min, max]."""
        return len(shape) == len(self.min) and all(
            lo <= s <= hi for s, lo, hi in zip(shape, self.min, self.max, strict=True))

    def describe(self) -> str:
        """``batch 1-4, height 64-720, width 64-1280`` (NCHW ranges in words)."""
        names = ("batch", "channels", "height", "width")
        parts = [f"{n} {lo}" + (f"-{hi}" if hi != lo else "")
                 for n, lo, hi in zip(names, self.min, self.max, strict=False) if n != "channels"]
        return ", ".join(parts)


@dataclass(frozen=True)
class InputSpec:
    """What the model's input accepts.

    Attributes:
        name: the input tensor's name.
        dtype: the element type the model computes with (float32 or float16).
        shape: NCHW with ``None`` for a dynamic dimension.
        profiles: TensorRT optimization profiles (empty: any size that is a multiple of the pad multiple).
    """

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]
    profiles: tuple[ShapeRange, ...] = ()

    def max_hw(self) -> tuple[int, int] | None:
        """The largest (H, W) any profile accepts, or None when the size is not bounded."""
        if self.profiles:
            return max((p.max[2], p.max[3]) for p in self.profiles)
        if self.shape[2] is not None and self.shape[3] is not None:
            return int(self.shape[2]), int(self.shape[3])
        return None

    def min_hw(self) -> tuple[int, int] | None:
        """The smallest (H, W) some profile accepts, or None when unbounded below."""
        if self.profiles:
            return min((p.min[2], p.min[3]) for p in self.profiles)
        if self.shape[2] is not None and self.shape[3] is not None:
            return int(self.shape[2]), int(self.shape[3])
        return None


@dataclass(frozen=True)
class ModelInfo:
    """A model's description, parsed from the metadata deblurrt writes into every exported artefact.

    Attributes:
        name: the zoo name (``unet_nano_prior``) or ``"unknown"`` for a model without deblurrt metadata.
        pad_multiple: H and W of the input must be multiples of this.
        input_name, output_name: tensor names (``blurry`` / ``sharp`` for deblurrt exports).
        precision: ``fp32``, ``fp16``, ``int8`` (what the export recorded).
        value_range: the pixel range the model expects and produces, ``(0.0, 1.0)`` for deblurrt models.
        layout, color: ``NCHW`` and ``RGB`` for every deblurrt model.
        config: the model's config (name + arguments) as a dict.
        metadata: every raw metadata entry.
    """

    name: str
    pad_multiple: int
    input_name: str
    output_name: str
    precision: str = "fp32"
    value_range: tuple[float, float] = (0.0, 1.0)
    layout: str = "NCHW"
    color: str = "RGB"
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def precision_label(self) -> str:
        """``precision``, or ``int8+fp16`` for an INT8 model whose float layers are FP16."""
        if self.precision == "int8" and self.metadata.get("deblurrt.int8.float_dtype") == "fp16":
            return "int8+fp16"
        return self.precision

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], *, source: str, input_name: str | None = None,
                      output_name: str | None = None, default_pad_multiple: int | None = None) -> ModelInfo:
        """Parse deblurrt metadata (ONNX ``metadata_props`` or an engine sidecar's ``metadata``).

        ``input_name``/``output_name`` (from the graph) fill in names the metadata lacks. A model without
        ``deblurrt.pad_multiple`` is accepted only when ``default_pad_multiple`` is given.
        """
        meta = {str(k): str(v) for k, v in metadata.items()}
        pad_text = meta.get(KEY_PAD)
        if pad_text is None:
            if default_pad_multiple is None:
                raise DeblurrtError(
                    f"{source} carries no '{KEY_PAD}' metadata, so the runtime does not know which frame sizes "
                    "the model accepts. Fix: export it with 'deblurrt export CHECKPOINT' (which writes the "
                    "metadata); for a model made elsewhere, add the entry yourself: "
                    f"onnx.helper.set_model_props(model, {{'{KEY_PAD}': 'N'}}) with N the number both frame "
                    "sides must be a multiple of (e.g. 8 or 32), then onnx.save")
            pad_text = str(default_pad_multiple)
        try:
            pad = int(pad_text)
            if pad < 1:
                raise ValueError(pad_text)
        except ValueError as error:
            raise DeblurrtError(f"{source}: metadata '{KEY_PAD}' must be a positive integer, "
                                f"received {pad_text!r}") from error
        try:
            lo, hi = (float(v) for v in meta.get(KEY_RANGE, "0,1").split(","))
        except ValueError as error:
            raise DeblurrtError(f"{source}: metadata '{KEY_RANGE}' must be 'LO,HI', "
                                f"received {meta.get(KEY_RANGE)!r}") from error
        layout, color = meta.get(KEY_LAYOUT, "NCHW"), meta.get(KEY_COLOR, "RGB")
        if layout != "NCHW" or color not in ("RGB", "BGR"):
            raise DeblurrtError(f"{source}: the runtime handles NCHW RGB/BGR models, this one declares "
                                f"layout {layout!r}, color {color!r}")
        try:
            config = json.loads(meta[KEY_CONFIG]) if KEY_CONFIG in meta else {}
        except json.JSONDecodeError:
            config = {}
        return cls(name=meta.get(KEY_MODEL, "unknown"), pad_multiple=pad,
                   input_name=meta.get(KEY_INPUT) or input_name or "blurry",
                   output_name=meta.get(KEY_OUTPUT) or output_name or "sharp",
                   precision=meta.get(KEY_PRECISION, "fp32"), value_range=(lo, hi), layout=layout,
                   color=color, config=config, metadata=meta)


def select_profile(shape: Sequence[int], profiles: Sequence[ShapeRange], *, source: str = "the engine") -> int:
    """Index of the first optimization profile that accepts ``shape`` (NCHW).

    Raises :class:`InputShapeError` naming the received shape and every profile's ranges, with the fixes.
    No profiles means the size is unconstrained (returns 0).
    """
    if not profiles:
        return 0
    for index, profile in enumerate(profiles):
        if profile.contains(shape):
            return index
    accepted = "; ".join(f"profile {i}: {p.describe()}" for i, p in enumerate(profiles))
    raise InputShapeError(
        f"input {format_shape(shape)} (NCHW) is outside every optimization profile of {source} "
        f"(expected {accepted}). Fix: lower the resolution (--camera-size WxH), run in tiles (--tile WxH), or "
        "rebuild the engine with a larger maximum shape")


def format_shape(shape: Sequence[Any]) -> str:
    """``1x3x360x640`` (``?`` for a dynamic dimension)."""
    return "x".join("?" if s is None else str(s) for s in shape)


class Backend:
    """A loaded model that maps an NCHW batch to an NCHW batch, like Polygraphy's runners.

    Use as a context manager (``with open_backend(path) as backend: y = backend.infer(x)``). Subclasses set
    :attr:`info` and :attr:`input_spec` while loading and implement :meth:`_infer` (and :meth:`_close`).
    """

    #: the backend's short name (``onnxruntime``, ``tensorrt``, ``torch``)
    name: ClassVar[str] = "base"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.info: ModelInfo
        self.input_spec: InputSpec
        self._closed = False

    # ------------------------------------------------------------------------------------------ public
    @property
    def input_dtype(self) -> np.dtype:
        """The element type to feed (float16 for FP16-input models); float32 is always accepted too."""
        return np.dtype(self.input_spec.dtype)

    def describe(self) -> str:
        """One line: backend, model name, precision, pad multiple, file."""
        return (f"{self.name}: {self.info.name} ({self.info.precision}, input {self.input_spec.name} "
                f"{format_shape(self.input_spec.shape)} {self.input_dtype}, multiple of "
                f"{self.info.pad_multiple}) from {self.path}")

    def check_input(self, batch: Any) -> None:
        """Raise :class:`InputShapeError` unless ``batch`` is an NCHW, 3-channel float array of a valid size."""
        if not isinstance(batch, np.ndarray):
            raise InputShapeError(f"{self.name} input must be a numpy array, received {type(batch).__name__}")
        expected_dtypes = {np.dtype(np.float32), self.input_dtype}
        if batch.ndim != 4:
            raise InputShapeError(f"{self.name} input must be 4-D NCHW (batch, 3, height, width), received "
                                  f"{batch.ndim}-D shape {format_shape(batch.shape)}")
        if batch.shape[1] != 3:
            hint = " (it looks like NHWC: transpose with x.transpose(0, 3, 1, 2))" if batch.shape[3] == 3 else ""
            raise InputShapeError(f"{self.name} input must have 3 channels in dimension 1 (NCHW), received "
                                  f"shape {format_shape(batch.shape)}{hint}")
        if batch.dtype not in expected_dtypes:
            names = " or ".join(sorted(str(d) for d in expected_dtypes))
            raise InputShapeError(f"{self.name} input must be {names} in [{self.info.value_range[0]:g}, "
                                  f"{self.info.value_range[1]:g}], received {batch.dtype}. Fix: convert frames "
                                  "with deblurrt.runtime.prepost.frames_to_batch")
        multiple = self.info.pad_multiple
        height, width = batch.shape[2], batch.shape[3]
        if height % multiple or width % multiple:
            raise InputShapeError(
                f"{self.name} input height and width must be multiples of {multiple} (model "
                f"{self.info.name}), received {height}x{width}. Fix: pad with deblurrt.runtime.prepost "
                f"(next valid size {-(-height // multiple) * multiple}x{-(-width // multiple) * multiple})")
        if height == 0 or width == 0 or batch.shape[0] == 0:
            raise InputShapeError(f"{self.name} input is empty: shape {format_shape(batch.shape)}")
        for axis, (got, want) in enumerate(zip(batch.shape, self.input_spec.shape, strict=True)):
            if want is not None and got != want:
                raise InputShapeError(f"{self.name} input dimension {axis} must be {want} (the model's input "
                                      f"shape is {format_shape(self.input_spec.shape)}), received "
                                      f"{format_shape(batch.shape)}")
        select_profile(batch.shape, self.input_spec.profiles, source=str(self.path))

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on an NCHW batch (values in the model's range); returns the NCHW output.

        The output dtype is the model's (float32, or float16 for FP16-output models); it is a fresh array
        the caller may keep.
        """
        if self._closed:
            raise DeblurrtError(f"{self.name} backend for {self.path} is closed")
        self.check_input(batch)
        return self._infer(batch)

    def close(self) -> None:
        """Release the model and its buffers; idempotent."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # best effort only: explicit close() or a with-block is the contract
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    # ------------------------------------------------------------------------------------ subclasses
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _close(self) -> None:
        """Release backend resources (subclasses override)."""
