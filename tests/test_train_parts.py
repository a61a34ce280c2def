"""The trainer's parts on their own: losses, distillation links, schedule, EMA, resumable state."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from scripts_loader import load_script

from deblurrt.train.distill import DistillationHeads, DistillWeights, distillation_loss
from deblurrt.train.losses import (
    charbonnier,
    deblur_loss,
    feature_distance,
    frequency_l1,
    psnr_loss,
    standardise_channels,
)
from deblurrt.train.models import create_model
from deblurrt.train.trainer import load_prior_init, lr_lambda, update_ema

REPO = Path(__file__).resolve().parents[1]


def test_charbonnier_is_a_smooth_l1():
    a, b = torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.5)
    assert charbonnier(a, b, eps=1e-6).item() == pytest.approx(0.5, rel=1e-5)
    assert charbonnier(a, a, eps=1e-3).item() == pytest.approx(1e-3)


def test_psnr_loss_is_minus_psnr_per_sample_and_weighs_small_errors_up():
    target = torch.zeros(2, 3, 8, 8)
    pred = target.clone()
    pred[0] += 0.1   # 20 dB
    pred[1] += 0.01  # 40 dB
    assert psnr_loss(pred, target).item() == pytest.approx(-(20 + 40) / 2 / 100, abs=5e-4)  # eps: 60 dB cap
    pred.requires_grad_(True)
    psnr_loss(pred, target).backward()
    # per pixel, the 40 dB sample pulls 10x harder than the 20 dB one (a pixel mean of squares: 10x weaker)
    assert pred.grad[1].abs().mean() / pred.grad[0].abs().mean() == pytest.approx(10, rel=2e-2)
    total, parts = deblur_loss(pred.detach(), target, pixel="psnr", frequency_weight=0)
    assert total.item() == pytest.approx(-0.3, abs=5e-4) and parts["pixel"] == pytest.approx(total.item())
    with pytest.raises(ValueError, match="psnr"):
        deblur_loss(pred.detach(), target, pixel="l2")


def test_psnr_cap_stops_restored_samples_from_dominating():
    target = torch.zeros(2, 3, 8, 8)
    pred = target.clone()
    pred[0] += 0.1   # 20 dB
    pred[1] += 0.01  # 40 dB
    # with a 30 dB cap the floor 1e-3 joins every MSE: the 40 dB sample counts as 29.6 dB, the 20 dB one 19.6 ...
    capped, _ = deblur_loss(pred, target, pixel="psnr", frequency_weight=0, psnr_cap_db=30)
    expected = -(10 * math.log10(1 / 1.1e-2) + 10 * math.log10(1 / 1.1e-3)) / 2 / 100
    assert capped.item() == pytest.approx(expected, abs=1e-5)
    # ... and per pixel both pull equally hard (the 40 dB sample pulls 10x harder without the cap)
    pred.requires_grad_(True)
    deblur_loss(pred, target, pixel="psnr", frequency_weight=0, psnr_cap_db=30)[0].backward()
    ratio = pred.grad[1].abs().mean() / pred.grad[0].abs().mean()
    assert ratio == pytest.approx(1.0, rel=2e-2)
    with pytest.raises(ValueError, match="psnr_cap_db"):
        deblur_loss(pred.detach(), target, pixel="psnr", psnr_cap_db=5)


def test_frequency_loss_sees_what_pixel_means_hide():
    flat = torch.full((1, 1, 16, 16), 0.5)
    stripes = flat.clone()
    stripes[..., ::2, :] += 0.1
    stripes[..., 1::2, :] -= 0.1
    assert frequency_l1(flat, flat).item() == 0
    assert frequency_l1(stripes, flat).item() > 0.005


def test_multiscale_loss_uses_every_output():
    target = torch.rand(1, 3, 32, 32)
    outputs = [target.clone(), torch.nn.functional.avg_pool2d(target, 2), torch.zeros(1, 3, 8, 8)]
    loss_last_wrong, _ = deblur_loss(outputs, target, frequency_weight=0)
    outputs[2] = torch.nn.functional.avg_pool2d(target, 4)
    loss_all_right, _ = deblur_loss(outputs, target, frequency_weight=0)
    assert loss_last_wrong > loss_all_right + 0.05


def test_feature_distance_ignores_scale_but_not_pattern():
    teacher = torch.randn(2, 24, 8, 8)
    assert feature_distance(teacher * 100 + 3, teacher).item() < 1e-6
    assert feature_distance(torch.randn(2, 24, 8, 8), teacher).item() > 0.5
    standardised = standardise_channels(teacher)
    assert standardised.mean(1).abs().max() < 1e-5


def test_cross_level_links_can_be_ablated():
    student = [torch.randn(1, c, s, s) for c, s in [(8, 16), (8, 8), (8, 4), (8, 2)]]
    teacher = [torch.randn(1, c, s, s) for c, s in [(24, 16), (40, 8), (112, 4), (320, 2)]]
    heads = DistillationHeads((8, 8, 8, 8), (24, 40, 112, 320))
    predictions = heads(student)
    assert [p.shape for p in predictions["cross"]] == [t.shape for t in teacher[1:]]
    full, parts = distillation_loss(predictions, teacher, DistillWeights())
    same_only, same_parts = distillation_loss(predictions, teacher, DistillWeights(cross_level_weight=0,
                                                                                   fused_weight=0))
    assert {"cross0to1", "cross2to3", "fused"} <= set(parts)
    assert not any(k.startswith(("cross", "fused")) for k in same_parts)
    assert full > same_only


def test_distillation_makes_the_student_match_the_teacher():
    """A few steps of stage-1 training reduce the loss on a fixed batch (the links are learnable)."""
    from deblurrt.train.teacher import build_teacher

    teacher = build_teacher("tiny")
    model = create_model("unet_tiny_prior")
    heads = DistillationHeads(model.prior_encoder.feature_channels, teacher.feature_channels)
    params = list(model.prior_encoder.parameters()) + list(heads.parameters())
    optimizer = torch.optim.Adam(params, lr=3e-3)
    sharp = torch.rand(2, 3, 64, 64)
    blur = torch.nn.functional.avg_pool2d(sharp, 5, stride=1, padding=2)
    losses = []
    for _ in range(30):
        loss, _ = distillation_loss(heads(model.prior_encoder(blur)), teacher(sharp), DistillWeights())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_schedule_warms_up_then_decays_to_the_floor():
    factor = lr_lambda(warmup_steps=10, total_steps=110, min_ratio=0.01)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.01 + 0.99 * 0.5)
    assert factor(110) == pytest.approx(0.01) and factor(500) == pytest.approx(0.01)
    values = [factor(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_ema_moves_toward_the_weights():
    model = torch.nn.Linear(2, 2)
    ema = torch.nn.Linear(2, 2)
    with torch.no_grad():
        ema.weight.zero_()
        model.weight.fill_(1.0)
    update_ema(ema, model, decay=0.9)
    assert torch.allclose(ema.weight, torch.full_like(ema.weight, 0.1))


def test_prior_init_copies_only_the_student(tmp_path):
    from deblurrt.errors import DeblurrtError
    from deblurrt.train.checkpoint import save_model

    source = create_model("unet_tiny_prior")
    path = save_model(source, tmp_path / "stage1.safetensors")
    torch.manual_seed(1)
    target = create_model("unet_tiny_prior")
    assert load_prior_init(target, str(path)) > 0
    for key, value in source.state_dict().items():
        same = torch.equal(value, target.state_dict()[key])
        assert same == (key.startswith("prior_encoder.") or value.abs().sum() == 0 or
                        torch.equal(value, torch.ones_like(value))), key
    with pytest.raises(DeblurrtError, match="has no prior"):
        load_prior_init(create_model("unet_tiny"), str(path))


def test_training_state_round_trip(tmp_path):
    from deblurrt.train.state import load_training_state, save_training_state

    model = create_model("nafnet_tiny")
    ema = create_model("nafnet_tiny")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(1, 3, 16, 16)).mean().backward()
    optimizer.step()
    torch.manual_seed(123)
    save_training_state(tmp_path / "s.safetensors", step=7, model=model, ema=ema, optimizer=optimizer,
                        extra={"best_psnr": 30.5})
    expected_random = torch.rand(3)

    model2, ema2 = create_model("nafnet_tiny"), create_model("nafnet_tiny")
    optimizer2 = torch.optim.AdamW(model2.parameters(), lr=1e-3)
    meta = load_training_state(tmp_path / "s.safetensors", model=model2, ema=ema2, optimizer=optimizer2)
    assert meta["step"] == 7 and meta["extra"]["best_psnr"] == 30.5
    assert torch.equal(torch.rand(3), expected_random)
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    s1, s2 = optimizer.state_dict()["state"], optimizer2.state_dict()["state"]
    assert s1.keys() == s2.keys()
    for key in s1:
        for name in s1[key]:
            assert torch.equal(torch.as_tensor(s1[key][name]), torch.as_tensor(s2[key][name]))
    assert not math.isnan(meta["extra"]["best_psnr"])


def test_model_init_continues_from_all_weights_of_the_same_model(tmp_path):
    from deblurrt.errors import DeblurrtError
    from deblurrt.train.checkpoint import save_model
    from deblurrt.train.trainer import load_weights

    source = create_model("nafnet_tiny_prior")
    path = save_model(source, tmp_path / "a.safetensors")
    torch.manual_seed(5)
    target = create_model("nafnet_tiny_prior")
    load_weights(target, str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key]), key
    # a no-prior twin starts from the prior model's backbone (the prior-vs-twin comparison from one point)
    twin = create_model("nafnet_tiny")
    load_weights(twin, str(path))
    for key, value in twin.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key
    # but a prior model cannot start from a no-prior checkpoint (its prior would stay random), nor another backbone
    twin_path = save_model(twin, tmp_path / "twin.safetensors")
    with pytest.raises(DeblurrtError, match="same model"):
        load_weights(create_model("nafnet_tiny_prior"), str(twin_path))
    with pytest.raises(DeblurrtError, match="same model"):
        load_weights(create_model("unet_tiny"), str(path))



def test_model_init_adds_identity_modules_to_trained_weights(tmp_path):
    """``model.args={global_context: true}`` with ``model.init`` of a model without it: every trained weight
    loads, the new module starts as the identity, so the output is the checkpoint's."""
    from deblurrt.errors import DeblurrtError
    from deblurrt.train.checkpoint import save_model
    from deblurrt.train.trainer import load_weights

    source = create_model("unet_tiny_prior")
    path = save_model(source, tmp_path / "plain.safetensors")
    x = torch.rand(1, 3, 32, 48)
    for option in ("global_context", "blur_descriptor", "coarse_guide"):
        target = create_model("unet_tiny_prior", **{option: True})
        load_weights(target, str(path))
        with torch.no_grad():
            assert torch.equal(target(x), source(x)), option
    # other argument changes are still refused
    with pytest.raises(DeblurrtError, match="same model"):
        load_weights(create_model("unet_tiny_prior", global_context=True, middle_depth=3), str(path))
    # and a run continuing from weights WITH a context keeps it unless told otherwise
    from deblurrt.train.trainer import inherit_identity_options

    with_context = save_model(create_model("unet_tiny_prior", global_context=True), tmp_path / "context.safetensors")
    assert inherit_identity_options({}, str(with_context)) == {"global_context": True}
    assert inherit_identity_options({"global_context": False}, str(with_context)) == {}
    assert inherit_identity_options({}, str(path)) == {}
    # the coarse guide's nesting adds no weights: one level's weights start a two-level net, whose checkpoint
    # then continues two levels deep unless told otherwise
    one = create_model("unet_tiny_prior", coarse_guide=True)
    one_path = save_model(one, tmp_path / "one.safetensors")
    two = create_model("unet_tiny_prior", coarse_guide=True, coarse_levels=2)
    load_weights(two, str(one_path))
    assert all(torch.equal(a, b) for a, b in zip(two.state_dict().values(), one.state_dict().values(), strict=True))
    two_path = save_model(two, tmp_path / "two.safetensors")
    assert inherit_identity_options({}, str(two_path)) == {"coarse_guide": True, "coarse_levels": 2}
    assert inherit_identity_options({"coarse_levels": 1}, str(two_path)) == {"coarse_guide": True}
    with pytest.raises(DeblurrtError, match="other arguments"):
        load_weights(create_model("unet_tiny_prior", coarse_guide=True, coarse_levels=2, middle_depth=3), str(one_path))


