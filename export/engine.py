"""TensorRT engines from deblurrt ONNX files: optimisation profiles, the build, and the JSON sidecar.

The pure parts (shapes, profiles, sidecar content, cache paths) run anywhere; :func:`build_engine` needs
TensorRT and a GPU and refuses clearly without them. Version differences are in
:mod:`deblurrt.export.trt_compat`. The network is strongly typed: the precision is the ONNX file's (FP32,
FP16 with FP32 islands, or INT8 Q/DQ), never a builder flag.

Profiles: one per camera resolution by default (640x360, 1280x720, 1920x1080, each padded to the model's
multiple: a fixed shape per profile lets TensorRT pick the best tactics for exactly that size), a single
fixed profile with ``shape``, or one dynamic min/opt/max profile.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deblurrt.errors import DeblurrtError
from deblurrt.sidecar import sidecar_document, sidecar_path  # noqa: F401  (sidecar_path re-exported)

#: Common camera resolutions (H, W) that get a profile each when no shape is given.
CAMERA_SHAPES: tuple[tuple[int, int], ...] = ((360, 640), (720, 1280), (1080, 1920))
_SHAPE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_shape(text: str, option: str = "--shape") -> tuple[int, int]:
    """``'720x1280'`` -> ``(720, 1280)`` (height x width); anything else is a user error naming the fix."""
    match = _SHAPE.match(text or "")
    if not match or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
        raise DeblurrtError(f"bad {option} '{text}': expected HEIGHTxWIDTH in pixels, e.g. {option} 720x1280")
    return int(match.group(1)), int(match.group(2))


def round_up(shape: tuple[int, int], multiple: int) -> tuple[int, int]:
    """Round (H, W) up to multiples of ``multiple`` (the runtime pads frames the same way)."""
    return tuple(-(-v // multiple) * multiple for v in shape)  # type: ignore[return-value]


@dataclass(frozen=True)
class Profile:
    """One optimisation profile of the input tensor: min/opt/max NCHW shapes."""

    name: str
    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the sidecar."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def build_profiles(pad_multiple: int, shape: tuple[int, int] | None = None,
                   min_shape: tuple[int, int] | None = None, opt_shape: tuple[int, int] | None = None,
                   max_shape: tuple[int, int] | None = None, max_batch: int = 1,
                   cameras: Sequence[tuple[int, int]] = CAMERA_SHAPES) -> list[Profile]:
    """Optimisation profiles for the engine (see the module docstring). Shapes are (H, W) and are rounded
    up to ``pad_multiple``; the batch dimension spans 1..``max_batch`` with ``opt`` at 1."""
    if max_batch < 1:
        raise DeblurrtError(f"--max-batch must be >= 1, received {max_batch}")
    dynamic = (min_shape, opt_shape, max_shape)
    if shape is not None and any(dynamic):
        raise DeblurrtError("--shape and --min/--opt/--max-shape are exclusive. Fix: give a fixed --shape, or "
                            "all three of --min-shape, --opt-shape and --max-shape.")
    if any(dynamic) and not all(dynamic):
        raise DeblurrtError("a dynamic profile needs all of --min-shape, --opt-shape and --max-shape.")

    def nchw(batch: int, hw: tuple[int, int]) -> tuple[int, int, int, int]:
        return (batch, 3, *round_up(hw, pad_multiple))

    if all(dynamic):
        low, mid, high = (round_up(s, pad_multiple) for s in dynamic)  # type: ignore[arg-type]
        if not (low[0] <= mid[0] <= high[0] and low[1] <= mid[1] <= high[1]):
            raise DeblurrtError(f"profile shapes must satisfy min <= opt <= max in both H and W, received "
                                f"{low}, {mid}, {high}")
        return [Profile("dynamic", nchw(1, low), nchw(1, mid), nchw(max_batch, high))]
    fixed = [shape] if shape is not None else list(cameras)
    profiles = []
    for hw in fixed:
        padded = round_up(hw, pad_multiple)
        profiles.append(Profile(f"{padded[0]}x{padded[1]}", nchw(1, hw), nchw(1, hw), nchw(max_batch, hw)))
    return profiles


def timing_cache_path(engine_path: str | Path, explicit: str | Path | None = None) -> Path:
    """The timing cache to load and save: ``explicit`` or ``<engine>.timing.cache`` next to the engine.

    Timing caches are specific to a GPU model and TensorRT version; keep one per device.
    """
    if explicit is not None:
        return Path(explicit)
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".timing.cache")


def engine_sidecar(onnx_metadata: dict[str, str], profiles: Sequence[Profile], trt_version: str, gpu: str,
                   dla_core: int | None = None, workspace_bytes: int | None = None,
                   onnx_file: str | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON the runtime reads next to an engine (format: :mod:`deblurrt.sidecar`): the ONNX metadata,
    the profiles of the input tensor, TensorRT version and GPU (and ``extra`` keys, e.g. the layers a DLA
    build left on the GPU)."""
    input_name = onnx_metadata.get("deblurrt.input", "blurry")
    return sidecar_document(
        onnx_metadata,
        [{input_name: {"min": p.min, "opt": p.opt, "max": p.max}} for p in profiles],
        profile_names=[p.name for p in profiles],
        input=input_name,
        output=onnx_metadata.get("deblurrt.output", "sharp"),
        precision=onnx_metadata.get("deblurrt.precision", "fp32"),
        pad_multiple=int(onnx_metadata.get("deblurrt.pad_multiple", "1")),
        tensorrt=trt_version,
        gpu=gpu,
        dla_core=dla_core,
        workspace_bytes=workspace_bytes,
        strongly_typed=True,
        onnx=onnx_file,
        **extra,
    )


