"""The model zoo: every architecture's contract, tested on the tiny variants (and on all sizes where cheap)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from deblurrt.errors import CheckpointError
from deblurrt.train.checkpoint import load_model, save_model
from deblurrt.train.complexity import measure_cost
from deblurrt.train.models import BACKBONES, create_model, get_spec, list_models

TINY = [name for name in list_models(include_tiny=True) if get_spec(name).size == "tiny"]
ZOO = list_models()


def test_registry_names_follow_the_scheme():
    pattern = re.compile(r"^(unet|mimo_unet|nafnet)_(nano|small|base)(_prior)?$")
    assert len(ZOO) == 18
    for name in ZOO:
        assert pattern.match(name), name
        spec = get_spec(name)
        assert spec.prior == name.endswith("_prior")
        assert spec.backbone in BACKBONES
    assert len(TINY) == 6


def test_unknown_model_name_suggests_the_closest():
    with pytest.raises(KeyError, match="unet_nano_prior"):
        get_spec("unet_nano_prir")


@pytest.mark.parametrize("name", TINY)
def test_output_matches_odd_input_size_and_is_finite(name):
    model = create_model(name).eval()
    x = torch.rand(2, 3, 37, 53)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    # A residual network at initialisation stays close to its input, but is not the identity.
    assert 0 < (y - x).abs().mean() < 0.5


@pytest.mark.parametrize("name", TINY)
def test_every_parameter_gets_a_gradient(name):
    model = create_model(name).train()
    x = torch.rand(1, 3, 64, 64)
    target = torch.rand(1, 3, 64, 64)
    # MIMO-UNet's coarse heads only train through the multi-scale loss.
    outputs = model(x, all_scales=True) if get_spec(name).backbone == "mimo_unet" else [model(x)]
    loss = sum(torch.nn.functional.l1_loss(o, torch.nn.functional.adaptive_avg_pool2d(target, o.shape[-2:]))
               for o in outputs)
    loss.backward()
    without_gradient = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not without_gradient


@pytest.mark.parametrize("name", [n for n in list_models(include_tiny=True) if not n.endswith("_prior")])
def test_prior_twin_differs_only_by_the_prior_branch(name):
    with torch.device("meta"):
        plain = create_model(name).state_dict()
        prior = create_model(f"{name}_prior")
    prior_state = prior.state_dict()
    branch = {k for k in prior_state if k.startswith(("prior_encoder.", "prior_aggregate.", "spel."))}
    assert branch, "the prior twin has no prior branch"
    rest = {k: v.shape for k, v in prior_state.items() if k not in branch}
    assert rest == {k: v.shape for k, v in plain.items()}
    # SPEL at the bottleneck and at every decoder scale.
    assert {k.split(".")[1] for k in branch if k.startswith("spel.")} >= {"middle", "dec0"}


@pytest.mark.parametrize("name", ["mimo_unet_tiny", "mimo_unet_tiny_prior"])
def test_mimo_unet_multi_scale_outputs(name):
    model = create_model(name).eval()
    x = torch.rand(1, 3, 45, 70)
    with torch.no_grad():
        outputs = model(x, all_scales=True)
        single = model(x)
    assert [o.shape[-2:] for o in outputs] == [(45, 70), (23, 35), (12, 18)]
    assert torch.equal(outputs[0], single)


@pytest.mark.parametrize("name", TINY)
def test_checkpoint_round_trip_is_bit_exact(name, tmp_path):
    model = create_model(name).eval()
    path = save_model(model, tmp_path / f"{name}.safetensors")
    loaded = load_model(path)
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_checkpoint_keeps_overridden_arguments(tmp_path):
    model = create_model("unet_tiny", width=12)
    loaded = load_model(save_model(model, tmp_path / "wide.safetensors"))
    assert loaded.intro.out_channels == 12


def _added_module_starts_as_identity(option: str, prefix: str):
    """A tiny prior UNet with ``option=True`` loads the plain one's weights (only its new ``prefix`` weights
    missing) and then gives the same output; returns (plain, with option, input)."""
    plain = create_model("unet_tiny_prior")
    added = create_model("unet_tiny_prior", **{option: True})
    missing, unexpected = added.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and missing and all(key.startswith(prefix) for key in missing)
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(plain(x), added(x))
    return plain, added, x

def test_global_context_starts_as_the_identity_then_learns(tmp_path):
    """``global_context=True`` adds a module that changes nothing until trained, so it can be added to trained
    weights; after a step its output depends on the whole image, and a checkpoint rebuilds it."""
    torch.manual_seed(0)
    plain, with_context, x = _added_module_starts_as_identity("global_context", "context.")
    loss = (with_context(x) - x.flip(-1)).abs().mean()
    loss.backward()
    assert with_context.context.expand.weight.grad.abs().sum() > 0
    with torch.no_grad():
        for param in with_context.context.parameters():
            param.add_(0.1)
        far = x.clone()
        far[..., :, -16:] = 0.0  # change only the right edge: the context sees it everywhere
        left_plain = (plain(x) - plain(far))[..., :8]
        left_context = (with_context(x) - with_context(far))[..., :8]
    assert left_context.abs().max() > left_plain.abs().max()
    loaded = load_model(save_model(with_context, tmp_path / "context.safetensors"))
    assert loaded.context is not None
    with torch.no_grad():
        assert torch.equal(loaded(x), with_context(x))
    ort = pytest.importorskip("onnxruntime")
    from deblurrt.export.onnx_export import export_onnx

    path = export_onnx(loaded.eval(), tmp_path / "context.onnx", sample_shape=(48, 48))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    frame = torch.rand(1, 3, 64, 96)  # another size than traced (a multiple of the model's pad_multiple, as the
    with torch.no_grad():             # runtime pads frames): the pooling follows the frame
        assert np.abs(session.run(None, {"blurry": frame.numpy()})[0] - loaded(frame).numpy()).max() < 1e-4


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = save_model(create_model("unet_tiny"), tmp_path / "model.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="model.safetensors.*truncated"):
        load_model(path)


def test_mismatched_checkpoint_lists_the_mismatch(tmp_path):
    from safetensors.torch import save_file

    model = create_model("unet_tiny")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["intro.weight"] = torch.zeros(9, 3, 3, 3)
    state.pop("ending.bias")
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path), metadata={"deblurrt.config": json.dumps(model.config)})
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    message = str(error.value)
    assert "bad.safetensors" in message and "ending.bias" in message and "intro.weight" in message


def test_pickle_checkpoints_are_refused(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"a": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_model(path)


def test_small_models_fit_the_jetson_budget():
    """The 'small' size is defined by <= ~40 GMACs per 720p frame, prior included."""
    for name in ZOO:
        if get_spec(name).size == "small":
            assert measure_cost(name).gmacs <= 40.0, name


def test_prior_cost_is_a_fraction_of_the_backbone():
    for name in ZOO:
        if name.endswith("_prior"):
            with_prior, without = measure_cost(name), measure_cost(name.removesuffix("_prior"))
            assert without.gmacs < with_prior.gmacs < 1.5 * without.gmacs, name


def test_models_json_has_exactly_the_documented_keys():
    result = subprocess.run([sys.executable, "-m", "deblurrt", "models", "--json"], capture_output=True,
                            text=True, check=True)
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ZOO
    for row in rows:
        assert set(row) == {"name", "backbone", "prior", "params", "gmacs_720p"}
        assert row["backbone"] in {"unet", "mimo_unet", "nafnet"}
        assert isinstance(row["prior"], bool) and row["params"] > 0 and row["gmacs_720p"] > 0


def test_onnx_export_of_a_nano_model_matches_pytorch(tmp_path):
    """One deployable size, beyond the tiny ones: the graph at a size other than the traced one."""
    ort = pytest.importorskip("onnxruntime")
    from deblurrt.export.onnx_export import export_onnx

    model = create_model("nafnet_nano_prior").eval()
    path = export_onnx(model, tmp_path / "m.onnx", sample_shape=(64, 64))
    x = torch.rand(1, 3, 96, 160)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {"blurry": x.numpy()})[0]
    assert np.abs(actual - expected).max() < 1e-4


def test_blur_descriptor_reads_the_streak_and_starts_as_the_identity():
    """``blur_descriptor=True``: the gradient autocorrelation is the brute-force one, it is long along a
    streak and short across it, and the FiLM starts at zero (trained weights load and give the same output)."""
    import torch.nn.functional as F

    from deblurrt.train.models.layers import BlurDescriptor

    torch.manual_seed(0)
    descriptor = BlurDescriptor([8], radius=5, stride=1)
    x = torch.rand(1, 3, 20, 24)
    grey = x.mean(dim=1)[0]
    gx = grey[:-1, 1:] - grey[:-1, :-1]
    gx = gx - gx.mean()
    height, width = gx.shape
    brute = torch.zeros(11, 11)
    for dy in range(-5, 6):
        for dx in range(-5, 6):
            a = gx[max(0, dy):height + min(0, dy), max(0, dx):width + min(0, dx)]
            b = gx[max(0, -dy):height + min(0, -dy), max(0, -dx):width + min(0, -dx)]
            brute[dy + 5, dx + 5] = (a * b).sum()
    brute[4:7, 4:7] = 0.0  # shifts within one pixel carry the noise: masked
    assert torch.allclose(descriptor.autocorrelation(x)[0, 0], brute / brute.abs().max(), atol=1e-5)  # not flat

    streaked = F.avg_pool2d(torch.rand(1, 3, 96, 96 + 15), (1, 16), stride=1)  # 16 px horizontal box blur
    streak_reader = BlurDescriptor([8], radius=12, stride=1)
    correlation = streak_reader.autocorrelation(streaked)[0, 1]  # y gradients
    assert correlation[12, 12 + 8] > 0.4 and correlation[12 + 8, 12].abs() < 0.2
    # sensor noise changes the zero and one-pixel shifts, not the map the network reads
    noisy = streaked + 0.02 * torch.randn_like(streaked)
    assert (streak_reader.autocorrelation(noisy)[0, 1] - correlation).abs().max() < 0.1
    # a nearly flat image (half a level of noise on grey) has nothing to read: its map stays faint
    flat = 0.5 + (0.5 / 255) * torch.randn(1, 3, 96, 96)
    assert streak_reader.autocorrelation(flat).abs().max() < 0.3
    assert float(correlation.abs().max()) == pytest.approx(1.0)  # the streak is well above the floor

    _, described, frames = _added_module_starts_as_identity("blur_descriptor", "descriptor.")
    (described(frames) - frames.flip(-1)).abs().mean().backward()
    assert all(film.weight.grad.abs().sum() > 0 for film in described.descriptor.films)


def _reach(model: torch.nn.Module, width: int = 256) -> int:
    """The farthest column whose content changes the output's first four columns (a receptive field, measured)."""
    x = torch.rand(1, 3, 32, width)
    with torch.no_grad():
        reference = model(x)
        for column in range(width - 8, 0, -4):
            changed = x.clone()
            changed[..., column:] = 0.0
            if (model(changed) - reference)[..., :4].abs().max() > 0:
                return column
    return 0