def test_checkpoint_config_is_read_from_the_header_alone(tmp_path):
    from deblurrt.errors import CheckpointError
    from deblurrt.train.checkpoint import read_checkpoint, read_checkpoint_config, save_model

    path = save_model(create_model("unet_tiny_prior", global_context=True), tmp_path / "model.safetensors",
                      extra_metadata={"deblurrt.step": "7"})
    assert read_checkpoint_config(path) == read_checkpoint(path)[::2]
    assert read_checkpoint_config(path)[0]["args"]["global_context"] is True
    # the header alone is enough: a file cut after its header still gives the config
    header_end = 8 + int.from_bytes(path.read_bytes()[:8], "little")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:header_end + 10])
    assert read_checkpoint_config(cut)[1]["deblurrt.step"] == "7"
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match="bad header size"):
        read_checkpoint_config(garbage)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_checkpoint_config(tmp_path / "absent.safetensors")


def test_ema_warm_up_forgets_the_initialisation():
    from deblurrt.train.trainer import ema_decay_at

    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(10_000, 0.999) == 0.999
    remaining = 1.0
    for step in range(1000):
        remaining *= ema_decay_at(step, 0.999)
    assert remaining < 0.01  # vs 0.999 ** 1000 = 0.37 without warm-up


def test_soup_is_the_weighted_mean_of_one_architecture(tmp_path):
    from deblurrt.errors import CheckpointError
    from deblurrt.train.checkpoint import average_checkpoints, save_model

    torch.manual_seed(0)
    first, second = create_model("unet_tiny_prior"), create_model("unet_tiny_prior")
    save_model(first, tmp_path / "a.safetensors")
    save_model(second, tmp_path / "b.safetensors")
    soup = average_checkpoints([tmp_path / "a.safetensors", tmp_path / "b.safetensors"], [1.0, 3.0])
    for name, tensor in soup.state_dict().items():
        a, b = first.state_dict()[name], second.state_dict()[name]
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, 0.25 * a + 0.75 * b)
        else:
            assert torch.equal(tensor, a)
    different = create_model("unet_tiny")
    save_model(different, tmp_path / "c.safetensors")
    with pytest.raises(CheckpointError, match="expected the architecture"):
        average_checkpoints([tmp_path / "a.safetensors", tmp_path / "c.safetensors"])
    with pytest.raises(CheckpointError, match="weights"):
        average_checkpoints([tmp_path / "a.safetensors", tmp_path / "b.safetensors"], [1.0])
    with pytest.raises(CheckpointError, match="weights must be"):
        average_checkpoints([tmp_path / "a.safetensors", tmp_path / "b.safetensors"], [float("nan"), 1.0])


