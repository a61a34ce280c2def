"""The blur kernel of every synthetic pair, and the kernel-prediction auxiliary that learns from it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scripts_loader import load_script

from deblurrt.errors import DeblurrtError
from deblurrt.kernels import kernel_grid, random_path, rasterize
from deblurrt.synthesis import BlurConfig, srgb_to_linear, synthesize_pair, synthesize_pair_and_kernel
from deblurrt.train.losses import kernel_divergence
from deblurrt.train.models.layers import KernelHead


def _dot(size: int = 161) -> np.ndarray:
    image = np.zeros((size, size, 3), np.float32)
    image[size // 2, size // 2] = 1.0
    return image


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_warp_recipe_kernel_is_the_streak_a_point_light_paints():
    """Without roll or zoom the shake is one kernel: the blurred dot (linear light) is the returned kernel,
    the right way round (its point reflection matches far worse), and the pair is synthesize_pair's."""
    config = BlurConfig.clean((30, 30), reference_size=None, rotation_weight=0, zoom_weight=0)
    for seed in range(4):
        blurry, sharp, kernel = synthesize_pair_and_kernel(_dot(), seed, config)
        plain_blurry, plain_sharp = synthesize_pair(_dot(), seed, config)
        assert np.array_equal(blurry, plain_blurry) and np.array_equal(sharp, plain_sharp)
        assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
        light = srgb_to_linear(blurry)[..., 0]
        radius = kernel.shape[0] // 2
        patch = light[80 - radius:80 + radius + 1, 80 - radius:80 + radius + 1]
        assert patch.sum() == pytest.approx(1.0, abs=1e-3)  # the whole streak lies within the kernel's square
        assert _correlation(patch, kernel) > 0.9
        assert _correlation(patch, kernel[::-1, ::-1]) < 0.5


