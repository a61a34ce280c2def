"""Tests for deblurrt.export.trt_audit: TensorRT-readiness audit of ONNX graphs (CPU only, no TensorRT)."""

from __future__ import annotations

import io
import re
import warnings
from importlib import resources

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from deblurrt.errors import DeblurrtError  # noqa: E402
from deblurrt.export.trt_audit import AuditReport, audit_model, supported_ops  # noqa: E402

FP16_MESSAGE = "normalisation computed in FP16: keep in FP32"

# TensorRT still imports three experimental ops that ONNX dropped from its registry long ago; they are real
# parser entries (listed "Y" in onnx-tensorrt's matrix), so the test names them instead of skipping silently.
LEGACY_TRT_OPS = frozenset({"ImageScaler", "ParametricSoftplus", "ScaledTanh"})

# Ops the 10.15 matrix marks "N" (or that no parser imports): any of them in the allowlist would be a bug.
UNSUPPORTED_OPS = {
    "Bernoulli",
    "BitShift",
    "BitwiseAnd",
    "CenterCropPad",
    "Col2Im",
    "Compress",
    "ConcatFromSequence",
    "ConvInteger",
    "DFT",
    "Det",
    "DynamicQuantizeLinear",
    "ImageDecoder",
    "MatMulInteger",
    "MaxRoiPool",
    "MaxUnpool",
    "Multinomial",
    "NegativeLogLikelihoodLoss",
    "Optional",
    "QLinearConv",
    "QLinearMatMul",
    "RegexFullMatch",
    "SequenceAt",
    "SequenceConstruct",
    "SoftmaxCrossEntropyLoss",
    "SplitToSequence",
    "StringNormalizer",
    "TfIdfVectorizer",
    "Unique",
}


def _model(nodes, inputs, outputs, initializers=(), opset=17, functions=(), check=True):
    """A small ModelProto; ``check`` runs the ONNX checker so tests never audit a malformed graph."""
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(f.domain, 1) for f in functions]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    if check:
        onnx.checker.check_model(model)
    return model


def _tensor(name, dtype=TensorProto.FLOAT, shape=(1, 4, 8, 8)):
    return helper.make_tensor_value_info(name, dtype, list(shape))


def _ops_with(report: AuditReport, severity: str) -> list[str]:
    return [f.op for f in report.findings if f.severity == severity]


# -- the allowlist ------------------------------------------------------------------------------------------


def test_allowlist_contains_core_image_restoration_ops():
    ops = supported_ops()
    core = {
        "Conv",
        "ConvTranspose",
        "Relu",
        "Sigmoid",
        "Add",
        "Mul",
        "Resize",
        "Pad",
        "DepthToSpace",
        "SpaceToDepth",
        "QuantizeLinear",
        "DequantizeLinear",
        "LayerNormalization",
        "ReduceMean",
        "Pow",
        "Sqrt",
        "Cast",
        "Shape",
        "Gather",
        "Slice",
        "Concat",
        "Einsum",
        "GridSample",
    }
    assert core <= ops
    assert isinstance(ops, frozenset)


def test_allowlist_has_no_bogus_entries():
    ops = supported_ops()
    assert not (UNSUPPORTED_OPS & ops)
    assert all(re.fullmatch(r"[A-Z][A-Za-z0-9]*", op) for op in ops), sorted(ops)
    text = resources.files("deblurrt.export").joinpath("data", "trt_onnx_ops.txt").read_text(encoding="utf-8")
    entries = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert len(entries) == len(set(entries)), "duplicate op lines"
    assert 100 < len(entries) < 250


def test_every_allowlisted_op_is_a_real_onnx_op():
    unknown = {op for op in supported_ops() if not onnx.defs.has(op)}
    assert unknown == LEGACY_TRT_OPS


def test_data_file_header_names_its_source():
    text = resources.files("deblurrt.export").joinpath("data", "trt_onnx_ops.txt").read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for needle in ("onnx/onnx-tensorrt", "docs/operators.md", "TensorRT 10.15", "2026-11-24"):
        assert needle in header
    assert "# note: Resize" in header and "# note: Pad" in header


# -- a real exported model ----------------------------------------------------------------------------------