def test_prior_bypass_turns_a_prior_model_into_its_twin(tmp_path):

    from deblurrt.train.checkpoint import save_model
    from deblurrt.train.trainer import load_weights

    prior_bypass = load_script("prior_bypass")
    torch.manual_seed(0)
    model = create_model("unet_tiny_prior").eval()
    with torch.no_grad():  # a trained-looking modulation: the prior changes the output
        for name, parameter in model.named_parameters():
            if ".scale." in name or ".shift." in name:
                parameter.normal_(std=0.3)
    path = tmp_path / "prior.safetensors"
    save_model(model, path)
    twin = create_model("unet_tiny").eval()
    load_weights(twin, str(path))  # the twin takes the prior model's backbone
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(model(image), twin(image), atol=1e-4)
        spels = sum(isinstance(m, prior_bypass.SemanticAttentionTransform) for m in model.modules())
        assert spels >= 1 and prior_bypass.bypass_prior(model) == spels
        torch.testing.assert_close(model(image), twin(image), atol=1e-6, rtol=0)
    assert prior_bypass.main([str(tmp_path / "prior.safetensors"), str(tmp_path / "out.safetensors")]) == 0
    assert prior_bypass.main([str(tmp_path / "missing.safetensors"), str(tmp_path / "x.safetensors")]) == 2
    save_model(twin, tmp_path / "twin.safetensors")
    assert prior_bypass.main([str(tmp_path / "twin.safetensors"), str(tmp_path / "y.safetensors")]) == 2


