"""Every TensorRT-version difference deblurrt depends on, in one place (TensorRT >= 10.3 and 11.x).

* Strongly typed networks: 10.x needs ``1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)`` at
  ``create_network``; 11.x is always strongly typed and accepts the flag but ignores it. Should a later
  release drop the enum member, no flag is passed (strong typing is then the only mode).
* Precision: never through ``BuilderFlag.FP16/INT8`` (deprecated in 10.12, removed in 11.0); FP16 casts
  and INT8 Q/DQ come from the ONNX file.
* ``EXPLICIT_BATCH`` is ignored since 10.0 and gone in 11: never passed.
* DLA: supported from 10.3 (JetPack 6) to 10.7, the last 10.x release with DLA, and again from 11.4.1
  (Jetson AGX Orin with JetPack >= 7.2.2); 10.8 to 11.4.0 have none on Jetson. Strongly typed DLA builds
  are documented from 11.4.1 on; on 10.3-10.7 they are allowed with a warning and the build lists every
  layer left on the GPU. DLA needs static shapes (min = opt = max in every profile): with GPU_FALLBACK a
  dynamic profile would silently run the whole network on the GPU, so such builds are refused. With strongly
  typed networks the DLA builds take no precision flags; ``OnnxParserFlag.ADJUST_FOR_DLA`` exists on recent
  parsers only.
* Return values that signal failure without raising: ``add_optimization_profile`` returns -1 for an invalid
  profile; ``create_timing_cache`` may return None and ``set_timing_cache`` False (a cache from another GPU
  or TensorRT version). ``Builder``/``Runtime`` raise instead of returning None.

Nothing here imports ``tensorrt`` at module import: the pure helpers are tested on CPU machines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from deblurrt import cudaenv
from deblurrt.errors import DeblurrtError, MissingDependencyError

MIN_VERSION = (10, 3)
#: The last 10.x release with DLA (NVIDIA's DLA pages: "TensorRT 10.7 was the last 10.x release that supported DLA").
LAST_DLA_10 = (10, 7)
#: TensorRT 11 releases before this one have no DLA support on Jetson (NVIDIA's DLA pages for 11.0-11.4.0).
FIRST_DLA_11 = (11, 4, 1)
INSTALL_HINT = ("on a desktop GPU: " + cudaenv.install_hint() + " (NVIDIA driver required); on Jetson: use "
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
    """Whether this TensorRT release can build for DLA, and why not (or, when it can, a warning or "")."""
    text = ".".join(map(str, version))
    if version[:2] > LAST_DLA_10 and version[:3] < FIRST_DLA_11:
        return False, (f"TensorRT {text} has no DLA support on Jetson (10.7 was the last 10.x release with DLA; "
                       "11.0 to 11.4.0 have none). Fix: build on TensorRT 10.3-10.7 (JetPack 6) or >= 11.4.1 "
                       "(JetPack >= 7.2.2), or drop --dla")
    if version[0] == 10:
        return True, (f"TensorRT {text}: strongly typed networks on DLA are documented from 11.4.1 on; this "
                      "build may put more layers on the GPU or fail: check the GPU-fallback list printed after it")
    return True, ""


def check_dla_profiles(profiles: Sequence[Any], max_batch: int | None = None) -> None:
    """Refuse DLA builds whose profiles are not static (min = opt = max), or batch more than DLA takes.

    DLA runs static shapes only; with GPU_FALLBACK TensorRT would silently run such a network on the GPU.
    ``profiles`` have ``name``, ``min``, ``opt`` and ``max`` (:class:`deblurrt.export.engine.Profile`).
    """
    for profile in profiles:
        if not tuple(profile.min) == tuple(profile.opt) == tuple(profile.max):
            raise DeblurrtError(
                f"DLA runs static shapes only (min = opt = max), but profile '{profile.name}' spans min "
                f"{tuple(profile.min)} to max {tuple(profile.max)}; GPU fallback would run it all on the GPU "
                "without a word. Fix: one static profile per DLA engine: --shape HxW (not --min/--opt/--max-shape) "
                "and --max-batch 1")
        if max_batch is not None and max_batch > 0 and profile.max[0] > max_batch:
            raise DeblurrtError(f"profile '{profile.name}' has batch {profile.max[0]}; this DLA takes at most "
                                f"{max_batch}. Fix: --max-batch {max_batch}")


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


def configure_dla(trt, builder, config, parser, core: int, profiles: Sequence[Any] = (),
                  log: Callable[[str], None] = print) -> None:
    """Run on DLA core ``core`` with GPU fallback for unsupported layers; refuse where DLA cannot work
    (this TensorRT release, no DLA, no such core, profiles that are not static)."""
    ok, reason = dla_support(parse_version(trt.__version__))
    if not ok:
        raise DeblurrtError(reason)
    if reason:
        log(f"warning: {reason}")
    cores = int(getattr(builder, "num_DLA_cores", 0))
    if cores == 0:
        raise DeblurrtError("this device has no DLA (DLA exists on Jetson AGX Orin and Orin NX 16GB, not on "
                            "Orin Nano or desktop GPUs). Fix: drop --dla.")
    if not 0 <= core < cores:
        raise DeblurrtError(f"DLA core {core} does not exist: this device has {cores}. Fix: --dla 0..{cores - 1}.")
    check_dla_profiles(profiles, getattr(builder, "max_DLA_batch_size", None))
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = core
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    adjust = getattr(getattr(trt, "OnnxParserFlag", None), "ADJUST_FOR_DLA", None)
    if adjust is not None:
        parser.set_flag(adjust)


def dla_gpu_layers(config, network) -> list[str]:
    """Names (with types) of the network's layers that cannot run on DLA and will fall back to the GPU."""
    fallback = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if not config.can_run_on_DLA(layer):
            kind = getattr(layer.type, "name", str(layer.type))
            fallback.append(f"{layer.name} ({kind})")
    return fallback