def test_training_items_carry_the_kernel_of_either_recipe(tmp_path):
    from deblurrt.train.data.photos import PhotoPool, make_synthetic_item

    image = (np.random.default_rng(0).random((200, 220, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "p.png"), image)
    pool = PhotoPool(tmp_path)
    recipe = BlurConfig.clean((10, 30), reference_size=None, kernel_prob=0.5)
    seen = set()
    for i in range(10):
        blurry, sharp, record = make_synthetic_item(pool, [i, 0], [i, 1], (64, 64), recipe, with_kernel=True)
        plain_blurry, plain_sharp, plain_record = make_synthetic_item(pool, [i, 0], [i, 1], (64, 64), recipe)
        assert np.array_equal(blurry, plain_blurry) and "kernel" not in plain_record
        kernel = record["kernel"]
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
        # a 10-30 px streak: the kernel's extent says so (rasterised bilinearly: a pixel or two wider)
        ys, xs = np.nonzero(kernel > 1e-4)
        assert 9 <= max(np.ptp(xs), np.ptp(ys)) <= 33
        seen.add(record["recipe"])
    assert seen == {"warp", "kernel"}


def test_kernel_grid_keeps_mass_centre_and_orientation():
    kernel = rasterize(random_path(np.random.default_rng(1), 40.0))
    grid = kernel_grid(kernel, cells=33, cell_px=3)
    assert grid.shape == (33, 33) and grid.sum() == pytest.approx(1.0, abs=1e-5)
    # the centre of mass stays at the centre (in cells: pixels / 3)
    ys, xs = np.mgrid[0:33, 0:33]
    assert abs(float((grid * xs).sum()) - 16) < 0.5 and abs(float((grid * ys).sum()) - 16) < 0.5
    # flips and turns of the kernel are the same flips and turns of its grid (the probe turns both alike)
    assert np.allclose(kernel_grid(np.ascontiguousarray(kernel[:, ::-1])), grid[:, ::-1], atol=1e-6)
    assert np.allclose(kernel_grid(np.rot90(kernel).copy()), np.rot90(grid), atol=1e-6)
    # a delta is the centre cell; mass beyond the grid is dropped and the rest renormalised
    assert kernel_grid(np.pad(np.ones((1, 1), np.float32), 1))[16, 16] == pytest.approx(1.0)
    wide = np.zeros((201, 201), np.float32)
    wide[100, 100], wide[100, 200] = 0.5, 0.5
    assert kernel_grid(wide)[16, 16] == pytest.approx(1.0)
    with pytest.raises(DeblurrtError, match="odd square"):
        kernel_grid(np.ones((4, 4)))
    with pytest.raises(DeblurrtError, match="no mass"):
        only_far = np.zeros((201, 201), np.float32)
        only_far[0, 0] = 1.0
        kernel_grid(only_far)


def test_kernel_divergence_is_zero_on_target_and_positive_elsewhere():
    target = torch.from_numpy(kernel_grid(rasterize(random_path(np.random.default_rng(0), 25.0))))[None, None]
    exact = torch.log(target.clamp_min(1e-12))
    assert float(kernel_divergence(exact, target)) == pytest.approx(0.0, abs=1e-4)
    uniform = torch.zeros_like(target)
    assert float(kernel_divergence(uniform, target)) > 1.0
    assert float(kernel_divergence(torch.flip(exact, dims=(-1,)), target)) > 1.0


def test_kernel_head_learns_to_tell_two_streak_directions_apart():
    """Features that carry the direction (here: the images themselves) are enough for the head to predict it."""
    torch.manual_seed(0)
    horizontal = np.zeros((9, 9), np.float32)
    horizontal[4, :] = 1 / 9
    kernels = torch.from_numpy(np.stack([kernel_grid(horizontal, 11, 1), kernel_grid(horizontal.T.copy(), 11, 1)]))
    images = torch.zeros(2, 4, 8, 8)
    images[0, :, 4, :], images[1, :, :, 4] = 1.0, 1.0
    head = KernelHead(4, cells=11, hidden=32)
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    first = float(kernel_divergence(head(images), kernels[:, None]).detach())
    for _ in range(150):
        loss = kernel_divergence(head(images), kernels[:, None])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.1 * first
    predicted = torch.softmax(head(images).flatten(1), dim=1).view(2, 11, 11)
    assert predicted[0, 5, :].sum() > 0.8 and predicted[1, :, 5].sum() > 0.8


@pytest.fixture(scope="module")
def probe():
    return load_script("arch_probe")


def test_probe_kernel_loss_trains_the_head_without_changing_the_model_start(probe, tmp_path):
    from deblurrt.train.models.registry import create_model

    rng = np.random.default_rng(0)
    sharp = (rng.random((8, 32, 32, 3)) * 255).astype(np.uint8)
    blurry = cv2.blur(sharp.reshape(8 * 32, 32, 3), (9, 1)).reshape(8, 32, 32, 3)
    sets = {"train": (blurry, sharp), "sharp": (sharp[:2], sharp[:2])}
    for recipe in probe.RECIPES:
        for low, high in probe.BINS:
            sets[f"{recipe}{low}-{high}"] = (blurry[:2], sharp[:2])
    box = np.zeros((9, 9), np.float32)
    box[4, :] = 1 / 9
    kernels = np.repeat(kernel_grid(box, probe.KERNEL_CELLS, probe.KERNEL_CELL_PX)[None], 8, axis=0)

    torch.manual_seed(0)
    model = create_model("unet_tiny")
    start = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    again = create_model("unet_tiny")
    probe.attach_kernel_head(again, "unet_tiny")
    assert all(torch.equal(start[k], v) for k, v in again.state_dict().items())

    rows = probe.train_arm("unet_tiny", sets, steps=40, lr=3e-3, batch=4, eval_every=20, seed=0, threads=1,
                           out_csv=tmp_path / "k.csv", train_slice=4, kernels=kernels, kernel_weight=0.01)
    assert rows[-1]["kernel_kl"] < rows[0]["kernel_kl"]
    assert "kernel_kl" in probe.read_rows(tmp_path / "k.csv")[0]
    with pytest.raises(DeblurrtError, match="kernels"):
        probe.train_arm("unet_tiny", sets, steps=1, lr=1e-3, batch=2, eval_every=1, seed=0, threads=1,
                        out_csv=tmp_path / "x.csv", train_slice=2, kernel_weight=0.01)
    with pytest.raises(DeblurrtError, match="bottleneck"):
        probe.train_arm("mimo_unet_tiny", sets, steps=1, lr=1e-3, batch=2, eval_every=1, seed=0, threads=1,
                        out_csv=tmp_path / "y.csv", train_slice=2, kernels=kernels, kernel_weight=0.01)