def test_coarse_guide_trains_its_half_resolution_output_as_a_second_scale():
    """With ``coarse_guide`` the deblurring loss also scores the coarse pass against the 2x2-averaged target
    (weighted by ``loss.scale_weights[1]``): the loss moves with that weight, and without the option it does not."""
    from deblurrt.train.config import TrainConfig
    from deblurrt.train.trainer import TrainingModule

    torch.manual_seed(0)
    blur, sharp = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)

    def loss(model, coarse_weight: float) -> float:
        config = TrainConfig()
        config.loss.scale_weights = (1.0, coarse_weight)
        module = TrainingModule(model, "deblur", config, None, None)
        with torch.no_grad():
            return float(module(blur, sharp)[0])

    guided = create_model("unet_tiny_prior", coarse_guide=True)
    assert TrainingModule(guided, "deblur", TrainConfig(), None, None).multiscale
    # the models say themselves whether they have several outputs: MIMO-UNet always does
    assert TrainingModule(create_model("mimo_unet_tiny_prior"), "deblur", TrainConfig(), None, None).multiscale
    assert loss(guided, 0.5) > loss(guided, 0.0) + 1e-3
    plain = create_model("unet_tiny_prior")
    assert loss(plain, 0.5) == loss(plain, 0.0)


def test_provenance_keeps_the_lineage_and_leaves_what_save_model_writes():
    """A rewritten checkpoint keeps its source's deblurrt.* lineage (soup parts, step), not the source's config,
    format or version (they describe the copy, and save_model writes them), nor foreign metadata."""
    from deblurrt.train.checkpoint import provenance

    metadata = {"deblurrt.config": "{}", "deblurrt.format": "0", "deblurrt.version": "0.0.1",
                "deblurrt.step": "8500", "deblurrt.soup": "a + b", "format": "pt"}
    assert provenance(metadata) == {"deblurrt.step": "8500", "deblurrt.soup": "a + b"}