def test_torch_export_with_pixel_shuffle_and_bilinear_passes():
    torch = pytest.importorskip("torch")

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 12, 3, padding=1)
            self.shuffle = torch.nn.PixelShuffle(2)

        def forward(self, x):
            y = self.shuffle(torch.relu(self.conv(x)))
            return torch.nn.functional.interpolate(y, scale_factor=0.5, mode="bilinear", align_corners=False)

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation chatter is not under test
        torch.onnx.export(
            Tiny().eval(),
            (torch.randn(1, 3, 16, 16),),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h2", 3: "w2"}},
        )
    report = audit_model(onnx.load_from_string(buffer.getvalue()))

    assert report.ok, report.format()
    assert report.findings == []
    assert report.opset == 17
    assert {"Conv", "Relu", "DepthToSpace", "Resize"} <= set(report.op_counts)
    # Dynamic dims are information for the engine profile, never findings.
    assert report.dynamic_inputs == {"x": ("n", 3, "h", "w")}
    text = report.format()
    assert "OK" in text and "DepthToSpace" in text and "x: [n, 3, h, w]" in text


# -- op coverage and domains --------------------------------------------------------------------------------


def test_unsupported_op_fails_and_is_named():
    node = helper.make_node("Unique", ["x"], ["y"], name="dedupe")
    model = _model([node], [_tensor("x", shape=(5,))], [_tensor("y", shape=(None,))])
    report = audit_model(model)
    assert not report.ok
    [finding] = report.errors
    assert (finding.op, finding.node) == ("Unique", "dedupe")
    assert "Unique" in report.format() and "FAIL" in report.format()


def test_custom_domain_op_needs_a_plugin():
    node = helper.make_node("FancyBlur", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g", [_tensor("x")], [_tensor("y")])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    report = audit_model(model)
    assert not report.ok
    assert report.errors[0].op == "com.example::FancyBlur"
    assert "plugin" in report.errors[0].message
    assert report.op_counts == {"com.example::FancyBlur": 1}


def test_ai_onnx_domain_spelling_counts_as_default():
    node = helper.make_node("Relu", ["x"], ["y"], domain="ai.onnx")
    graph = helper.make_graph([node], "g", [_tensor("x")], [_tensor("y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert audit_model(model).ok


def test_local_function_body_is_audited_instead_of_the_call():
    body = [helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Unique", ["r"], ["b"])]
    function = helper.make_function(
        "com.example", "Block", ["a"], ["b"], body, opset_imports=[helper.make_opsetid("", 17)]
    )
    call = helper.make_node("Block", ["x"], ["y"], domain="com.example", name="block0")
    model = _model([call], [_tensor("x", shape=(5,))], [_tensor("y", shape=(None,))], functions=[function])
    report = audit_model(model)
    assert _ops_with(report, "error") == ["Unique"]
    assert "block0[function com.example::Block]" in report.errors[0].node


# -- control flow -------------------------------------------------------------------------------------------


def test_if_node_is_flagged_and_its_branches_are_audited():
    then_graph = helper.make_graph(
        [helper.make_node("Unique", ["x"], ["t"])], "then", [], [_tensor("t", shape=(None,))]
    )
    else_graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e"])], "else", [], [_tensor("e", shape=(5,))]
    )
    node = helper.make_node(
        "If", ["cond"], ["y"], name="branch", then_branch=then_graph, else_branch=else_graph
    )
    model = _model(
        [node],
        [_tensor("cond", TensorProto.BOOL, ()), _tensor("x", shape=(5,))],
        [_tensor("y", shape=(None,))],
        check=False,  # branch outputs differ in shape on purpose; TensorRT's rules are what is under test
    )
    report = audit_model(model)
    assert sorted(_ops_with(report, "error")) == ["If", "Unique"]
    unique = next(f for f in report.errors if f.op == "Unique")
    assert unique.node.startswith("branch.then_branch/")
    assert report.op_counts["If"] == 1 and report.op_counts["Identity"] == 1


def test_loop_node_is_flagged():
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Relu", ["v_in"], ["v_out"]),
        ],
        "body",
        [
            _tensor("i", TensorProto.INT64, ()),
            _tensor("cond_in", TensorProto.BOOL, ()),
            _tensor("v_in"),
        ],
        [_tensor("cond_out", TensorProto.BOOL, ()), _tensor("v_out")],
    )
    trip = numpy_helper.from_array(np.array(3, dtype=np.int64), "trip")
    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node("Loop", ["trip", "cond", "x"], ["y"], body=body)
    report = audit_model(_model([node], [_tensor("x")], [_tensor("y")], [trip, cond]))
    assert _ops_with(report, "error") == ["Loop"]
    assert "control flow" in report.errors[0].message


# -- quantization -------------------------------------------------------------------------------------------


def _dq_conv_model(zero_point, zp_dtype=np.int8, scale=None):
    """Conv whose int8 weights go through a per-channel DequantizeLinear, as INT8 Q/DQ exports do."""
    weights = numpy_helper.from_array(np.ones((4, 4, 3, 3), dtype=np.int8), "w_q")
    scale = np.full(4, 0.02, dtype=np.float32) if scale is None else np.asarray(scale, dtype=np.float32)
    initializers = [weights, numpy_helper.from_array(scale, "w_scale")]
    inputs = ["w_q", "w_scale"]
    if zero_point is not None:
        initializers.append(numpy_helper.from_array(np.full(4, zero_point, dtype=zp_dtype), "w_zp"))
        inputs.append("w_zp")
    nodes = [
        helper.make_node("DequantizeLinear", inputs, ["w"], name="dq_w", axis=0),
        helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
    ]
    return _model(nodes, [_tensor("x")], [_tensor("y")], initializers)


def test_dequantize_with_zero_point_zero_passes():
    report = audit_model(_dq_conv_model(0))
    assert report.ok and report.findings == []


def test_dequantize_with_non_zero_zero_point_is_an_error():
    report = audit_model(_dq_conv_model(3))
    assert not report.ok
    [finding] = report.errors
    assert (finding.op, finding.node) == ("DequantizeLinear", "dq_w")
    assert "zero-point" in finding.message and "3" in finding.message


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"zero_point": 0, "zp_dtype": np.uint8}, "UINT8"),
        ({"zero_point": 0, "scale": [0.02, -0.02, 0.02, 0.02]}, "positive"),
        ({"zero_point": 0, "scale": [0.02, 0.02]}, "per-channel"),
    ],
)
def test_dequantize_trt_incompatibilities(kwargs, needle):
    model = _dq_conv_model(**kwargs)
    report = audit_model(model)
    assert not report.ok
    assert any(needle in f.message for f in report.errors), report.format()


