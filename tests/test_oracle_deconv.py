"""scripts/oracle_deconv.py: the rebuilt pairs are the validation's, Wiener with the true kernel inverts the blur,
and the straight-line fit of a straight streak is that streak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scripts_loader import load_script

from deblurrt.kernels import blur_with_kernel, random_path, rasterize
from deblurrt.metrics import psnr
from deblurrt.synthesis import linear_to_srgb, srgb_to_linear
from deblurrt.validation import SET_NAMES, _get_set, make_pair

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def oracle():
    return load_script("oracle_deconv")


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 8, width // 8, 3)).astype(np.float32)
    import cv2

    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def test_rebuild_gives_the_validation_pair_and_its_kernel(oracle):
    photo = (_texture(640, 800) * 255).astype(np.uint8)
    seed = (0, SET_NAMES.index("kernel_moderate"), 3)
    blurry, sharp, kernel, outer, margin = oracle.rebuild(photo, "kernel_moderate", seed)
    expected_blurry, expected_sharp = make_pair(photo, _get_set("kernel_moderate"), seed)
    np.testing.assert_array_equal(blurry, expected_blurry)
    np.testing.assert_array_equal(sharp, expected_sharp)
    assert outer.shape[:2] == (480 + 2 * margin, 640 + 2 * margin)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)


def test_wiener_with_the_true_kernel_undoes_the_blur(oracle):
    image = _texture(240, 320, seed=1)
    kernel = rasterize(random_path(np.random.default_rng(2), 25.0))
    blurry = blur_with_kernel(image, kernel)
    linear = srgb_to_linear(blurry.astype(np.float64))
    inner = (slice(60, -60), slice(60, -60))
    before = psnr(blurry[inner], image[inner])
    after = psnr(linear_to_srgb(np.clip(oracle.wiener(linear, kernel, 1e-2), 0, 1))[inner].astype(np.float32),
                 image[inner])
    assert after > before + 5.0, (before, after)
    # the straight-line fit of this curved streak is the wrong kernel: far less comes back
    line = oracle.line_kernel(kernel)
    with_line = psnr(linear_to_srgb(np.clip(oracle.wiener(linear, line, 1e-2), 0, 1))[inner].astype(np.float32),
                     image[inner])
    assert with_line < after - 3.0, (with_line, after)


def test_line_fit_of_a_straight_streak_is_the_streak(oracle):
    straight = rasterize(np.stack([np.linspace(0, 20, 60), np.linspace(0, 8, 60)], axis=1))
    fitted = oracle.line_kernel(straight)
    margin = (fitted.shape[0] - straight.shape[0]) // 2  # padded alike on every side: the same anchor
    assert fitted.shape == (straight.shape[0] + 2 * margin, straight.shape[1] + 2 * margin)
    assert np.abs(fitted - np.pad(straight, margin)).sum() < 0.1
    curved = rasterize(random_path(np.random.default_rng(1), 40.0))
    fitted = oracle.line_kernel(curved)
    assert np.abs(fitted - np.pad(curved, (fitted.shape[0] - curved.shape[0]) // 2)).sum() > 0.5


def test_laplacian_prior_keeps_the_mean_where_the_flat_one_darkens(oracle):
    grey = np.full((64, 80, 3), 0.5)
    kernel = rasterize(random_path(np.random.default_rng(3), 15.0))
    assert np.allclose(oracle.wiener(grey, kernel, 0.1, "laplacian"), 0.5, atol=1e-6)
    assert np.allclose(oracle.wiener(grey, kernel, 0.1, "flat"), 0.5 / 1.1, atol=1e-6)
    with pytest.raises(oracle.DeblurrtError, match="laplacian"):
        oracle.wiener(grey, kernel, 0.1, "tv")
