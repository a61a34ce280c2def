"""Backends: ONNX Runtime runs deblurrt ONNX files exactly like onnxruntime itself, checks inputs with
expected-vs-received messages, and open_backend refuses model/backend mismatches; TensorRT parts that need no
GPU (sidecar, profile selection, the missing-library error) run here, the rest is marked gpu."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest

from deblurrt.errors import DeblurrtError, MissingDependencyError
from deblurrt.runtime.backends import (
    Backend,
    InputShapeError,
    InputSpec,
    ModelInfo,
    ModelMismatchError,
    ShapeRange,
    open_backend,
    select_profile,
)
from deblurrt.runtime.backends import tensorrt as trt_backend
from deblurrt.runtime.backends.onnxruntime import resolve_providers

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture
def tiny(tiny_model):
    """The session's tiny exported model (pad multiple 32), its PyTorch twin and its checkpoint."""
    return tiny_model


def test_ort_backend_equals_onnxruntime_directly(tiny):
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 64, 128), dtype=np.float32)
    session = ort.InferenceSession(str(tiny["onnx"]), providers=["CPUExecutionProvider"])
    expected = session.run(["sharp"], {"blurry": x})[0]
    with open_backend(tiny["onnx"], threads=2) as backend:
        assert backend.name == "onnxruntime" and backend.providers == ["CPUExecutionProvider"]
        np.testing.assert_array_equal(backend.infer(x), expected)
    # the IO-binding path (used for CUDA) gives the same numbers
    with open_backend(tiny["onnx"], threads=2, io_binding=True) as backend:
        np.testing.assert_array_equal(backend.infer(x), expected)


def test_model_info_comes_from_the_onnx_metadata(tiny):
    with open_backend(tiny["onnx"]) as backend:
        info = backend.info
        assert (info.name, info.pad_multiple, info.input_name, info.output_name) == ("unet_tiny_prior", 32,
                                                                                      "blurry", "sharp")
        assert info.precision == "fp32" and info.value_range == (0.0, 1.0) and info.config["name"] == info.name
        assert backend.input_spec.shape == (None, 3, None, None)
        assert backend.input_spec.max_hw() is None


@pytest.mark.parametrize("bad, fragments", [
    (np.zeros((3, 64, 96), np.float32), ["4-D NCHW", "received 3-D shape 3x64x96"]),
    (np.zeros((1, 64, 96, 3), np.float32), ["3 channels", "received shape 1x64x96x3", "NHWC"]),
    (np.zeros((1, 3, 64, 96), np.float64), ["must be float32", "received float64"]),
    (np.zeros((1, 3, 64, 96), np.uint8), ["received uint8"]),
    (np.zeros((1, 3, 65, 96), np.float32), ["multiples of 32", "received 65x96", "96x96"]),
])
def test_input_errors_state_expected_and_received(tiny, bad, fragments):
    with open_backend(tiny["onnx"]) as backend, pytest.raises(InputShapeError) as caught:
        backend.infer(bad)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_fp16_input_model_is_fed_float16(tiny, tmp_path):
    onnx = pytest.importorskip("onnx")
    float16 = pytest.importorskip("onnxconverter_common.float16")
    proto = float16.convert_float_to_float16(onnx.load(str(tiny["onnx"])), keep_io_types=False)
    path = tmp_path / "fp16.onnx"
    onnx.save(proto, str(path))
    x = np.random.default_rng(1).random((1, 3, 64, 64), dtype=np.float32)
    with open_backend(path) as backend, open_backend(tiny["onnx"]) as reference:
        assert backend.input_dtype == np.float16
        y16 = backend.infer(x)  # float32 in: cast inside
        assert y16.dtype == np.float16
        np.testing.assert_array_equal(y16, backend.infer(x.astype(np.float16)))
        assert np.abs(y16.astype(np.float32) - reference.infer(x)).max() < 0.02


