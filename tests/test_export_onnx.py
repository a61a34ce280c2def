"""The FP32 ONNX stage of 'deblurrt export': simplification, checks, parity against PyTorch, metadata."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deblurrt.errors import DeblurrtError
from deblurrt.train.models import create_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import numpy_helper  # noqa: E402

from deblurrt.export.images import calibration_images, paired_images, synthetic_pair  # noqa: E402
from deblurrt.export.nodes import last_weighted_nodes  # noqa: E402
from deblurrt.export.onnx_export import (  # noqa: E402
    check_onnx,
    export_onnx,
    parity_check,
    read_metadata,
    simplify_onnx,
)


@pytest.fixture(scope="module")
def unet(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("unet_tiny_prior").eval()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "unet.onnx")
    return model, path


def test_simplify_keeps_dynamic_dims_and_metadata(unet, tmp_path):
    model, path = unet
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(path.read_bytes())
    simplified, message = simplify_onnx(copy)
    assert simplified, message
    proto = onnx.load(str(copy))
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    meta = read_metadata(copy)
    assert meta.pop("deblurrt.simplified").startswith("onnxsim")
    assert meta == read_metadata(path)
    check_onnx(copy)
    assert parity_check(model, copy).ok


def test_simplify_failure_is_reported_not_raised(unet, tmp_path, monkeypatch):
    onnxsim = pytest.importorskip("onnxsim")
    _, path = unet
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(path.read_bytes())

    def fail(*args, **kwargs):
        raise RuntimeError("cannot fold this op")

    monkeypatch.setattr(onnxsim, "simplify", fail)
    simplified, message = simplify_onnx(copy)
    assert not simplified
    assert "cannot fold this op" in message and "kept the graph" in message
    assert copy.read_bytes() == path.read_bytes()


def test_parity_passes_on_real_looking_frames_at_another_size(unet):
    model, path = unet
    result = parity_check(model, path)
    assert result.ok, result.format()
    assert result.shape[2:] != (64, 96)  # not the traced size
    assert result.max_abs_error < 1e-4


def test_parity_detects_a_corrupted_weight(unet, tmp_path):
    model, path = unet
    proto = onnx.load(str(path))
    # The last convolution's weight: every output pixel depends on it (no ReLU or gate can hide the change).
    last = next(n for n in proto.graph.node if n.name == last_weighted_nodes(proto.graph)[0])
    target = next(t for t in proto.graph.initializer if t.name == last.input[1])
    values = numpy_helper.to_array(target).copy()
    values.flat[values.size // 2] += 0.05
    target.CopyFrom(numpy_helper.from_array(values, target.name))
    corrupted = tmp_path / "corrupted.onnx"
    onnx.save(proto, str(corrupted))
    result = parity_check(model, corrupted)
    assert not result.ok
    assert result.max_abs_error > 1e-4 and "FAIL" in result.format()


def test_check_onnx_rejects_an_invalid_graph(tmp_path):
    node = onnx.helper.make_node("Add", ["x", "missing"], ["y"])
    graph = onnx.helper.make_graph([node], "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    path = tmp_path / "invalid.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(DeblurrtError, match="failed the ONNX checks"):
        check_onnx(path)


def test_metadata_records_precision_and_versions(unet):
    _, path = unet
    meta = read_metadata(path)
    for key in ("deblurrt.precision", "deblurrt.io_dtype", "torch.version", "onnx.version", "onnxruntime.version"):
        assert meta[key]
    assert meta["deblurrt.precision"] == "fp32"


def test_synthetic_frames_are_deterministic_and_natural_looking():
    blurry, sharp = synthetic_pair(64, 96, seed=3)
    again, _ = synthetic_pair(64, 96, seed=3)
    assert np.array_equal(blurry, again)
    assert blurry.shape == (64, 96, 3) and blurry.dtype == np.float32
    assert 0.0 <= blurry.min() and blurry.max() <= 1.0
    # Blur removes high frequencies: the sharp frame has more gradient energy than the blurry one.
    assert np.abs(np.diff(sharp, axis=1)).mean() > np.abs(np.diff(blurry, axis=1)).mean()
    assert not np.array_equal(synthetic_pair(64, 96, seed=4)[0], blurry)


def test_calibration_and_paired_folders(tmp_path):
    import cv2

    for sub in ("blur", "sharp"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        blurry, sharp = synthetic_pair(40, 50, seed=i)
        for sub, image in (("blur", blurry), ("sharp", sharp)):
            cv2.imwrite(str(tmp_path / sub / f"{i}.png"), (image[..., ::-1] * 255).round().astype(np.uint8))
    frames = calibration_images(tmp_path, 32, 32, count=2)
    assert len(frames) == 2 and frames[0].shape == (32, 32, 3)
    pairs = paired_images(tmp_path, count=2)
    assert [name for name, _, _ in pairs] == ["0.png", "1.png"] and pairs[0][1].shape == (40, 50, 3)
    with pytest.raises(DeblurrtError, match="blur/ and sharp/"):
        paired_images(tmp_path / "blur")
    with pytest.raises(DeblurrtError, match="does not exist"):
        calibration_images(tmp_path / "nowhere", 32, 32, 2)
