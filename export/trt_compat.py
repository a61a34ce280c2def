"""Every TensorRT-version difference deblurrt depends on, in one place (TensorRT >= 10.3 and 11.x).

* Strongly typed networks: 10.x needs ``1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)`` at
  ``create_network``; 11.x is always strongly typed and accepts the flag but ignores it. Should a later
  release drop the enum member, no flag is passed (strong typing is then the only mode).
* Precision: never through ``BuilderFlag.FP16/INT8`` (deprecated in 10.12, removed in 11.0); FP16 casts
  and INT8 Q/DQ come from the ONNX file.
* ``EXPLICIT_BATCH`` is ignored since 10.0 and gone in 11: never passed.
* DLA: supported in 10.x (JetPack 6: 10.3) and again in 11.4.1 (Jetson AGX Orin with JetPack >= 7.2.2);
  TensorRT 11.0 to 11.4.0 have no DLA support on Jetson. With strongly typed networks the DLA builds
  take no precision flags; ``OnnxParserFlag.ADJUST_FOR_DLA`` exists on recent parsers only.

Nothing here imports ``tensorrt`` at module import: the pure helpers are tested on CPU machines.
"""

from __future__ import annotations

import re
from typing import Any

from deblurrt.errors import DeblurrtError, MissingDependencyError

MIN_VERSION = (10, 3)
#: TensorRT 11 releases before this one have no DLA support on Jetson (NVIDIA's DLA pages for 11.0-11.4.0).
FIRST_DLA_11 = (11, 4, 1)
INSTALL_HINT = ("on a desktop GPU: pip install 'deblurrt[trt]' (NVIDIA driver required); on Jetson: use "
                "JetPack's TensorRT (sudo apt install python3-libnvinfer, venv with --system-site-packages)")


def parse_version(text: str) -> tuple[int, ...]:
    """``'10.3.0.30'`` -> ``(10, 3, 0, 30)``; trailing non-numeric parts (``'11.0.0rc1'``) are dropped."""
    numbers = []
    for part in text.split("."):
        match = re.match(r"\d+", part)
        if not match:
            break
        numbers.append(int(match.group()))
    return tuple(numbers)


def check_version(version: tuple[int, ...]) -> None:
    """Refuse TensorRT older than 10.3 (no strongly typed route for Q/DQ + FP16 ONNX as deblurrt writes it)."""
    if version[:2] < MIN_VERSION:
        raise DeblurrtError(f"TensorRT {'.'.join(map(str, version))} is too old: deblurrt needs >= 10.3 "
                            f"(strongly typed networks). Fix: {INSTALL_HINT}.")


def dla_support(version: tuple[int, ...]) -> tuple[bool, str]:
    """Whether this TensorRT release can build for DLA at all, and why not."""
    if version[0] >= 11 and version[:3] < FIRST_DLA_11:
        return False, (f"TensorRT {'.'.join(map(str, version))} has no DLA support on Jetson (11.0 to 11.4.0); "
                       "use TensorRT 10.x (JetPack 6) or >= 11.4.1 (JetPack >= 7.2.2), or drop --dla")
    return True, ""


def strongly_typed_flags(flag_enum: Any) -> int:
    """``create_network`` flags for a strongly typed network, given ``trt.NetworkDefinitionCreationFlag``."""
    member = getattr(flag_enum, "STRONGLY_TYPED", None)
    return 1 << int(member) if member is not None else 0


def import_tensorrt(feature: str = "Building a TensorRT engine"):
    """Import ``tensorrt`` or raise :class:`MissingDependencyError` with the install route; check the version."""
    try:
        import tensorrt as trt
    except ImportError as error:
        raise MissingDependencyError("tensorrt", feature, INSTALL_HINT) from error
    except OSError as error:  # the wheel imports but its CUDA libraries do not load
        raise DeblurrtError(f"{feature}: TensorRT is installed but its libraries do not load ({error}). "
                            f"Fix: install the NVIDIA driver and CUDA runtime matching TensorRT.") from error
    check_version(parse_version(trt.__version__))
    return trt


def create_builder(trt, logger):
    """``trt.Builder(logger)``, turning the no-GPU failure into a clear refusal."""
    try:
        builder = trt.Builder(logger)
    except (RuntimeError, TypeError) as error:  # pybind11 raises TypeError when the factory returns null
        builder, cause = None, error
    else:
        cause = None
    if builder is None:
        raise DeblurrtError("TensorRT cannot create a builder: no usable NVIDIA GPU or driver (CUDA "
                            "initialization failed). Fix: build engines on the machine that runs them, with "
                            "its driver installed; export ONNX here instead (--format onnx).") from cause
    return builder


def create_network(trt, builder):
    """A strongly typed network definition on any supported TensorRT."""
    return builder.create_network(strongly_typed_flags(trt.NetworkDefinitionCreationFlag))


def set_workspace(trt, config, size_bytes: int) -> None:
    """Limit the builder's workspace pool (``set_memory_pool_limit``, the only API since 10.0)."""
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(size_bytes))


def configure_dla(trt, builder, config, parser, core: int) -> None:
    """Run on DLA core ``core`` with GPU fallback for unsupported layers; refuse where DLA cannot work."""
    ok, reason = dla_support(parse_version(trt.__version__))
    if not ok:
        raise DeblurrtError(reason)
    cores = int(getattr(builder, "num_DLA_cores", 0))
    if cores == 0:
        raise DeblurrtError("this device has no DLA (DLA exists on Jetson AGX Orin and Orin NX 16GB, not on "
                            "Orin Nano or desktop GPUs). Fix: drop --dla.")
    if not 0 <= core < cores:
        raise DeblurrtError(f"DLA core {core} does not exist: this device has {cores}. Fix: --dla 0..{cores - 1}.")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = core
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    adjust = getattr(getattr(trt, "OnnxParserFlag", None), "ADJUST_FOR_DLA", None)
    if adjust is not None:
        parser.set_flag(adjust)


def load_timing_cache(config, data: bytes | None):
    """Create the builder's timing cache from ``data`` (empty when None) and attach it; returns it."""
    cache = config.create_timing_cache(data or b"")
    # ignore_mismatch=False: a cache from another GPU or TensorRT version is rejected rather than trusted.
    config.set_timing_cache(cache, False)
    return cache


def gpu_name() -> str:
    """Name of CUDA device 0 through cuda-python, or ``'unknown'`` when it cannot be queried."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python < 12.6 layout
        except ImportError:
            return "unknown"
    error, properties = cudart.cudaGetDeviceProperties(0)
    if int(error) != 0:
        return "unknown"
    name = properties.name
    return (name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)).strip()