def test_unavailable_provider_falls_back_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="deblurrt.runtime"):
        chosen = resolve_providers("trt,cuda", ["CPUExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"]
    assert "TensorrtExecutionProvider is not available" in caplog.text and "CUDAExecutionProvider" in caplog.text
    assert resolve_providers(None, ["CUDAExecutionProvider", "CPUExecutionProvider"]) == \
        ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(DeblurrtError, match="unknown ONNX Runtime provider 'gpu'"):
        resolve_providers("gpu", ["CPUExecutionProvider"])


@pytest.mark.parametrize("suffix, backend, fragment", [
    (".onnx", "trt", "build an engine on this GPU first"),
    (".onnx", "torch", "run the .onnx with --backend ort"),
    (".engine", "ort", "runs only with --backend trt"),
    (".safetensors", "ort", "export the checkpoint to ONNX first"),
])
def test_model_backend_mismatch_says_what_to_do(tmp_path, suffix, backend, fragment):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"x")
    with pytest.raises(ModelMismatchError) as caught:
        open_backend(path, backend)
    assert fragment in str(caught.value) and "Fix:" in str(caught.value)


def test_unknown_suffix_and_backend_names(tmp_path):
    with pytest.raises(ModelMismatchError, match="cannot tell the model format"):
        open_backend(tmp_path / "model.bin")
    with pytest.raises(DeblurrtError, match="unknown backend 'tflite'"):
        open_backend(tmp_path / "m.onnx", "tflite")


def test_torch_backend_matches_onnx(tiny):
    x = np.random.default_rng(2).random((1, 3, 64, 96), dtype=np.float32)
    with open_backend(tiny["ckpt"], threads=2) as torch_backend, open_backend(tiny["onnx"]) as onnx_backend:
        assert torch_backend.name == "torch" and torch_backend.info.pad_multiple == 32
        assert np.abs(torch_backend.infer(x) - onnx_backend.infer(x)).max() < 1e-4


# ------------------------------------------------------------------------------------ shapes & profiles

PROFILES = (ShapeRange((1, 3, 64, 64), (1, 3, 384, 640), (1, 3, 720, 1280)),
            ShapeRange((2, 3, 64, 64), (4, 3, 256, 256), (4, 3, 256, 256)))


def test_select_profile_picks_the_first_that_fits():
    assert select_profile((1, 3, 384, 640), PROFILES) == 0
    assert select_profile((3, 3, 128, 128), PROFILES) == 1
    assert select_profile((5, 3, 10_000, 10_000), ()) == 0  # unconstrained


def test_frame_outside_every_profile_is_a_clear_error():
    with pytest.raises(InputShapeError) as caught:
        select_profile((1, 3, 1088, 1920), PROFILES, source="model.engine")
    text = str(caught.value)
    assert "1x3x1088x1920" in text and "model.engine" in text
    assert "profile 0: batch 1, height 64-720, width 64-1280" in text and "profile 1: batch 2-4" in text
    assert "--tile" in text


class _ProfiledIdentity(Backend):
    """A stand-in with an engine-like profile, to test the base-class checks without a GPU."""

    name = "stand-in"

    def __init__(self):
        super().__init__("fake.engine")
        self.info = ModelInfo(name="fake", pad_multiple=16, input_name="blurry", output_name="sharp")
        self.input_spec = InputSpec("blurry", np.dtype(np.float16), (None, 3, None, None), PROFILES[:1])

    def _infer(self, batch):
        return batch.astype(np.float16)


def test_base_class_checks_profiles_and_accepts_float32_for_fp16():
    backend = _ProfiledIdentity()
    assert backend.infer(np.zeros((1, 3, 64, 64), np.float32)).dtype == np.float16
    assert backend.input_spec.max_hw() == (720, 1280) and backend.input_spec.min_hw() == (64, 64)
    with pytest.raises(InputShapeError, match="outside every optimization profile"):
        backend.infer(np.zeros((1, 3, 736, 1280), np.float16))
    with pytest.raises(InputShapeError, match="must be float16 or float32"):
        backend.infer(np.zeros((1, 3, 64, 64), np.float64))
    backend.close()
    with pytest.raises(DeblurrtError, match="closed"):
        backend.infer(np.zeros((1, 3, 64, 64), np.float32))


