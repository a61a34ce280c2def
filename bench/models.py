"""What to benchmark: registered model names (exported on the fly, random weights) or model files.

A registered name (``unet_nano_prior``) is built with seeded random weights -- latency does not depend on
the weights' values -- and exported into a cache folder: FP32 ONNX with :func:`export_onnx`, FP16 with
:func:`~deblurrt.export.fp16.convert_fp16`, INT8 with :func:`~deblurrt.export.int8.quantize_int8` (calibrated
on synthetic frames), a ``.safetensors`` checkpoint for the PyTorch backend, and a TensorRT engine (on a
machine with TensorRT and a GPU) with one fixed profile per benchmarked size. Cache keys include the model's
config, deblurrt's and torch's versions, so a changed zoo entry is re-exported.

A path (``.onnx``, ``.engine``/``.plan``, ``.safetensors``) is benchmarked as it is, with its own precision.
``zoo`` expands to every registered (non-tiny) model.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deblurrt import __version__
from deblurrt.errors import DeblurrtError, MissingDependencyError

PRECISIONS = ("fp32", "fp16", "int8")
MODEL_SUFFIXES = (".onnx", ".engine", ".plan", ".trt", ".safetensors")
ZOO = "zoo"
#: Seed of the random weights of exported registered models (stable artefacts, stable cache).
WEIGHT_SEED = 0
#: INT8 calibration on a few small synthetic frames: enough for realistic Q/DQ placement and scales, which is
#: all a latency measurement needs (accuracy is measured by 'deblurrt export' / 'deblurrt eval').
CALIB_FRAMES = 4
CALIB_SHAPE = (128, 128)


class SkipCase(DeblurrtError):
    """A requested (model, backend, precision) cannot run here; the reason goes into the report."""


@dataclass(frozen=True)
class ModelRef:
    """One ``--model`` argument: a registered name or a file."""

    text: str
    name: str | None = None
    path: Path | None = None

    @property
    def registered(self) -> bool:
        """True for a zoo name (exported on the fly with random weights)."""
        return self.name is not None

    @property
    def label(self) -> str:
        """The name shown in reports: the zoo name or the file name."""
        return self.name if self.name is not None else self.path.name  # type: ignore[union-attr]


def default_cache_dir() -> Path:
    """``$DEBLURRT_BENCH_CACHE``, else ``$XDG_CACHE_HOME/deblurrt/bench`` (``~/.cache/deblurrt/bench``)."""
    explicit = os.environ.get("DEBLURRT_BENCH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deblurrt" / "bench"


def _registry():
    try:
        from deblurrt.train.models.registry import _REGISTRY, list_models
    except ImportError as error:
        raise MissingDependencyError("torch", "benchmarking registered model names (they are exported on the "
                                     "fly)", "pip install 'deblurrt[train,export]', or pass .onnx files") from error
    return _REGISTRY, list_models


def resolve_models(texts: Sequence[str]) -> list[ModelRef]:
    """``--model`` arguments -> references, ``zoo`` expanded, duplicates dropped (first kept).

    A file suffix (or an existing file) means a path, which must exist. Anything else must be a registered
    name: an unknown one raises :class:`DeblurrtError` listing the closest names.
    """
    refs: list[ModelRef] = []
    for text in texts:
        for item in (t.strip() for t in text.split(",")):
            if not item:
                continue
            path = Path(item).expanduser()
            if item.lower().endswith(MODEL_SUFFIXES) or path.is_file():
                if not path.is_file():
                    raise DeblurrtError(f"model file '{item}' does not exist. Fix: give an exported .onnx, a "
                                        ".engine/.plan (with its .json sidecar) or a .safetensors checkpoint")
                refs.append(ModelRef(item, path=path))
                continue
            registry, list_models = _registry()
            if item == ZOO:
                refs.extend(ModelRef(name, name=name) for name in list_models())
                continue
            if item not in registry and path.is_dir():
                raise DeblurrtError(f"--model {item} is a directory, not a model file. Fix: give the model file "
                                    "inside it (.onnx, .engine/.plan, .safetensors) or a registered name")
            if item not in registry:
                close = difflib.get_close_matches(item, list(registry), n=4, cutoff=0.5)
                hint = f" Closest names: {', '.join(close)}." if close else ""
                raise DeblurrtError(f"unknown model '{item}'.{hint} Fix: use a name from 'deblurrt models' "
                                    "(--tiny shows the test models), 'zoo' for all of them, or a model file")
            refs.append(ModelRef(item, name=item))
    unique: dict[str, ModelRef] = {}
    for ref in refs:
        unique.setdefault(str(ref.path) if ref.path else ref.name, ref)  # type: ignore[arg-type]
    if not unique:
        raise DeblurrtError("no model given. Fix: --model unet_nano_prior (or a file, or 'zoo')")
    return list(unique.values())


def _model_key(name: str) -> str:
    """A short hash of what shapes the exported file: the zoo config and the exporting versions."""
    import torch

    from deblurrt.train.models.registry import get_spec

    text = json.dumps({"config": get_spec(name).config(), "deblurrt": __version__, "torch": torch.__version__,
                       "seed": WEIGHT_SEED}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _seeded_model(name: str):
    import torch

    from deblurrt.train.models import create_model

    torch.manual_seed(WEIGHT_SEED)
    return create_model(name).eval()


def _atomic(path: Path, make) -> Path:
    """Create ``path`` through ``make(tmp_path)`` and a rename, so an interrupted export leaves no half file."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}{path.suffix}")
    try:
        make(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def export_registered(name: str, precision: str = "fp32", cache_dir: str | Path | None = None,
                      int8_float: str = "fp32") -> Path:
    """The ONNX file of registered model ``name`` at ``precision`` (random weights), exported once and cached.

    ``int8_float``: the precision of the layers INT8 leaves in float (``fp16`` for TensorRT engines).
    """
    if precision not in PRECISIONS:
        raise DeblurrtError(f"unknown precision '{precision}'. Fix: one of {', '.join(PRECISIONS)}")
    try:
        import onnx  # noqa: F401 - fail early with the install hint
    except ImportError as error:
        raise MissingDependencyError("onnx", "exporting registered models", "pip install 'deblurrt[export]'") \
            from error
    folder = Path(cache_dir or default_cache_dir()) / f"{name}-{_model_key(name)}"
    fp32 = folder / f"{name}.fp32.onnx"

    def make_fp32(tmp: Path) -> None:
        from deblurrt.export.onnx_export import export_onnx

        export_onnx(_seeded_model(name), tmp)

    _atomic(fp32, make_fp32)
    if precision == "fp32":
        return fp32
    suffix = "int8fp16" if precision == "int8" and int8_float == "fp16" else precision
    target = folder / f"{name}.{suffix}.onnx"
    if precision == "fp16":
        from deblurrt.export.fp16 import convert_fp16

        return _atomic(target, lambda tmp: convert_fp16(fp32, tmp))

    def make_int8(tmp: Path) -> None:
        from deblurrt.export.images import calibration_images
        from deblurrt.export.int8 import Int8Options, quantize_int8
        from deblurrt.runtime.prepost import padded_size

        multiple = int(_seeded_model_multiple(name))
        height, width = padded_size(*CALIB_SHAPE, multiple)
        quantize_int8(fp32, tmp, calibration_images(None, height, width, CALIB_FRAMES),
                      Int8Options(float_dtype=int8_float))

    return _atomic(target, make_int8)


def _seeded_model_multiple(name: str) -> int:
    import torch

    from deblurrt.train.models import create_model

    with torch.device("meta"):
        return int(create_model(name).pad_multiple)


def checkpoint_registered(name: str, cache_dir: str | Path | None = None) -> Path:
    """A ``.safetensors`` checkpoint of registered model ``name`` (random weights) for the PyTorch backend."""
    from deblurrt.train.checkpoint import save_model

    path = Path(cache_dir or default_cache_dir()) / f"{name}-{_model_key(name)}" / f"{name}.safetensors"
    return _atomic(path, lambda tmp: save_model(_seeded_model(name), tmp))


def engine_registered(name: str, precision: str, sizes: Sequence[tuple[int, int]],
                      cache_dir: str | Path | None = None, log=print) -> Path:
    """A TensorRT engine of ``name`` at ``precision`` with one fixed profile per (H, W) in ``sizes``; INT8
    engines are INT8 + FP16 (what ``deblurrt export --format engine`` builds).

    Raises :class:`SkipCase` where TensorRT cannot be imported or there is no GPU (building needs both).
    """
    try:
        from deblurrt.export import trt_compat

        trt = trt_compat.import_tensorrt()
        gpu = trt_compat.gpu_name()
    except DeblurrtError as error:
        raise SkipCase(f"TensorRT is not usable here: {error}") from error
    except (ImportError, OSError, RuntimeError) as error:
        raise SkipCase(f"TensorRT is not usable here: {type(error).__name__}: {error}") from error
    from deblurrt.export.engine import build_engine, build_profiles

    onnx_path = export_registered(name, precision, cache_dir, int8_float="fp16")
    multiple = _seeded_model_multiple(name)
    tag = hashlib.sha256(json.dumps([trt.__version__, gpu, sorted(sizes)]).encode()).hexdigest()[:10]
    engine = onnx_path.with_name(f"{onnx_path.stem}.{tag}.engine")
    if not engine.is_file():
        build_engine(onnx_path, engine, build_profiles(multiple, cameras=list(sizes)), log=log)
    return engine


def artefact_for(ref: ModelRef, backend: str, precision: str, sizes: Sequence[tuple[int, int]],
                 cache_dir: str | Path | None = None, log=print) -> Path:
    """The file to open for ``ref`` with ``backend`` (canonical name) at ``precision``.

    Files are used as they are: a backend that cannot run the file's format raises :class:`SkipCase`.
    """
    if not ref.registered:
        from deblurrt.runtime.backends import backend_for_path

        implied = backend_for_path(ref.path)  # type: ignore[arg-type]
        if implied != backend:
            raise SkipCase(f"{ref.path} is a {implied} model; the {backend} backend cannot run it")
        return ref.path  # type: ignore[return-value]
    name = ref.name  # type: ignore[assignment]
    if backend == "onnxruntime":
        return export_registered(name, precision, cache_dir)
    if backend == "torch":
        if precision != "fp32":
            raise SkipCase("the PyTorch backend runs the FP32 checkpoint only (FP16/INT8 exist as ONNX/TensorRT)")
        return checkpoint_registered(name, cache_dir)
    if backend == "tensorrt":
        return engine_registered(name, precision, sizes, cache_dir, log=log)
    raise DeblurrtError(f"unknown backend {backend!r}")
