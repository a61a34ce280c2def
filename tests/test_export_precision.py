"""FP16 (FP32 islands) and INT8 (TensorRT-compatible Q/DQ) exports, their audit and their accuracy report.

The models have random weights: the numbers say what the conversion costs, not how well a model deblurs.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from deblurrt.errors import DeblurrtError
from deblurrt.train.models import create_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxconverter_common")

from deblurrt.export.accuracy import (  # noqa: E402
    accuracy_report,
    fit_int8_budget,
    format_budget,
    format_sensitivity,
    group_of,
    int8_sensitivity,
    run_onnx,
)
from deblurrt.export.fp16 import convert_fp16  # noqa: E402
from deblurrt.export.images import calibration_images, synthetic_pairs  # noqa: E402
from deblurrt.export.int8 import Int8Options, qdq_summary, quantize_int8  # noqa: E402
from deblurrt.export.nodes import NORM_SCOPE, sensitive_nodes  # noqa: E402
from deblurrt.export.onnx_export import export_onnx, read_metadata, simplify_onnx  # noqa: E402
from deblurrt.export.trt_audit import audit_model  # noqa: E402
from deblurrt.metrics import psnr  # noqa: E402


def _export(name: str, folder):
    torch.manual_seed(0)
    model = create_model(name).eval()
    path = export_onnx(model, folder / f"{name}.onnx", sample_shape=(64, 96))
    simplify_onnx(path)
    return model, path


@pytest.fixture(scope="module")
def nafnet(tmp_path_factory):
    return _export("nafnet_tiny_prior", tmp_path_factory.mktemp("nafnet"))


@pytest.fixture(scope="module")
def unet(tmp_path_factory):
    return _export("unet_tiny_prior", tmp_path_factory.mktemp("unet"))


@pytest.fixture(scope="module")
def pairs():
    return synthetic_pairs(2, 64, 96, seed=500)


@pytest.fixture(scope="module")
def frames():
    return calibration_images(None, 64, 64, count=4)


def _input_types(path) -> dict[str, tuple[str, set[int]]]:
    """(op type, element types of all inputs) of every node, after shape inference."""
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(proto.graph.value_info) + list(proto.graph.input) + list(proto.graph.output)}
    types |= {t.name: t.data_type for t in proto.graph.initializer}
    return {node.name: (node.op_type, {types.get(i) for i in node.input if i}) for node in proto.graph.node}


def _activation_scales(path) -> dict[str, float]:
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return {n.input[1]: float(values[n.input[1]]) for n in graph.node
            if n.op_type == "QuantizeLinear" and n.input[1] in values and values[n.input[1]].size == 1}


# -- FP16 -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("keep_io_types", [True, False])
def test_fp16_keeps_normalisation_in_fp32_and_stays_close_to_fp32(nafnet, pairs, tmp_path, keep_io_types):
    model, fp32 = nafnet
    result = convert_fp16(fp32, tmp_path / "fp16.onnx", keep_io_types=keep_io_types)
    types = _input_types(result.path)
    norm_ops = {name: t for name, (op, t) in types.items() if NORM_SCOPE.search(name)
                and op in {"ReduceMean", "Sqrt", "Div", "Sub", "Mul", "Add"}}
    assert len(norm_ops) >= 5 * 2 * 5  # 5 NAFBlocks x 2 LayerNorms x (ReduceMean x2, Sub, Mul, Sqrt, Div, ...)
    assert all(t == {onnx.TensorProto.FLOAT} for t in norm_ops.values()), norm_ops
    # ...while the convolutions did become FP16.
    conv_types = [t for name, (op, t) in types.items() if op == "Conv"]
    assert sum(t == {onnx.TensorProto.FLOAT16} for t in conv_types) > len(conv_types) // 2
    # No FP32 -> FP16 -> FP32 round trips inside the islands (the squares never pass through FP16).
    proto = onnx.load(str(result.path))
    producers = {out: node for node in proto.graph.node for out in node.output}
    for node in proto.graph.node:
        if node.op_type == "Cast" and node.input[0] in producers and producers[node.input[0]].op_type == "Cast":
            assert not (node.attribute[0].i == onnx.TensorProto.FLOAT
                        and producers[node.input[0]].attribute[0].i == onnx.TensorProto.FLOAT16
                        and types[producers[node.input[0]].name][1] == {onnx.TensorProto.FLOAT})
    report = audit_model(result.path)
    assert report.ok and not report.warnings, report.format()
    meta = read_metadata(result.path)
    assert meta["deblurrt.precision"] == "fp16"
    assert meta["deblurrt.io_dtype"] == ("float32" if keep_io_types else "float16")
    blurry = [b for _, b, _ in pairs]
    reference, output = run_onnx(fp32, blurry, model.pad_multiple), run_onnx(result.path, blurry, model.pad_multiple)
    assert output[0].dtype == np.float32 and np.isfinite(output[0]).all()
    assert min(psnr(o, r) for o, r in zip(output, reference, strict=True)) > 40.0


def test_plain_fp16_conversion_is_what_the_audit_warns_about(nafnet, tmp_path):
    from onnxconverter_common import float16

    _, fp32 = nafnet
    naive = float16.convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    path = tmp_path / "naive.onnx"
    onnx.save(naive, str(path))
    warnings = [f for f in audit_model(path).warnings if "FP16" in f.message]
    assert any(f.op == "ReduceMean" for f in warnings) and any(f.op == "Sqrt" for f in warnings)


# -- INT8 -----------------------------------------------------------------------------------------------------

def test_int8_has_only_symmetric_int8_qdq_with_per_channel_weights(unet, frames, tmp_path):
    _, fp32 = unet
    result = quantize_int8(fp32, tmp_path / "int8.onnx", frames, Int8Options(calib_method="minmax"))
    summary = qdq_summary(result.path)
    assert summary["counts"]["QuantizeLinear"] > 0 and summary["counts"]["DequantizeLinear"] > 0
    assert summary["zero_point_types"] == ["INT8"]
    assert summary["nonzero_zero_points"] == 0
    proto = onnx.load(str(result.path))
    producers = {out: node for node in proto.graph.node for out in node.output}
    inits = {t.name: t for t in proto.graph.initializer}
    checked = 0
    for node in proto.graph.node:
        if node.op_type not in {"Conv", "ConvTranspose"} or node.input[1] not in producers:
            continue
        dq = producers[node.input[1]]
        assert dq.op_type == "DequantizeLinear"
        axis = next(a.i for a in dq.attribute if a.name == "axis")
        weight = inits[dq.input[0]]
        # Output channels: axis 0 of a Conv weight, axis 1 of a ConvTranspose weight (C_in, C_out/g, kH, kW).
        expected_axis = 0 if node.op_type == "Conv" else 1
        assert axis == expected_axis
        assert list(inits[dq.input[1]].dims) == [weight.dims[expected_axis]]
        assert weight.data_type == onnx.TensorProto.INT8
        checked += 1
    assert checked == len(result.quantized_nodes) > 10
    # Activations: per-tensor scales.
    assert summary["per_tensor_activation_qdq"] > 0
    report = audit_model(result.path)
    assert report.ok and not any("zero-point" in f.message for f in report.findings), report.format()
    meta = read_metadata(result.path)
    assert meta["deblurrt.precision"] == "int8" and meta["deblurrt.model"] == "unet_tiny_prior"
    assert {o.domain for o in proto.opset_import} <= {"", "ai.onnx"}


def test_int8_keeps_sensitive_layers_in_float(unet, frames, tmp_path):
    _, fp32 = unet
    result = quantize_int8(fp32, tmp_path / "int8.onnx", frames)
    groups = sensitive_nodes(onnx.load(str(fp32)).graph)
    proto = onnx.load(str(result.path))
    producers = {out: node for node in proto.graph.node for out in node.output}
    for name in groups["first"] + groups["last"]:
        node = next(n for n in proto.graph.node if n.name == name)
        assert producers.get(node.input[1]) is None or producers[node.input[1]].op_type != "DequantizeLinear"
    assert result.excluded["first"] and result.excluded["last"] and result.excluded["residual"]
    none = quantize_int8(fp32, tmp_path / "all.onnx", frames, Int8Options(exclude_groups=()))
    assert len(none.quantized_nodes) > len(result.quantized_nodes)


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_int8_calibration_methods_stay_close_to_fp32(unet, frames, pairs, tmp_path, method):
    model, fp32 = unet
    options = Int8Options(calib_method=method, entropy_bins=256)  # small histogram: the KL search is slow
    result = quantize_int8(fp32, tmp_path / f"{method}.onnx", frames, options)
    minmax = quantize_int8(fp32, tmp_path / "minmax.onnx", frames, Int8Options(calib_method="minmax"))
    # A real method, not minmax under another name: some activation scales differ.
    assert _activation_scales(result.path) != _activation_scales(minmax.path)
    blurry = [b for _, b, _ in pairs]
    output = run_onnx(result.path, blurry, model.pad_multiple)
    reference = run_onnx(fp32, blurry, model.pad_multiple)
    assert np.mean([psnr(o, r) for o, r in zip(output, reference, strict=True)]) > 35.0


def test_int8_rejects_bad_options(unet, frames, tmp_path):
    _, fp32 = unet
    with pytest.raises(DeblurrtError, match="calibration method"):
        quantize_int8(fp32, tmp_path / "x.onnx", frames, Int8Options(calib_method="magic"))
    with pytest.raises(DeblurrtError, match="not in the graph"):
        quantize_int8(fp32, tmp_path / "x.onnx", frames, Int8Options(exclude_nodes=("/no/such/Conv",)))


# -- accuracy report and sensitivity ----------------------------------------------------------------------------

def test_accuracy_report_table_and_json(unet, frames, pairs, tmp_path):
    model, fp32 = unet
    fp16 = convert_fp16(fp32, tmp_path / "fp16.onnx").path
    int8 = quantize_int8(fp32, tmp_path / "int8.onnx", frames).path
    report = accuracy_report({"fp32": fp32, "fp16": fp16, "int8": int8}, pairs, model.pad_multiple,
                             "unet_tiny_prior")
    data = json.loads(report.write_json(tmp_path / "report.json").read_text())
    assert data["model"] == "unet_tiny_prior" and data["eval"]["count"] == 2
    assert [row["precision"] for row in data["rows"]] == ["input", "fp32", "fp16", "int8"]
    for row in data["rows"]:
        assert {"precision", "psnr", "ssim", "psnr_vs_fp32", "max_abs_vs_fp32"} <= set(row)
    rows = {row["precision"]: row for row in data["rows"]}
    assert rows["fp32"]["psnr_vs_fp32"] is None and rows["fp32"]["max_abs_vs_fp32"] == 0.0
    assert rows["fp16"]["psnr_vs_fp32"] > 45 and rows["int8"]["psnr_vs_fp32"] > 35
    assert rows["fp16"]["psnr_vs_fp32"] > rows["int8"]["psnr_vs_fp32"]
    assert 0 < rows["int8"]["ssim"] <= 1
    text = report.format()
    assert "PSNR vs FP32" in text and "int8" in text and "reference" in text
    assert "deblurrt validate" not in text
    # the export's default pairs are drawn shapes: the table says they judge precisions, not deblurring
    assert "deblurrt validate" in dataclasses.replace(report, source="synthetic pairs").format()


def test_sensitivity_ranks_groups_by_psnr_regained(unet, frames, pairs):
    model, fp32 = unet
    rows = int8_sensitivity(fp32, frames, Int8Options(), pairs, model.pad_multiple, group_depth=1)
    assert len(rows) >= 5
    gains = [row["gain_db"] for row in rows]
    assert gains == sorted(gains, reverse=True)
    assert gains[0] > 0.1  # leaving the worst group in float must buy something measurable
    assert all(row["nodes"] for row in rows)
    assert "INT8 sensitivity" in format_sensitivity(rows)


def test_int8_budget_keeps_the_worst_groups_in_float_until_the_cost_fits(unet, frames, pairs):
    model, fp32 = unet
    ranked = int8_sensitivity(fp32, frames, Int8Options(), pairs, model.pad_multiple, group_depth=1)
    useful = [row for row in ranked if row["gain_db"] > 0]
    # A budget of 0 dB cannot be met by INT8 on this model: every allowed group is tried, in ranked order,
    # and the cheapest trial is chosen.
    options, steps = fit_int8_budget(fp32, frames, Int8Options(), pairs, model.pad_multiple, ranked, 0.0, 3)
    assert [step["kept"] for step in steps] == [[row["group"] for row in useful[:n]] for n in range(4)]
    chosen = [step for step in steps if step["chosen"]]
    assert len(chosen) == 1 and chosen[0]["cost_db"] == min(step["cost_db"] for step in steps)
    kept = [row for row in useful if row["group"] in chosen[0]["kept"]]
    assert set(options.exclude_nodes) == {node for row in kept for node in row["nodes"]}
    assert chosen[0]["cost_db"] < steps[0]["cost_db"]  # keeping sensitive layers in float paid off
    assert "NOT within budget" in format_budget(steps, 0.0)
    # A budget the default quantization already meets: one trial, nothing extra kept.
    options, steps = fit_int8_budget(fp32, frames, Int8Options(), pairs, model.pad_multiple, ranked, 10.0, 3)
    assert len(steps) == 1 and steps[0]["kept"] == [] and steps[0]["chosen"] and options.exclude_nodes == ()
    assert steps[0]["cost_db"] == pytest.approx(steps[0]["fp32_psnr"] - steps[0]["psnr"])
    assert "within budget" in format_budget(steps, 10.0)


def test_group_of():
    assert group_of("/encoders.0/encoders.0.0/conv1/Conv", 1) == "/encoders.0"
    assert group_of("/encoders.0/encoders.0.0/conv1/Conv", 2) == "/encoders.0/encoders.0.0"
    assert group_of("/encoders.0/encoders.0.0/conv1/Conv", None) == "/encoders.0/encoders.0.0/conv1/Conv"
