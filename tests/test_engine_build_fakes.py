"""build_engine's decisions on a fake TensorRT builder: what it does with return values that signal failure
without raising (timing caches, optimisation profiles), DLA refusals and version gates, and the GPU-fallback
list of a DLA build."""

from __future__ import annotations

import json
import types

import pytest

from deblurrt.errors import DeblurrtError
from deblurrt.export import trt_compat
from deblurrt.export.engine import build_engine, build_profiles, sidecar_path, timing_cache_path

pytest.importorskip("onnx")


class _Layer:
    def __init__(self, name, kind, dla):
        self.name, self.type, self.dla = name, types.SimpleNamespace(name=kind), dla


def fake_builder_trt(version="10.3.0", *, profile_index=0, readable_cache=True, cache_accepted=True,
                     dla_cores=2, gpu_only=("resize",)):
    """A ``tensorrt`` stand-in for builds: records what the build did in ``.record``."""
    record = {"profiles": [], "set_cache": [], "flags": []}

    class Cache:
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return b"fresh-cache" if not self.data else self.data

    class Config:
        default_device_type = None
        DLA_core = None

        def set_memory_pool_limit(self, pool, size):
            record["workspace"] = size

        def add_optimization_profile(self, profile):
            record["profiles"].append(profile.shapes)
            return profile_index if profile_index < 0 else len(record["profiles"]) - 1

        def create_timing_cache(self, data):
            if data and not readable_cache:
                return None
            return Cache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            record["set_cache"].append((cache.data, ignore_mismatch))
            return cache_accepted or not cache.data  # a fresh (empty) cache is always accepted

        def set_flag(self, flag):
            record["flags"].append(flag)

        def can_run_on_DLA(self, layer):  # noqa: N802 - mirrors tensorrt.IBuilderConfig
            return layer.dla

    class Profile:
        def __init__(self):
            self.shapes = None

        def set_shape(self, name, lo, opt, hi):
            self.shapes = (name, lo, opt, hi)

    class Network:
        num_inputs = 1
        layers = [_Layer("conv1", "CONVOLUTION", True), _Layer("up", "RESIZE", "resize" not in gpu_only),
                  _Layer("add", "ELEMENTWISE", True)]
        num_layers = 3

        def get_input(self, index):
            return types.SimpleNamespace(name="blurry")

        def get_layer(self, index):
            return self.layers[index]

    class Builder:
        num_DLA_cores = dla_cores
        max_DLA_batch_size = 1

        def __init__(self, logger):
            pass

        def create_network(self, flags):
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            record["built"] = True
            return b"engine-bytes"

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            return True

        def set_flag(self, flag):
            record["flags"].append(flag)

    module = types.SimpleNamespace(
        __version__=version, record=record, Builder=Builder, OnnxParser=OnnxParser,
        Logger=type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None}),
        NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=1),
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="workspace"),
        DeviceType=types.SimpleNamespace(DLA="dla"), BuilderFlag=types.SimpleNamespace(GPU_FALLBACK="gpu_fallback"),
        OnnxParserFlag=types.SimpleNamespace(ADJUST_FOR_DLA="adjust_for_dla"))
    return module


@pytest.fixture
def onnx_file(tiny_model):
    return tiny_model["onnx"]


def _build(monkeypatch, tmp_path, onnx_file, trt, profiles=None, **kwargs):
    monkeypatch.setattr(trt_compat, "import_tensorrt", lambda feature="": trt)
    messages = []
    engine = tmp_path / "m.engine"
    sidecar = build_engine(onnx_file, engine, profiles or build_profiles(32, shape=(64, 96)),
                           log=messages.append, **kwargs)
    return engine, sidecar, messages


def test_a_stale_timing_cache_is_replaced_not_written_back(monkeypatch, tmp_path, onnx_file):
    cache = timing_cache_path(tmp_path / "m.engine")
    cache.write_bytes(b"cache-from-another-gpu")
    trt = fake_builder_trt(cache_accepted=False)
    engine, sidecar, messages = _build(monkeypatch, tmp_path, onnx_file, trt)
    assert trt.record["set_cache"] == [(b"cache-from-another-gpu", False), (b"", False)]
    assert any("another GPU or TensorRT version" in m for m in messages)
    assert cache.read_bytes() == b"fresh-cache" and sidecar["timing_cache"] == "replaced"