def test_quantize_without_zero_point_is_uint8_and_rejected():
    scale = numpy_helper.from_array(np.array(0.1, dtype=np.float32), "s")
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["q"], name="q_in")
    q_out = helper.make_tensor_value_info("q", TensorProto.UINT8, [1, 4, 8, 8])
    report = audit_model(_model([node], [_tensor("x")], [q_out], [scale]))
    assert _ops_with(report, "error") == ["QuantizeLinear"]
    assert "uint8" in report.errors[0].message


def test_symmetric_int8_qdq_pair_passes():
    initializers = [
        numpy_helper.from_array(np.array(0.1, dtype=np.float32), "s"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), "zp"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"]),
    ]
    assert audit_model(_model(nodes, [_tensor("x")], [_tensor("y")], initializers)).findings == []


# -- FP16 normalisation risk --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [TensorProto.FLOAT16, TensorProto.FLOAT])
def test_reduce_mean_in_fp16_warns_only_in_fp16(dtype):
    node = helper.make_node("ReduceMean", ["x"], ["m"], name="mean", axes=[2, 3], keepdims=1)
    model = _model([node], [_tensor("x", dtype)], [_tensor("m", dtype, (1, 4, 1, 1))])
    report = audit_model(model)
    assert report.ok  # a precision risk, not a parse failure
    fp16_warnings = [f for f in report.warnings if FP16_MESSAGE in f.message]
    if dtype == TensorProto.FLOAT16:
        assert [(f.op, f.node) for f in fp16_warnings] == [("ReduceMean", "mean")]
    else:
        assert fp16_warnings == []


