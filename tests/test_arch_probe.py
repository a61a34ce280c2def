"""scripts/arch_probe.py: arm specs, and a tiny arm trained on a bank of box-blurred pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scripts_loader import load_script

from deblurrt.errors import DeblurrtError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def probe():
    return load_script("arch_probe")


def test_parse_arm_reads_yaml_values_and_lists(probe):
    assert probe.parse_arm("unet_small") == ("unet_small", {})
    assert probe.parse_arm("unet_small:depths=[1,1,1,1],middle_depth=4") == (
        "unet_small", {"depths": (1, 1, 1, 1), "middle_depth": 4})
    with pytest.raises(DeblurrtError, match="key=value"):
        probe.parse_arm("unet_small:middle_depth")


def test_split_arms_keeps_overrides_with_their_arm(probe):
    assert probe._split_arms("unet_nano,unet_small:depths=[1,1,1,1],middle_depth=2,nafnet_nano") == [
        "unet_nano", "unet_small:depths=[1,1,1,1],middle_depth=2", "nafnet_nano"]


def _box_blurred_bank(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random textures and their 9-px horizontal box blur (the probe's bank layout: N x H x W x 3 uint8)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((count, 8, 8, 3))
    sharp = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)  # 32 x 32 blocks with hard edges
    padded = np.pad(sharp, ((0, 0), (0, 0), (4, 4), (0, 0)), mode="edge")
    blurry = np.mean([padded[:, :, i:i + 32] for i in range(9)], axis=0)
    return (np.rint(blurry * 255).astype(np.uint8), np.rint(sharp * 255).astype(np.uint8))


def _sets(probe, train_count: int) -> dict:
    """A bank in the probe's layout: training pairs, every held-out bin, and sharp crops."""
    sharp_images = _box_blurred_bank(4, 1)[1]
    sets = {"train": _box_blurred_bank(train_count, 0), "sharp": (sharp_images, sharp_images)}
    for recipe in probe.RECIPES:
        for low, high in probe.BINS:
            sets[f"{recipe}{low}-{high}"] = _box_blurred_bank(4, 2)
    return sets


def test_train_arm_writes_rows_and_learns_to_fit(probe, tmp_path):
    sets = _sets(probe, 32)
    out_csv = tmp_path / "unet_tiny.csv"
    rows = probe.train_arm("unet_tiny", sets, steps=60, lr=3e-3, batch=4, eval_every=20, seed=0, threads=1,
                           out_csv=out_csv, train_slice=8)
    assert [row["step"] for row in rows] == [20, 40, 60]
    assert out_csv.exists() and not out_csv.with_suffix(".partial.csv").exists()
    assert len(probe.read_rows(out_csv)) == 3
    # one fixed blur is easy: within 60 steps the net must deblur its training pairs, and better than at step 20
    assert rows[-1]["train"] > max(0.2, rows[0]["train"] + 0.2)
    probe.write_summary(tmp_path, {"unet_tiny": rows})
    assert "| unet_tiny |" in (tmp_path / "summary.md").read_text()



def test_evaluation_reports_medians_beside_means(probe, tmp_path):
    """One crop the model ruins moves a set's mean, not its median; both reach the CSV and the summary."""
    import torch

    class Grey(torch.nn.Module):  # a real (if useless) model: every pixel mid-grey
        def forward(self, x):
            return torch.full_like(x, 0.5)

    rng = np.random.default_rng(0)
    sharp = np.full((5, 16, 16, 3), 128, np.uint8)
    sharp[0] = (rng.random((16, 16, 3)) * 255).astype(np.uint8)  # the one crop grey does not match
    scores = probe.evaluate(Grey(), {"sharp": (sharp, sharp)}, bf16=False, train_slice=4)
    grey_psnr = -10 * np.log10(((sharp / 255.0 - 0.5) ** 2).reshape(5, -1).mean(axis=1).clip(1e-10))
    assert scores["sharp"] == pytest.approx(grey_psnr.mean(), abs=1e-3)
    assert scores["sharp_median"] == pytest.approx(np.median(grey_psnr), abs=1e-3)
    assert scores["sharp_median"] - scores["sharp"] > 5
    rows = probe.train_arm("unet_tiny", _sets(probe, 8), steps=2, lr=1e-3, batch=2, eval_every=2, seed=0,
                           threads=1, out_csv=tmp_path / "m.csv", train_slice=2)
    assert "warp40-80_median" in probe.read_rows(tmp_path / "m.csv")[0]
    probe.write_summary(tmp_path, {"unet_tiny": rows})
    table_row = (tmp_path / "summary.md").read_text().splitlines()[2]
    assert f"{rows[-1]['warp40-80']:+.2f} / {rows[-1]['warp40-80_median']:+.2f}" in table_row

