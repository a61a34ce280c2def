"""INT8 + FP16: the Q/DQ graph's float layers in FP16 (the default for engines), its accuracy in ONNX Runtime
next to plain INT8, the DLA variant (no FP32 island, FP16 I/O), and how exports and reports name it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deblurrt.errors import DeblurrtError
from deblurrt.train.models import create_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxconverter_common")

from deblurrt.export.accuracy import run_onnx  # noqa: E402
from deblurrt.export.images import calibration_images, synthetic_pairs  # noqa: E402
from deblurrt.export.int8 import Int8Options, quantize_int8  # noqa: E402
from deblurrt.export.nodes import sensitive_nodes  # noqa: E402
from deblurrt.export.onnx_export import export_onnx, read_metadata, simplify_onnx  # noqa: E402
from deblurrt.export.pipeline import ExportRequest, int8_float_dtype, precision_label, run_export  # noqa: E402
from deblurrt.export.trt_audit import audit_model  # noqa: E402
from deblurrt.metrics import psnr  # noqa: E402

FLOAT16 = onnx.TensorProto.FLOAT16
FLOAT = onnx.TensorProto.FLOAT


@pytest.fixture(scope="module")
def unet(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("unet_tiny_prior").eval()
    path = export_onnx(model, tmp_path_factory.mktemp("unet") / "unet.onnx", sample_shape=(64, 96))
    simplify_onnx(path)
    return model, path


@pytest.fixture(scope="module")
def frames():
    return calibration_images(None, 64, 64, count=4)


def _weight_types(proto) -> dict[str, int]:
    """Element type of each Conv's weight, following a DequantizeLinear to its int8 initializer."""
    inits = {t.name: t for t in proto.graph.initializer}
    producers = {out: node for node in proto.graph.node for out in node.output}
    types = {}
    for node in proto.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        weight = node.input[1]
        producer = producers.get(weight)
        if producer is not None and producer.op_type == "DequantizeLinear":
            types[node.name] = inits[producer.input[0]].data_type
        elif weight in inits:
            types[node.name] = inits[weight].data_type
    return types


def test_int8_fp16_keeps_int8_kernels_and_runs_the_rest_in_fp16(unet, frames, tmp_path):
    model, fp32 = unet
    plain = quantize_int8(fp32, tmp_path / "int8.onnx", frames)
    mixed = quantize_int8(fp32, tmp_path / "int8fp16.onnx", frames, Int8Options(float_dtype="fp16"))
    proto = onnx.load(str(mixed.path))
    weights = _weight_types(proto)
    groups = sensitive_nodes(onnx.load(str(fp32)).graph)
    # the quantized convolutions keep int8 weights read straight from their DequantizeLinear (the pattern
    # TensorRT fuses into an INT8 kernel); the float ones (first, last, ...) are FP16 now instead of FP32
    assert set(mixed.quantized_nodes) == set(plain.quantized_nodes)
    assert all(weights[name] == onnx.TensorProto.INT8 for name in mixed.quantized_nodes)
    assert all(weights[name] == FLOAT16 for name in groups["first"] + groups["last"])
    assert _weight_types(onnx.load(str(plain.path)))[groups["first"][0]] == FLOAT
    # I/O stays FP32 (drop-in for FP32 callers), the audit passes, the metadata says what it is
    assert proto.graph.input[0].type.tensor_type.elem_type == FLOAT
    assert audit_model(mixed.path).ok
    meta = read_metadata(mixed.path)
    assert meta["deblurrt.precision"] == "int8" and meta["deblurrt.int8.float_dtype"] == "fp16"
    assert read_metadata(plain.path)["deblurrt.int8.float_dtype"] == "fp32"
    # measured like the other precisions: ONNX Runtime CPU, PSNR vs the FP32 output, next to plain INT8
    pairs = synthetic_pairs(2, 64, 96, seed=500)
    blurry = [b for _, b, _ in pairs]
    reference = run_onnx(fp32, blurry, model.pad_multiple)
    scores = {name: np.mean([psnr(o, r) for o, r in zip(run_onnx(path, blurry, model.pad_multiple), reference,
                                                          strict=True)])
              for name, path in (("int8", plain.path), ("int8+fp16", mixed.path))}
    assert scores["int8+fp16"] > 35.0 and abs(scores["int8+fp16"] - scores["int8"]) < 3.0, scores


def test_int8_fp16_for_dla_has_no_fp32_island_and_fp16_io(unet, frames, tmp_path):
    _, fp32 = unet
    options = Int8Options(float_dtype="fp16", float_islands=False, fp16_io=True)
    proto = onnx.load(str(quantize_int8(fp32, tmp_path / "dla.onnx", frames, options).path))
    assert proto.graph.input[0].type.tensor_type.elem_type == FLOAT16
    assert proto.graph.output[0].type.tensor_type.elem_type == FLOAT16
    with pytest.raises(DeblurrtError, match="fp32, fp16"):
        quantize_int8(fp32, tmp_path / "x.onnx", frames, Int8Options(float_dtype="bf16"))


def test_engines_default_to_int8_fp16_and_onnx_files_to_int8(tmp_path):
    checkpoint = tmp_path / "m.safetensors"
    engine = ExportRequest(checkpoint, format="engine", precision="int8")
    triton_trt = ExportRequest(checkpoint, format="triton", triton_platform="tensorrt", precision="int8")
    onnx_file = ExportRequest(checkpoint, format="onnx", precision="int8")
    assert int8_float_dtype(engine) == int8_float_dtype(triton_trt) == "fp16"
    assert int8_float_dtype(onnx_file) == "fp32"
    assert int8_float_dtype(ExportRequest(checkpoint, format="engine", precision="int8", int8_float="fp32")) == "fp32"
    assert precision_label("int8", engine) == "int8+fp16" and precision_label("int8", onnx_file) == "int8"
    assert precision_label("fp16", engine) == "fp16"


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "fp16", "int8_float": "fp16"}, "--precision int8"),
    ({"precision": "int8", "int8_float": "fp32", "format": "engine", "dla": 0, "shape": (64, 96)}, "DLA runs FP16"),
])
def test_int8_float_option_refusals(tiny_model, kwargs, message):
    with pytest.raises(DeblurrtError, match=message):
        run_export(ExportRequest(tiny_model["ckpt"], **kwargs), log=lambda m: None)


def test_export_report_names_int8_fp16(tiny_model, tmp_path):
    out = tmp_path / "m.int8.onnx"
    request = ExportRequest(tiny_model["ckpt"], precision="int8", int8_float="fp16", compare_all=True, out=out,
                            calib_shape=(64, 64), calib_count=2, eval_count=1)
    assert run_export(request, log=lambda m: None) == 0
    rows = {row["precision"]: row for row in json.loads(out.with_name(out.name + ".accuracy.json").read_text())["rows"]}
    assert set(rows) == {"input", "fp32", "fp16", "int8+fp16"}
    assert rows["int8+fp16"]["psnr_vs_fp32"] > 35
    assert read_metadata(out)["deblurrt.int8.float_dtype"] == "fp16"


def test_precision_label_of_model_info():
    from deblurrt.runtime.backends.base import ModelInfo

    info = ModelInfo.from_metadata({"deblurrt.pad_multiple": "8", "deblurrt.precision": "int8",
                                    "deblurrt.int8.float_dtype": "fp16"}, source="test")
    assert info.precision == "int8" and info.precision_label == "int8+fp16"
    assert ModelInfo.from_metadata({"deblurrt.pad_multiple": "8", "deblurrt.precision": "int8"},
                                   source="test").precision_label == "int8"