def test_fp16_warning_follows_inferred_types_through_the_graph():
    # Only the graph input is typed; ONNX shape inference must carry float16 to the Pow/Sqrt inputs.
    two = numpy_helper.from_array(np.array(2.0, dtype=np.float16), "two")
    nodes = [
        helper.make_node("Sub", ["x", "x"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["p"]),
        helper.make_node("Sqrt", ["p"], ["y"]),
    ]
    model = _model(nodes, [_tensor("x", TensorProto.FLOAT16)], [_tensor("y", TensorProto.FLOAT16)], [two])
    report = audit_model(model)
    assert sorted(f.op for f in report.warnings if FP16_MESSAGE in f.message) == ["Pow", "Sqrt"]


# -- Resize and Pad -----------------------------------------------------------------------------------------


def _resize_model(scales=(1.0, 1.0, 2.0, 2.0), **attrs):
    initializers = [numpy_helper.from_array(np.asarray(scales, dtype=np.float32), "scales")]
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", **attrs)
    # antialias and keep_aspect_ratio_policy only exist from Resize-18 on.
    opset = 18 if {"antialias", "keep_aspect_ratio_policy"} & set(attrs) else 17
    output = _tensor("y", shape=(None, None, None, None))
    return _model([node], [_tensor("x")], [output], initializers, opset=opset)


@pytest.mark.parametrize(
    ("attrs", "scales", "severity", "needle"),
    [
        (
            {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"},
            None,
            "error",
            "rejected",
        ),
        (
            {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"},
            None,
            "error",
            "rejected",
        ),
        ({"mode": "nearest", "antialias": 1}, None, "error", "antialias"),
        ({"mode": "nearest", "keep_aspect_ratio_policy": "not_larger"}, None, "error", "stretch"),
        ({"mode": "cubic", "cubic_coeff_a": -0.6}, None, "warning", "cubic_coeff_a=-0.6"),
        ({"mode": "cubic"}, (1.0, 2.0, 2.0, 2.0), "error", "2 innermost"),
    ],
)
def test_resize_settings_trt_rejects_or_treats_differently(attrs, scales, severity, needle):
    model = _resize_model(**attrs) if scales is None else _resize_model(scales, **attrs)
    report = audit_model(model)
    matching = [f for f in report.findings if f.severity == severity and needle in f.message]
    assert matching and matching[0].op == "Resize", report.format()


@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_resize_modes_trt_supports_pass(mode):
    report = audit_model(_resize_model(mode=mode, coordinate_transformation_mode="pytorch_half_pixel"))
    assert report.findings == []


def test_cubic_with_pytorch_coefficient_is_only_the_generic_cubic_warning():
    report = audit_model(_resize_model(mode="cubic", cubic_coeff_a=-0.75))
    [finding] = report.findings
    assert finding.severity == "warning" and "cubic_coeff_a" not in finding.message


@pytest.mark.parametrize(
    ("mode", "ok"), [("reflect", True), ("edge", True), ("wrap", True), ("mirror", False)]
)
def test_pad_modes(mode, ok):
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64), "pads")
    node = helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode)
    model = _model([node], [_tensor("x")], [_tensor("y", shape=(1, 4, 10, 10))], [pads], opset=19, check=ok)
    report = audit_model(model)
    assert report.ok is ok
    if not ok:
        assert "mirror" in report.errors[0].message


# -- model-level checks and inputs --------------------------------------------------------------------------


def test_old_opset_is_a_warning():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_tensor("x")], [_tensor("y")], opset=13)
    report = audit_model(model)
    assert report.ok
    assert [(f.severity, f.op) for f in report.findings] == [("warning", "model")]
    assert "opset 13" in report.findings[0].message


def test_reduce_with_runtime_axes_is_an_error():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], start=2),
        helper.make_node("ReduceSum", ["x", "s"], ["y"], keepdims=1),
    ]
    model = _model(nodes, [_tensor("x")], [_tensor("y", shape=(None, None, None, None))])
    assert _ops_with(audit_model(model), "error") == ["ReduceSum"]


def test_audit_accepts_a_path(tmp_path):
    path = tmp_path / "relu.onnx"
    onnx.save(_model([helper.make_node("Relu", ["x"], ["y"])], [_tensor("x")], [_tensor("y")]), path)
    assert audit_model(path).ok
    assert audit_model(str(path)).op_counts == {"Relu": 1}


def test_missing_or_garbage_file_is_a_user_error(tmp_path):
    with pytest.raises(DeblurrtError, match="does not exist"):
        audit_model(tmp_path / "nope.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x07\x08not a model\xff\xff")
    with pytest.raises(DeblurrtError, match="not a readable ONNX model"):
        audit_model(garbage)