def test_prior_arms_are_refused(probe, tmp_path):
    sets = {"train": _box_blurred_bank(8, 0)}
    with pytest.raises(DeblurrtError, match="distillation teacher"):
        probe.train_arm("unet_tiny_prior", sets, steps=2, lr=1e-3, batch=2, eval_every=1, seed=0, threads=1,
                        out_csv=tmp_path / "x.csv", train_slice=2)


def test_zero_init_starts_as_identity_and_weights_carry_over(probe, tmp_path):
    import torch

    from deblurrt.train.models.registry import create_model

    for name in ("unet_tiny", "mimo_unet_tiny"):
        model = create_model(name)
        assert probe.zero_output_layers(model) >= 1
        x = torch.rand(1, 3, 32, 32)
        out = model(x)
        assert torch.equal(out if isinstance(out, torch.Tensor) else out[0], x)
    sets = _sets(probe, 8)
    first = probe.train_arm("unet_tiny", sets, steps=4, lr=1e-3, batch=2, eval_every=4, seed=0, threads=1,
                            out_csv=tmp_path / "a.csv", train_slice=2, zero_init=True)
    assert (tmp_path / "a.pt").exists()
    # a second phase that starts from the first's weights scores the same before it trains
    second = probe.train_arm("unet_tiny", sets, steps=1, lr=0.0, batch=2, eval_every=1, seed=0, threads=1,
                             out_csv=tmp_path / "b.csv", train_slice=2, init=tmp_path / "a.pt")
    assert second[0]["step"] == 0 and second[0]["train"] == pytest.approx(first[0]["train"], abs=1e-4)
    # a trained model file (the shipped weights, say) may be fine-tuned with an identity module added
    from deblurrt.train.checkpoint import save_model

    trained = save_model(create_model("unet_tiny"), tmp_path / "trained.safetensors")
    with_context = probe.train_arm("unet_tiny:global_context=true", sets, steps=1, lr=0.0, batch=2, eval_every=1,
                                   seed=0, threads=1, out_csv=tmp_path / "d.csv", train_slice=2, init=trained)
    plain = probe.train_arm("unet_tiny", sets, steps=1, lr=0.0, batch=2, eval_every=1, seed=0, threads=1,
                            out_csv=tmp_path / "e.csv", train_slice=2, init=trained)
    assert with_context[0]["train"] == pytest.approx(plain[0]["train"], abs=1e-5)
    with pytest.raises(DeblurrtError, match="checkpoint's architecture"):
        probe.train_arm("unet_tiny:middle_depth=3", sets, steps=1, lr=0.0, batch=2, eval_every=1, seed=0,
                        threads=1, out_csv=tmp_path / "f.csv", train_slice=2, init=trained)
    with pytest.raises(DeblurrtError, match="same architecture"):
        probe.train_arm("unet_nano", sets, steps=1, lr=0.0, batch=2, eval_every=1, seed=0, threads=1,
                        out_csv=tmp_path / "c.csv", train_slice=2, init=tmp_path / "a.pt")


def test_compare_combines_earlier_probes(probe, tmp_path):
    rows = probe.train_arm("unet_tiny", _sets(probe, 8), steps=2, lr=1e-3, batch=2, eval_every=1, seed=0,
                           threads=1, out_csv=tmp_path / "a.csv", train_slice=2)
    assert probe.main([str(tmp_path / "both"), "--compare", f"one={tmp_path / 'a.csv'}",
                       f"two={tmp_path / 'a.csv'}@100"]) == 0
    summary = (tmp_path / "both" / "summary.md").read_text()
    assert "| one |" in summary and "| two |" in summary and len(rows) == 2
    assert "| 102 |" in summary  # the shifted phase ends at step 100 + 2
    with pytest.raises(SystemExit):
        probe.main([str(tmp_path / "x"), "--compare", "nolabel"])
    with pytest.raises(SystemExit):
        probe.main([str(tmp_path / "x"), "--arms", "unet_tiny"])  # training needs the photos