def test_metadata_without_pad_multiple_needs_an_explicit_one():
    with pytest.raises(DeblurrtError, match="no 'deblurrt.pad_multiple'"):
        ModelInfo.from_metadata({}, source="x.onnx")
    info = ModelInfo.from_metadata({}, source="x.onnx", input_name="in", output_name="out", default_pad_multiple=8)
    assert (info.pad_multiple, info.input_name, info.name) == (8, "in", "unknown")
    with pytest.raises(DeblurrtError, match="positive integer"):
        ModelInfo.from_metadata({"deblurrt.pad_multiple": "zero"}, source="x.onnx")


# ----------------------------------------------------------------------------------------- TensorRT (CPU)

def test_sidecar_round_trip_and_profiles(tmp_path, tiny):
    from deblurrt.export.onnx_export import read_metadata

    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    metadata = read_metadata(tiny["onnx"])
    profiles = [{"blurry": {"min": [1, 3, 64, 64], "opt": [1, 3, 384, 640], "max": [1, 3, 720, 1280]}}]
    path = trt_backend.write_sidecar(engine, metadata, profiles, tensorrt_version="10.3.0")
    assert path.name == "model.engine.json"
    document = trt_backend.read_sidecar(engine)
    from deblurrt.sidecar import SIDECAR_FORMAT

    assert document["format"] == SIDECAR_FORMAT and document["tensorrt_version"] == "10.3.0"
    info = ModelInfo.from_metadata(document["metadata"], source=str(path))
    assert info.name == "unet_tiny_prior" and info.pad_multiple == 32
    assert trt_backend.profiles_for_input(document, "blurry") == (PROFILES[0],)


def test_sidecar_errors_say_how_to_fix(tmp_path):
    engine = tmp_path / "model.engine"
    with pytest.raises(DeblurrtError, match="needs its metadata sidecar.*write_sidecar"):
        trt_backend.read_sidecar(engine)
    trt_backend.sidecar_path(engine).write_text("{broken")
    with pytest.raises(DeblurrtError, match="not valid JSON"):
        trt_backend.read_sidecar(engine)
    bad = {"metadata": {}, "profiles": [{"blurry": {"min": [1, 3, 64, 64], "opt": [1, 3, 32, 32],
                                                     "max": [1, 3, 720, 1280]}}]}
    with pytest.raises(DeblurrtError, match="min <= opt <= max"):
        trt_backend.profiles_for_input(bad, "blurry")
    with pytest.raises(DeblurrtError, match="no shapes for input 'input'"):
        trt_backend.profiles_for_input(json.loads(json.dumps(bad)), "input")


def test_missing_tensorrt_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as if not installed, even where it is
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"x")
    with pytest.raises(MissingDependencyError) as caught:
        open_backend(engine)
    assert "tensorrt" in str(caught.value) and "JetPack" in str(caught.value) and "--backend ort" in str(caught.value)


# gpu_ready() never raises: cuda-python 12.x without a driver raises at the first call, which must not
# crash the collection of this file on such a machine.
_GPU_READY, _GPU_REASON = trt_backend.gpu_ready()


@pytest.mark.gpu
@pytest.mark.skipif(not _GPU_READY, reason=f"needs TensorRT and an NVIDIA GPU ({_GPU_REASON})")
def test_tensorrt_engine_matches_onnxruntime(tiny, tmp_path):
    import tensorrt as trt

    from deblurrt.export.onnx_export import read_metadata

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(tiny["onnx"])), [parser.get_error(i) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("blurry", (1, 3, 64, 64), (1, 3, 128, 128), (2, 3, 256, 256))
    config.add_optimization_profile(profile)
    engine = tmp_path / "tiny.engine"
    engine.write_bytes(bytes(builder.build_serialized_network(network, config)))
    trt_backend.write_sidecar(engine, read_metadata(tiny["onnx"]), [{"blurry": {
        "min": [1, 3, 64, 64], "opt": [1, 3, 128, 128], "max": [2, 3, 256, 256]}}])
    x = np.random.default_rng(3).random((1, 3, 128, 192), dtype=np.float32)
    with open_backend(tiny["onnx"]) as reference:
        expected = reference.infer(x)
    for graph in (False, True):
        with open_backend(engine, cuda_graph=graph) as backend:
            for _ in range(3):
                assert np.abs(backend.infer(x) - expected).max() < 1e-3
            with pytest.raises(InputShapeError, match="outside every optimization profile"):
                backend.infer(np.zeros((1, 3, 512, 512), np.float32))