def add_profile(builder, config, input_name: str, profile: Any) -> int:
    """Add one optimisation profile; TensorRT returns -1 (it does not raise) for an invalid one."""
    optimization_profile = builder.create_optimization_profile()
    optimization_profile.set_shape(input_name, tuple(profile.min), tuple(profile.opt), tuple(profile.max))
    index = int(config.add_optimization_profile(optimization_profile))
    if index < 0:
        raise DeblurrtError(f"TensorRT rejected optimization profile '{profile.name}' of input {input_name!r} "
                            f"(min {tuple(profile.min)}, opt {tuple(profile.opt)}, max {tuple(profile.max)}). Fix: "
                            "give shapes the model accepts (multiples of its pad multiple, min <= opt <= max)")
    return index


def load_timing_cache(config, data: bytes | None, log: Callable[[str], None] = print,
                      source: str = "the timing cache"):
    """Attach a timing cache to ``config``: the one in ``data`` when TensorRT takes it, else a fresh one.

    ``create_timing_cache`` may return None (unreadable data) and ``set_timing_cache`` returns False for a
    cache made by another GPU or TensorRT version (``ignore_mismatch=False``: such a cache is rejected rather
    than trusted); both cases warn and start fresh, so the stale cache is replaced, never written back.
    Returns ``(cache or None, state)`` with state ``loaded``, ``fresh``, ``replaced`` or ``none`` (the build
    then runs without a cache, and nothing is saved).
    """
    state = "fresh"
    if data:
        cache = config.create_timing_cache(data)
        if cache is None:
            log(f"warning: TensorRT could not read {source} (corrupt, or written by another TensorRT version); "
                "starting a fresh cache, which replaces it")
        elif not config.set_timing_cache(cache, False):
            log(f"warning: {source} was made on another GPU or TensorRT version and TensorRT refused it; starting "
                "a fresh cache, which replaces it")
        else:
            return cache, "loaded"
        state = "replaced"
    cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, False):
        log("warning: TensorRT could not create a timing cache; building without one (nothing will be saved)")
        return None, "none"
    return cache, state


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