def test_grow_depth_adds_identity_blocks_and_the_run_continues_from_them(tmp_path, capsys):
    """scripts/grow_depth.py: the grown net computes the source's output exactly (added ResBlocks start as the
    identity), keeps every source weight and its provenance, and loads into a run that names the printed args;
    shrinking, no change, a level-count mismatch, a non-UNet source and an existing OUT are refused."""
    from deblurrt.train.checkpoint import load_model, read_checkpoint, save_model
    from deblurrt.train.trainer import load_weights

    grow_depth = load_script("grow_depth")
    torch.manual_seed(0)
    shallow = create_model("unet_tiny_prior", coarse_guide=True).eval()
    with torch.no_grad():  # a trained-looking guide, so that the identity start is not trivially zero everywhere
        shallow.guide_intro.weight.normal_(0.0, 0.1)
    source = save_model(shallow, tmp_path / "shallow.safetensors", extra_metadata={"deblurrt.soup": "a + b"})
    out = tmp_path / "deep.safetensors"
    assert grow_depth.main([str(source), str(out), "--depths", "1,2", "--middle-depth", "3"]) == 0
    printed = capsys.readouterr().out
    assert "'model.args={coarse_guide: true, depths: [1, 2], middle_depth: 3}'" in printed
    config, state, metadata = read_checkpoint(out)
    assert config["args"]["depths"] == [1, 2] and config["args"]["middle_depth"] == 3
    assert metadata["deblurrt.soup"] == "a + b" and metadata["deblurrt.grown_from"] == "shallow.safetensors"
    assert all(torch.equal(state[key], value) for key, value in shallow.state_dict().items())
    assert len(state) > len(shallow.state_dict())
    deep = load_model(out).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(deep(x), shallow(x))
    # the added blocks are real and trainable: their first convolution is initialised, the second starts at zero
    assert deep.middle[2].conv1.weight.abs().sum() > 0 and deep.middle[2].conv2.weight.abs().sum() == 0
    run_model = create_model("unet_tiny_prior", coarse_guide=True, depths=[1, 2], middle_depth=3)
    load_weights(run_model, str(out))
    assert all(torch.equal(run_model.state_dict()[key], value) for key, value in state.items())
    refusals = [(["--depths", "1,1", "--middle-depth", "1"], "nothing to grow"),
                (["--depths", "1,2,2"], "one count per level"),
                (["--middle-depth", "0"], "only adds blocks"),
                ([], "nothing to grow")]
    for extra, message in refusals:
        assert grow_depth.main([str(source), str(tmp_path / "bad.safetensors"), *extra]) == 2
        assert message in capsys.readouterr().err
    mimo = save_model(create_model("mimo_unet_tiny"), tmp_path / "mimo.safetensors")
    assert grow_depth.main([str(mimo), str(tmp_path / "bad.safetensors"), "--middle-depth", "2"]) == 2
    assert "Fix: give a unet_* checkpoint" in capsys.readouterr().err
    assert grow_depth.main([str(source), str(out), "--middle-depth", "2"]) == 2
    assert "exists. Fix: --overwrite" in capsys.readouterr().err
    assert not (tmp_path / "bad.safetensors").exists()