def build_engine(onnx_path: str | Path, engine_path: str | Path, profiles: Sequence[Profile],
                 workspace_gib: float | None = None, timing_cache: str | Path | None = None,
                 dla_core: int | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build a serialized TensorRT engine from ``onnx_path``; write it and its sidecar; return the sidecar.

    Strongly typed network, every ONNX parser error reported, workspace limit, one optimisation profile per
    entry of ``profiles`` (an invalid one is an error), timing cache loaded from and saved to
    ``timing_cache`` (default next to the engine; one TensorRT refuses is replaced by a fresh one, with a
    warning), optional DLA core with GPU fallback (static profiles only; the layers left on the GPU are
    printed and recorded in the sidecar as ``dla_gpu_layers``). Raises :class:`DeblurrtError` without
    TensorRT or a GPU.
    """
    from deblurrt.export import trt_compat
    from deblurrt.export.onnx_export import INPUT_NAME, read_metadata

    trt = trt_compat.import_tensorrt()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt_compat.create_builder(trt, logger)
    network = trt_compat.create_network(trt, builder)
    parser = trt.OnnxParser(network, logger)
    config = builder.create_builder_config()
    if dla_core is not None:
        trt_compat.configure_dla(trt, builder, config, parser, dla_core, profiles, log)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise DeblurrtError(f"TensorRT's ONNX parser rejected '{onnx_path}' ({len(errors)} error(s)):\n  "
                            + "\n  ".join(errors) + "\nFix: run the audit (it is printed by 'deblurrt export') "
                            "and re-export with the reported ops replaced.")
    workspace = int(workspace_gib * (1 << 30)) if workspace_gib else None
    if workspace:
        trt_compat.set_workspace(trt, config, workspace)
    input_name = network.get_input(0).name if network.num_inputs else INPUT_NAME
    for profile in profiles:
        trt_compat.add_profile(builder, config, input_name, profile)
    gpu_layers = trt_compat.dla_gpu_layers(config, network) if dla_core is not None else []
    cache_path = timing_cache_path(engine_path, timing_cache)
    cache, cache_state = trt_compat.load_timing_cache(
        config, cache_path.read_bytes() if cache_path.is_file() else None, log, f"the timing cache {cache_path}")
    log(f"building TensorRT {trt.__version__} engine ({len(profiles)} profile(s); timing cache {cache_state}); "
        "this takes minutes")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise DeblurrtError("TensorRT failed to build the engine (see its messages above). Fix: raise "
                            "--workspace, or narrow the profiles (--shape / --max-shape).")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(serialized))
    if cache is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_bytes(bytes(cache.serialize()))
    extra: dict[str, Any] = {"timing_cache": cache_state}
    if dla_core is not None:
        extra["dla_gpu_layers"] = gpu_layers
        if gpu_layers:
            log(f"DLA core {dla_core}: {len(gpu_layers)} of {network.num_layers} layer(s) fall back to the GPU:\n  "
                + "\n  ".join(gpu_layers))
        else:
            log(f"DLA core {dla_core}: every layer runs on the DLA")
    sidecar = engine_sidecar(read_metadata(onnx_path), profiles, trt.__version__, trt_compat.gpu_name(),
                             dla_core, workspace, onnx_path.name, **extra)
    sidecar_path(engine_path).write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return sidecar
