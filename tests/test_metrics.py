"""PSNR/SSIM agree with scikit-image (the benchmarks' reference) on real photographs, and the API contracts hold.

Tolerances: PSNR is compared to 1e-6 dB as required. SSIM uses the same border convention as scikit-image
(the map is averaged only where the 11x11 window lies inside the image), so the two differ only by float64
summation order; the measured difference on these images is below 1e-14, and 1e-10 is asserted to leave
room for other numpy/OpenCV builds while still catching any convention change (averaging the reflect-padded
full map instead, scikit-image's ``full=True`` map, moves SSIM by 7e-5 to 6e-3 on these same pairs).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from blocked_imports import run_without

from deblurrt import metrics
from deblurrt.metrics import MetricAccumulator, psnr, ssim, to_uint8

skimage_data = pytest.importorskip("skimage.data")
skimage_metrics = pytest.importorskip("skimage.metrics")

IMAGES = ["astronaut", "chelsea", "coffee"]
SSIM_TOLERANCE = 1e-10


def _reference_ssim(pred: np.ndarray, target: np.ndarray) -> float:
    return skimage_metrics.structural_similarity(
        pred,
        target,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )


def _degradations(target: np.ndarray) -> dict[str, np.ndarray]:
    """Plausible deblurring outputs: residual blur, sensor noise, and both (fixed seed)."""
    rng = np.random.default_rng(1234)
    blurred = cv2.GaussianBlur(target, (0, 0), 2.0)
    noise = rng.normal(0.0, 8.0, target.shape)
    noisy = np.clip(np.rint(target + noise), 0, 255).astype(np.uint8)
    both = np.clip(np.rint(blurred + noise), 0, 255).astype(np.uint8)
    return {"blur": blurred, "noise": noisy, "blur+noise": both}


@pytest.fixture(scope="module", params=IMAGES)
def real_pair_set(request):
    target = getattr(skimage_data, request.param)()
    assert target.dtype == np.uint8 and target.ndim == 3 and target.shape[-1] == 3
    return request.param, target, _degradations(target)


def test_psnr_equals_skimage_on_real_images(real_pair_set):
    _, target, preds = real_pair_set
    for label, pred in preds.items():
        expected = skimage_metrics.peak_signal_noise_ratio(target, pred, data_range=255)
        assert psnr(pred, target) == pytest.approx(expected, abs=1e-6), label
        # crop_border removes the same pixels BasicSR removes before measuring.
        cropped = skimage_metrics.peak_signal_noise_ratio(
            target[4:-4, 4:-4], pred[4:-4, 4:-4], data_range=255
        )
        assert psnr(pred, target, crop_border=4) == pytest.approx(cropped, abs=1e-6), label


def test_ssim_matches_skimage_on_real_images(real_pair_set):
    _, target, preds = real_pair_set
    for label, pred in preds.items():
        expected = _reference_ssim(pred, target)
        assert abs(ssim(pred, target) - expected) < SSIM_TOLERANCE, label
        cropped = _reference_ssim(pred[8:-8, 8:-8], target[8:-8, 8:-8])
        assert abs(ssim(pred, target, crop_border=8) - cropped) < SSIM_TOLERANCE, label


def test_ssim_matches_a_from_the_definition_reference():
    """Brute-force SSIM over the valid positions only: pins the formula and the border convention."""
    target = skimage_data.coffee()[100:131, 200:226]
    pred = _degradations(target)["blur+noise"]
    g = np.exp(-(np.arange(-5, 6) ** 2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    height, width = target.shape[:2]
    channel_means = []
    for c in range(3):
        x = pred[..., c].astype(np.float64)
        y = target[..., c].astype(np.float64)
        values = []
        for i in range(5, height - 5):
            for j in range(5, width - 5):
                px, py = x[i - 5 : i + 6, j - 5 : j + 6], y[i - 5 : i + 6, j - 5 : j + 6]
                mx, my = (window * px).sum(), (window * py).sum()
                vx, vy = (window * (px - mx) ** 2).sum(), (window * (py - my) ** 2).sum()
                cov = (window * (px - mx) * (py - my)).sum()
                values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
        channel_means.append(np.mean(values))
    assert ssim(pred, target) == pytest.approx(np.mean(channel_means), abs=1e-10)


def test_strip_processing_does_not_change_the_result(monkeypatch):
    target = skimage_data.astronaut()
    pred = _degradations(target)["blur+noise"]
    whole = ssim(pred, target)
    # The smallest strip budget forces the 32-row minimum: 16 strips with halos on a 512-row image.
    monkeypatch.setattr(metrics, "_STRIP_BYTES", 1)
    assert ssim(pred, target) == pytest.approx(whole, abs=1e-12)


def test_identical_images_give_inf_psnr_and_unit_ssim():
    image = skimage_data.chelsea()
    assert psnr(image, image.copy()) == math.inf
    assert ssim(image, image.copy()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_input_is_quantised_to_8_bit(dtype):
    target = skimage_data.astronaut()
    pred = _degradations(target)["blur"]
    as_float = (pred / 255.0).astype(dtype)
    assert np.array_equal(to_uint8(as_float), pred)
    assert psnr(as_float, target) == psnr(pred, target)
    assert ssim(as_float, target) == ssim(pred, target)
    if dtype is not np.float16:
        # Offsets under half a quantisation step vanish, as they do when the output is saved as PNG.
        rng = np.random.default_rng(7)
        jittered = (pred / 255.0 + rng.uniform(-0.4, 0.4, pred.shape) / 255.0).astype(dtype)
        assert psnr(jittered, target) == psnr(pred, target)
        assert ssim(jittered, target) == ssim(pred, target)


def test_to_uint8_rounds_and_saturates_like_saved_pngs():
    values = np.array([-0.2, 0.0, 0.5 / 255, 1.5 / 255, 0.5, 1.0, 1.3], dtype=np.float64)
    image = np.broadcast_to(values[:, None, None], (7, 1, 3)).copy()
    # 0.5 and 1.5 round half to even (0 and 2), like numpy.rint and torch.round.
    assert to_uint8(image)[:, 0, 0].tolist() == [0, 0, 0, 2, 128, 255, 255]


def test_chw_and_hwc_give_the_same_numbers():
    target = skimage_data.coffee()
    pred = _degradations(target)["blur+noise"]
    chw_pred, chw_target = pred.transpose(2, 0, 1), target.transpose(2, 0, 1)
    assert psnr(chw_pred, chw_target) == psnr(pred, target)
    assert ssim(chw_pred, chw_target) == ssim(pred, target)
    assert np.array_equal(to_uint8(chw_pred / 255.0), pred)


def test_mismatched_shapes_raise_naming_both():
    target = np.zeros((32, 48, 3), dtype=np.uint8)
    pred = np.zeros((32, 40, 3), dtype=np.uint8)
    for fn in (psnr, ssim):
        with pytest.raises(ValueError, match=r"expected \(32, 48, 3\).*received \(32, 40, 3\)"):
            fn(pred, target)
    with pytest.raises(ValueError, match="expected"):
        MetricAccumulator().update(pred, target)
    # A CHW prediction against an HWC target is a mismatch, not something to reinterpret silently.
    with pytest.raises(ValueError, match="received"):
        psnr(target.transpose(2, 0, 1), target)


def test_invalid_inputs_are_rejected_clearly():
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="RGB"):
        psnr(np.zeros((16, 16), dtype=np.uint8), np.zeros((16, 16), dtype=np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        psnr(np.zeros((16, 16, 4), dtype=np.uint8), np.zeros((16, 16, 4), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint16"):
        psnr(image.astype(np.uint16), image.astype(np.uint16))
    nan_image = np.full((16, 16, 3), np.nan, dtype=np.float32)
    with pytest.raises(ValueError, match="NaN"):
        psnr(nan_image, nan_image)
    with pytest.raises(ValueError, match="11x11"):
        ssim(image, image, crop_border=3)
    with pytest.raises(ValueError, match="crop_border"):
        psnr(image, image, crop_border=-1)
    with pytest.raises(ValueError, match="crop_border"):
        psnr(image, image, crop_border=8)


def test_batches_average_per_image_values():
    targets = np.stack([skimage_data.astronaut()[:300, :400], skimage_data.coffee()[:300, :400]])
    preds = np.stack([_degradations(t)["blur+noise"] for t in targets])
    per_psnr = [psnr(p, t) for p, t in zip(preds, targets, strict=True)]
    per_ssim = [ssim(p, t) for p, t in zip(preds, targets, strict=True)]
    nchw_preds, nchw_targets = preds.transpose(0, 3, 1, 2) / 255.0, targets.transpose(0, 3, 1, 2) / 255.0
    for p, t in ((preds, targets), (nchw_preds, nchw_targets)):
        assert psnr(p, t) == pytest.approx(np.mean(per_psnr), abs=1e-12)
        assert ssim(p, t) == pytest.approx(np.mean(per_ssim), abs=1e-12)


def test_accumulator_means_are_means_of_per_image_values():
    acc = MetricAccumulator()
    assert acc.count == 0 and math.isnan(acc.mean_psnr) and math.isnan(acc.mean_ssim)
    expected = []
    for name in IMAGES:
        target = getattr(skimage_data, name)()
        pred = _degradations(target)["blur+noise"]
        acc.update(pred, target, name=name)
        expected.append((name, psnr(pred, target), ssim(pred, target)))
    # A batch records one entry per image, with its own name.
    batch_t = np.stack([skimage_data.chelsea()[:64, :64], skimage_data.coffee()[:64, :64]])
    batch_p = np.stack([_degradations(t)["noise"] for t in batch_t])
    acc.update(batch_p.transpose(0, 3, 1, 2), batch_t.transpose(0, 3, 1, 2), name=["b0", "b1"])
    expected += [(n, psnr(p, t), ssim(p, t)) for n, p, t in zip(["b0", "b1"], batch_p, batch_t, strict=True)]

    assert acc.count == 5
    assert [r["name"] for r in acc.per_image] == [e[0] for e in expected]
    assert [r["psnr"] for r in acc.per_image] == [e[1] for e in expected]
    assert [r["ssim"] for r in acc.per_image] == [e[2] for e in expected]
    assert acc.mean_psnr == pytest.approx(np.mean([e[1] for e in expected]), abs=1e-12)
    assert acc.mean_ssim == pytest.approx(np.mean([e[2] for e in expected]), abs=1e-12)
    summary = acc.as_dict()
    assert summary["count"] == 5 and summary["psnr"] == acc.mean_psnr and summary["ssim"] == acc.mean_ssim
    assert summary["per_image"] == acc.per_image and summary["per_image"] is not acc.per_image
    with pytest.raises(ValueError, match="name"):
        acc.update(batch_p, batch_t, name=["only-one"])


def test_accumulator_applies_its_crop_border():
    target = skimage_data.chelsea()
    pred = _degradations(target)["blur"]
    acc = MetricAccumulator(crop_border=6)
    acc.update(pred, target)
    assert acc.mean_psnr == psnr(pred, target, crop_border=6)
    assert acc.mean_ssim == ssim(pred, target, crop_border=6)


def test_torch_tensors_are_accepted_without_torch_imports_in_the_module():
    torch = pytest.importorskip("torch")
    target = skimage_data.coffee()[:128, :128]
    pred = _degradations(target)["blur+noise"]
    pred_t = torch.from_numpy(pred.transpose(2, 0, 1) / 255.0).float().requires_grad_(True)
    target_t = torch.from_numpy(target.transpose(2, 0, 1).copy())
    assert psnr(pred_t, target_t) == psnr(pred, target)
    assert ssim(pred_t, target_t) == ssim(pred, target)


def test_metrics_import_without_torch_or_skimage():
    result = run_without("""
        import sys
        import numpy as np
        from deblurrt.metrics import MetricAccumulator, psnr, ssim
        a = np.zeros((16, 16, 3), dtype=np.uint8)
        b = np.full((16, 16, 3), 0.5, dtype=np.float32)
        acc = MetricAccumulator()
        acc.update(b, a, name="x")
        assert psnr(a, a) == float("inf") and abs(ssim(b, b) - 1.0) < 1e-12
        assert not {"torch", "skimage"} & set(sys.modules), sorted(sys.modules)
        print("ok")
    """, blocked=("torch", "skimage"))
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip() == "ok"
