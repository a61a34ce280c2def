"""TensorRT engine export: the pure parts on CPU (profiles, sidecar, cache paths, version compat, refusal);
the build itself only where TensorRT and a GPU exist (marked gpu, skipped otherwise)."""

from __future__ import annotations

import importlib.util
import json
import types

import pytest

from deblurrt.errors import DeblurrtError, MissingDependencyError
from deblurrt.export import trt_compat
from deblurrt.export.engine import (
    CAMERA_SHAPES,
    build_profiles,
    engine_sidecar,
    parse_shape,
    round_up,
    sidecar_path,
    timing_cache_path,
)
from deblurrt.runtime.backends.tensorrt import gpu_ready

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
GPU_READY, GPU_REASON = gpu_ready()


def test_parse_shape_accepts_hxw_and_names_the_fix():
    assert parse_shape("720x1280") == (720, 1280)
    assert parse_shape(" 360X640 ") == (360, 640)
    for bad in ("720", "720x", "x1280", "720*1280", "0x640", "-1x5", ""):
        with pytest.raises(DeblurrtError, match="HEIGHTxWIDTH"):
            parse_shape(bad)


def test_default_profiles_one_per_camera_resolution_padded():
    profiles = build_profiles(32, max_batch=2)
    assert [p.name for p in profiles] == ["384x640", "736x1280", "1088x1920"]
    assert len(profiles) == len(CAMERA_SHAPES)
    first = profiles[0]
    assert first.min == (1, 3, 384, 640) and first.opt == (1, 3, 384, 640) and first.max == (2, 3, 384, 640)


def test_fixed_and_dynamic_profiles():
    (fixed,) = build_profiles(8, shape=(720, 1280))
    assert fixed.min[2:] == fixed.max[2:] == (720, 1280)
    (dynamic,) = build_profiles(32, min_shape=(360, 640), opt_shape=(720, 1280), max_shape=(1080, 1920),
                                max_batch=4)
    assert dynamic.min == (1, 3, 384, 640) and dynamic.opt == (1, 3, 736, 1280)
    assert dynamic.max == (4, 3, 1088, 1920)
    assert round_up((721, 1), 16) == (736, 16)


@pytest.mark.parametrize("kwargs, message", [
    ({"shape": (720, 1280), "min_shape": (360, 640)}, "exclusive"),
    ({"min_shape": (360, 640), "max_shape": (720, 1280)}, "all of"),
    ({"min_shape": (720, 1280), "opt_shape": (360, 640), "max_shape": (1080, 1920)}, "min <= opt <= max"),
    ({"max_batch": 0}, "max-batch"),
])
def test_bad_profiles_are_user_errors(kwargs, message):
    with pytest.raises(DeblurrtError, match=message):
        build_profiles(32, **kwargs)


def test_sidecar_content_and_paths(tmp_path):
    profiles = build_profiles(32, shape=(720, 1280))
    metadata = {"deblurrt.model": "unet_nano_prior", "deblurrt.pad_multiple": "32", "deblurrt.input": "blurry",
                "deblurrt.output": "sharp", "deblurrt.precision": "fp16"}
    sidecar = engine_sidecar(metadata, profiles, "10.3.0", "Orin", dla_core=0, workspace_bytes=1 << 30,
                             onnx_file="model.onnx")
    text = json.dumps(sidecar)
    data = json.loads(text)
    assert data["metadata"] == metadata and data["precision"] == "fp16" and data["pad_multiple"] == 32
    assert data["profiles"][0]["blurry"]["opt"] == [1, 3, 736, 1280]
    # The runtime reads what export writes: one format, deblurrt.sidecar.
    from deblurrt.runtime.backends.tensorrt import profiles_for_input, read_sidecar, write_sidecar

    write_sidecar(tmp_path / "model.engine", sidecar["metadata"], sidecar["profiles"])
    (ranges,) = profiles_for_input(read_sidecar(tmp_path / "model.engine"), "blurry")
    assert ranges.opt == (1, 3, 736, 1280)
    assert data["tensorrt"] == "10.3.0" and data["gpu"] == "Orin" and data["strongly_typed"] is True
    assert sidecar_path(tmp_path / "model.engine") == tmp_path / "model.engine.json"
    assert timing_cache_path(tmp_path / "model.engine") == tmp_path / "model.engine.timing.cache"
    assert timing_cache_path(tmp_path / "model.engine", tmp_path / "shared.cache") == tmp_path / "shared.cache"