def test_an_unreadable_timing_cache_starts_fresh(monkeypatch, tmp_path, onnx_file):
    timing_cache_path(tmp_path / "m.engine").write_bytes(b"garbage")
    trt = fake_builder_trt(readable_cache=False)
    _, sidecar, messages = _build(monkeypatch, tmp_path, onnx_file, trt)
    assert any("could not read" in m for m in messages) and sidecar["timing_cache"] == "replaced"


def test_a_good_timing_cache_is_loaded(monkeypatch, tmp_path, onnx_file):
    timing_cache_path(tmp_path / "m.engine").write_bytes(b"cache-of-this-gpu")
    _, sidecar, messages = _build(monkeypatch, tmp_path, onnx_file, fake_builder_trt())
    assert sidecar["timing_cache"] == "loaded" and not any("warning" in m for m in messages)


def test_an_invalid_profile_is_an_error(monkeypatch, tmp_path, onnx_file):
    trt = fake_builder_trt(profile_index=-1)
    with pytest.raises(DeblurrtError, match="rejected optimization profile '64x96'"):
        _build(monkeypatch, tmp_path, onnx_file, trt)
    assert "built" not in trt.record


def test_dla_refuses_dynamic_profiles_and_batches(monkeypatch, tmp_path, onnx_file):
    dynamic = build_profiles(32, min_shape=(64, 64), opt_shape=(64, 96), max_shape=(128, 128))
    batched = build_profiles(32, shape=(64, 96), max_batch=4)
    for profiles in (dynamic, batched):
        trt = fake_builder_trt()
        with pytest.raises(DeblurrtError, match="static shapes only.*--shape HxW"):
            _build(monkeypatch, tmp_path, onnx_file, trt, profiles, dla_core=0)
        assert "built" not in trt.record


@pytest.mark.parametrize("version, ok", [("10.3.0", True), ("10.7.0", True), ("10.8.0", False),
                                         ("10.16.1", False), ("11.0.0", False), ("11.4.0", False),
                                         ("11.4.1", True), ("11.5.0", True)])
def test_dla_version_gates(version, ok):
    allowed, reason = trt_compat.dla_support(trt_compat.parse_version(version))
    assert allowed is ok
    if not ok:
        assert "10.7 was the last 10.x release with DLA" in reason
    elif version.startswith("10."):
        assert "11.4.1" in reason  # strongly typed DLA on 10.x: allowed, with a warning


def test_dla_build_lists_the_layers_left_on_the_gpu(monkeypatch, tmp_path, onnx_file):
    trt = fake_builder_trt("10.3.0")
    engine, sidecar, messages = _build(monkeypatch, tmp_path, onnx_file, trt, dla_core=1)
    assert sidecar["dla_core"] == 1 and sidecar["dla_gpu_layers"] == ["up (RESIZE)"]
    assert any("1 of 3 layer(s) fall back to the GPU" in m and "up (RESIZE)" in m for m in messages)
    assert any(m.startswith("warning: TensorRT 10.3.0: strongly typed") for m in messages)
    assert "gpu_fallback" in trt.record["flags"]
    assert json.loads(sidecar_path(engine).read_text())["dla_gpu_layers"] == ["up (RESIZE)"]
    with pytest.raises(DeblurrtError, match="no DLA support"):
        _build(monkeypatch, tmp_path, onnx_file, fake_builder_trt("11.2.0"), dla_core=0)


def test_export_refuses_dla_with_a_dynamic_profile_before_any_work(tmp_path, tiny_model):
    from deblurrt.export.pipeline import ExportRequest, run_export

    request = ExportRequest(tiny_model["ckpt"], format="engine", precision="fp16", dla=0, out=tmp_path / "m.engine",
                            min_shape=(360, 640), opt_shape=(720, 1280), max_shape=(1080, 1920))
    messages = []
    with pytest.raises(DeblurrtError, match="static shapes only"):
        run_export(request, log=messages.append)
    assert messages == []  # refused before the ONNX export started