def test_nest_guide_rewrites_the_nesting_and_keeps_the_weights(tmp_path, capsys):
    """scripts/nest_guide.py: the copy runs two levels deep on the same tensors (its output is the two-level net's),
    keeps the source's provenance; weights without a guide, a level below 1 and an existing OUT are refused."""
    from deblurrt.train.checkpoint import load_model, read_checkpoint, save_model

    nest_guide = load_script("nest_guide")
    torch.manual_seed(0)
    one = create_model("unet_tiny_prior", coarse_guide=True).eval()
    with torch.no_grad():
        one.guide_intro.weight.normal_(0.0, 0.1)
    source = save_model(one, tmp_path / "one.safetensors", extra_metadata={"deblurrt.soup": "1 x a + 1 x b"})
    out = tmp_path / "two.safetensors"
    assert nest_guide.main([str(source), str(out), "--levels", "2"]) == 0
    config, state, metadata = read_checkpoint(out)
    assert config["args"]["coarse_levels"] == 2 and metadata["deblurrt.soup"] == "1 x a + 1 x b"
    assert all(torch.equal(state[key], value) for key, value in one.state_dict().items())
    two = create_model("unet_tiny_prior", coarse_guide=True, coarse_levels=2).eval()
    two.load_state_dict(one.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(load_model(out)(x), two(x))
    plain = save_model(create_model("unet_tiny_prior"), tmp_path / "plain.safetensors")
    capsys.readouterr()
    assert nest_guide.main([str(plain), str(tmp_path / "p2.safetensors"), "--levels", "2"]) == 2
    assert "has no coarse guide" in capsys.readouterr().err
    assert nest_guide.main([str(source), str(tmp_path / "z.safetensors"), "--levels", "0"]) == 2
    assert "--levels must be >= 1" in capsys.readouterr().err
    assert nest_guide.main([str(source), str(out), "--levels", "2"]) == 2
    assert "exists. Fix: --overwrite" in capsys.readouterr().err
    assert not (tmp_path / "p2.safetensors").exists() and not (tmp_path / "z.safetensors").exists()