def test_compat_versions_flags_and_dla_support():
    assert trt_compat.parse_version("10.3.0.30") == (10, 3, 0, 30)
    assert trt_compat.parse_version("11.0.0rc1") == (11, 0, 0)
    trt_compat.check_version((10, 3, 0))
    trt_compat.check_version((11, 4, 1))
    with pytest.raises(DeblurrtError, match=">= 10.3"):
        trt_compat.check_version((8, 6, 1))
    assert trt_compat.dla_support((10, 3, 0))[0]
    assert not trt_compat.dla_support((10, 8, 0))[0]
    assert not trt_compat.dla_support((11, 0, 0))[0]
    assert not trt_compat.dla_support((11, 4, 0))[0]
    assert trt_compat.dla_support((11, 4, 1))[0]
    assert trt_compat.strongly_typed_flags(types.SimpleNamespace(STRONGLY_TYPED=1)) == 2
    assert trt_compat.strongly_typed_flags(types.SimpleNamespace()) == 0


class _FakeTrt:
    """Just enough of the tensorrt module to exercise the compat helpers' decisions on CPU."""

    __version__ = "10.3.0"

    class MemoryPoolType:
        WORKSPACE = "workspace"

    class DeviceType:
        DLA = "dla"

    class BuilderFlag:
        GPU_FALLBACK = "gpu_fallback"


def test_compat_configures_workspace_and_dla_with_gpu_fallback():
    calls = []
    config = types.SimpleNamespace(set_memory_pool_limit=lambda pool, size: calls.append((pool, size)),
                                   set_flag=lambda flag: calls.append(flag))
    trt_compat.set_workspace(_FakeTrt, config, 2 << 30)
    assert calls == [("workspace", 2 << 30)]
    builder = types.SimpleNamespace(num_DLA_cores=2)
    trt_compat.configure_dla(_FakeTrt, builder, config, types.SimpleNamespace(), 1)
    assert config.default_device_type == "dla" and config.DLA_core == 1 and "gpu_fallback" in calls
    with pytest.raises(DeblurrtError, match="does not exist"):
        trt_compat.configure_dla(_FakeTrt, builder, config, None, 2)
    with pytest.raises(DeblurrtError, match="no DLA"):
        trt_compat.configure_dla(_FakeTrt, types.SimpleNamespace(num_DLA_cores=0), config, None, 0)


def test_builder_refusal_without_gpu():
    class NoGpuTrt:
        @staticmethod
        def Builder(logger):  # noqa: N802 - mirrors tensorrt.Builder
            raise TypeError("pybind11::init(): factory function returned nullptr")

    with pytest.raises(DeblurrtError, match="no usable NVIDIA GPU"):
        trt_compat.create_builder(NoGpuTrt, None)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_missing_tensorrt_is_refused_with_the_install_route(tmp_path):
    from deblurrt.export.engine import build_engine

    with pytest.raises(MissingDependencyError, match="tensorrt") as info:
        build_engine(tmp_path / "m.onnx", tmp_path / "m.engine", build_profiles(32))
    text = str(info.value)
    # the CUDA major must match the driver: both extras are named, with cuda-python's pin for CUDA 12
    assert "deblurrt[trt-cu12]" in text and "deblurrt[trt-cu13]" in text and "JetPack" in text
    assert "cuda-python>=12.3,<13" in text


@pytest.mark.gpu
@pytest.mark.skipif(not GPU_READY, reason=f"needs TensorRT and an NVIDIA GPU ({GPU_REASON})")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_engine_builds_from_each_precision(tmp_path, precision):
    import torch

    from deblurrt.export.pipeline import ExportRequest, run_export
    from deblurrt.train.checkpoint import save_model
    from deblurrt.train.models import create_model

    checkpoint = save_model(create_model("unet_tiny_prior"), tmp_path / "unet.safetensors")
    torch.manual_seed(0)
    out = tmp_path / f"unet.{precision}.engine"
    request = ExportRequest(checkpoint, format="engine", precision=precision, out=out, shape=(64, 96),
                            calib_shape=(64, 64), calib_count=4, eval_count=2, workspace_gib=1.0)
    assert run_export(request) == 0
    assert out.stat().st_size > 0
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar["precision"] == precision and sidecar["profiles"][0]["blurry"]["opt"] == [1, 3, 64, 96]
    assert timing_cache_path(out).is_file()