def test_coarse_guide_starts_as_the_identity_and_reaches_twice_as_far(tmp_path):
    """``coarse_guide=True``: the trained weights load (only ``guide_intro`` is new) and give the same output; its
    coarse pass is the prior-free twin on the 2x2-averaged input; once the guide's convolution is trained, content
    more than twice as far away reaches an output pixel (long streaks come within reach); checkpoints rebuild it."""
    torch.manual_seed(0)
    _, guided, x = _added_module_starts_as_identity("coarse_guide", "guide_intro.")
    assert guided.multiscale_outputs and not create_model("unet_tiny_prior").multiscale_outputs
    with torch.no_grad():
        guided.guide_intro.weight.normal_(0.0, 0.1)
        full, coarse = guided(x, all_scales=True)
        assert torch.equal(full, guided(x)) and coarse.shape[-2:] == (x.shape[-2] // 2, x.shape[-1] // 2)
        twin = create_model("unet_tiny")
        twin.load_state_dict({k: v for k, v in guided.state_dict().items() if k in twin.state_dict()}, strict=True)
        padded = torch.nn.functional.pad(x, (0, 64 - x.shape[-1], 0, 64 - x.shape[-2]), mode="replicate")
        expected = twin(torch.nn.functional.avg_pool2d(padded, 2))[..., : x.shape[-2] // 2, : x.shape[-1] // 2]
        assert torch.allclose(coarse, expected, atol=1e-6)
    plain = create_model("unet_tiny").eval()
    far = create_model("unet_tiny", coarse_guide=True).eval()
    far.load_state_dict({**plain.state_dict(), "guide_intro.weight": torch.randn_like(far.guide_intro.weight) * 0.1,
                         "guide_intro.bias": far.guide_intro.bias}, strict=True)
    assert _reach(far) > 2 * _reach(plain) > 0
    loaded = load_model(save_model(guided, tmp_path / "guided.safetensors"))
    with torch.no_grad():
        assert torch.equal(loaded(x), guided(x))


def test_coarse_levels_nest_the_guide_without_new_weights(tmp_path):
    """``coarse_levels=2``: the weights of a one-level guided net load unchanged; the half-resolution pass is
    the one-level net's whole computation on the 2x2-averaged input (guided by the quarter pass), the outputs
    come full, half, quarter; the guide reaches farther than one level; the padding multiple doubles."""
    torch.manual_seed(0)
    one = create_model("unet_tiny", coarse_guide=True).eval()
    with torch.no_grad():
        one.guide_intro.weight.normal_(0.0, 0.1)
    two = create_model("unet_tiny", coarse_guide=True, coarse_levels=2).eval()
    two.load_state_dict(one.state_dict(), strict=True)
    assert two.pad_multiple == 2 * one.pad_multiple
    x = torch.rand(1, 3, 2 * two.pad_multiple, 2 * two.pad_multiple)
    with torch.no_grad():
        full, half, quarter = two(x, all_scales=True)
        assert [o.shape[-1] for o in (full, half, quarter)] == [x.shape[-1], x.shape[-1] // 2, x.shape[-1] // 4]
        assert torch.equal(full, two(x))
        expected_half, expected_quarter = one(torch.nn.functional.avg_pool2d(x, 2), all_scales=True)
        assert torch.allclose(half, expected_half, atol=1e-6) and torch.allclose(quarter, expected_quarter, atol=1e-6)
        assert not torch.allclose(full, one(x), atol=1e-4)  # the extra level changes the output
        # an odd size: padded to the doubled multiple, each scale cropped back
        odd = torch.rand(1, 3, 37, 45)
        assert [tuple(o.shape[-2:]) for o in two(odd, all_scales=True)] == [(37, 45), (19, 23), (10, 12)]
    assert _reach(two) > _reach(one)
    loaded = load_model(save_model(two, tmp_path / "two.safetensors"))
    with torch.no_grad():
        assert torch.equal(loaded(x), two(x))
    with pytest.raises(ValueError, match="coarse_levels must be >= 1"):
        create_model("unet_tiny", coarse_guide=True, coarse_levels=0)
    with pytest.raises(ValueError, match="set coarse_guide: true as well"):
        create_model("unet_tiny", coarse_levels=2)
