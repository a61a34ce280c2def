"""Every tiny variant (and the UNet with its coarse guide) exports to ONNX (opset 17, dynamic H and W), matches PyTorch in ONNX Runtime, carries
its metadata, and uses only operators TensorRT's ONNX parser supports."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deblurrt.train.models import create_model, get_spec, list_models

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from deblurrt.export.onnx_export import export_onnx, read_metadata  # noqa: E402
from deblurrt.export.trt_audit import audit_model  # noqa: E402

TINY = [name for name in list_models(include_tiny=True) if get_spec(name).size == "tiny"]
# every tiny variant as registered, and the UNet with its coarse guide (average pooling, bilinear upsampling and
# shared weights in one graph), one level and two nested: variant id -> (registry name, options)
VARIANTS = {name: (name, {}) for name in TINY} | {
    "unet_tiny_prior+coarse_guide": ("unet_tiny_prior", {"coarse_guide": True}),
    "unet_tiny_prior+coarse_levels2": ("unet_tiny_prior", {"coarse_guide": True, "coarse_levels": 2})}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    paths = {}
    for variant, (name, options) in VARIANTS.items():
        torch.manual_seed(0)
        model = create_model(name, **options).eval()
        if options.get("coarse_guide"):
            with torch.no_grad():  # as if trained: the zero-initialised guide would hide the coarse pass
                model.guide_intro.weight.normal_(0.0, 0.1)
        paths[variant] = (model, export_onnx(model, folder / f"{variant}.onnx", sample_shape=(64, 96)))
    return paths


@pytest.mark.parametrize("variant", VARIANTS)
def test_onnx_matches_pytorch_at_other_sizes(variant, exported):
    model, path = exported[variant]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    multiple = model.pad_multiple
    for batch, height, width in [(1, 2 * multiple, 3 * multiple), (2, 4 * multiple, multiple)]:
        x = torch.rand(batch, 3, height, width)
        with torch.no_grad():
            expected = model(x).numpy()
        actual = session.run(None, {"blurry": x.numpy()})[0]
        assert actual.shape == expected.shape
        assert np.abs(actual - expected).max() < 1e-4


@pytest.mark.parametrize("variant", VARIANTS)
def test_graph_is_opset17_dynamic_and_carries_metadata(variant, exported):
    model, path = exported[variant]
    proto = onnx.load(str(path))
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {17}
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    meta = read_metadata(path)
    assert meta["deblurrt.model"] == VARIANTS[variant][0]
    assert int(meta["deblurrt.pad_multiple"]) == model.pad_multiple
    assert json.loads(meta["deblurrt.config"]) == model.config
    assert meta["deblurrt.input"] == "blurry" and meta["deblurrt.output"] == "sharp"


@pytest.mark.parametrize("variant", VARIANTS)
def test_graph_uses_only_tensorrt_supported_ops(variant, exported):
    _, path = exported[variant]
    report = audit_model(path)
    assert report.ok, report.format()
