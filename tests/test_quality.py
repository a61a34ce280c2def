"""The quality issue's data and measurement: blur centred on its target, the independent kernel recipe,
light sources rendered alike in blurry and sharp images, near-sharp samples, the blur-only validation sets,
their scoring (identity, do-no-harm, targets) and the trainer's per-set validation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scripts_loader import load_script

from deblurrt.errors import DeblurrtError
from deblurrt.kernels import (
    KernelRecipe,
    blur_with_kernel,
    kernel_centroid,
    random_path,
    rasterize,
    synthesize_kernel_pair,
)
from deblurrt.synthesis import BlurConfig, srgb_to_linear, synthesize_pair

REPO = Path(__file__).resolve().parents[1]


def _dot(size: int = 161, value: float = 1.0) -> np.ndarray:
    image = np.zeros((size, size, 3), np.float32)
    image[size // 2, size // 2] = value
    return image


def _centroid(image: np.ndarray) -> tuple[float, float]:
    """Centre of mass of the light (linear) in pixel coordinates (x, y)."""
    light = srgb_to_linear(image).sum(axis=2)
    ys, xs = np.mgrid[0:light.shape[0], 0:light.shape[1]]
    return float((light * xs).sum() / light.sum()), float((light * ys).sum() / light.sum())


def test_centroid_alignment_centres_every_streak_on_its_target():
    """A point light's streak has its centre of mass on the point with align=centroid; with the middle
    sub-frame as target (GoPro's convention) it is off by pixels for some trajectories."""
    centre = 80.0
    worst_centroid, worst_middle = 0.0, 0.0
    for seed in range(6):
        for align in ("centroid", "middle"):
            config = BlurConfig.clean((30, 30), reference_size=None, rotation_weight=0, zoom_weight=0, align=align)
            blurry, sharp = synthesize_pair(_dot(), seed, config)
            assert np.array_equal(sharp, _dot())  # the target is the input, never resampled
            x, y = _centroid(blurry)
            offset = float(np.hypot(x - centre, y - centre))
            if align == "centroid":
                worst_centroid = max(worst_centroid, offset)
            else:
                worst_middle = max(worst_middle, offset)
    assert worst_centroid < 0.1
    assert worst_middle > 2.0


def test_kernel_is_normalised_centred_and_as_long_as_asked():
    rng = np.random.default_rng(3)
    for length in (5.0, 25.0, 60.0):
        kernel = rasterize(random_path(rng, length))
        assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
        assert abs(float(kernel.sum()) - 1.0) < 1e-5
        cx, cy = kernel_centroid(kernel)
        assert abs(cx) < 1e-3 and abs(cy) < 1e-3
        points = np.argwhere(kernel > 1e-6).astype(np.float64)
        extent = float(np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1)).max())  # the streak's diameter
        assert length - 1 <= extent <= length + 2 * np.sqrt(2)  # plus the bilinear footprint at both ends


def test_kernel_blur_of_a_point_light_is_the_kernel_and_keeps_its_centroid():
    kernel = rasterize(random_path(np.random.default_rng(1), 30.0))
    blurry = blur_with_kernel(_dot(), kernel)
    x, y = _centroid(blurry)
    assert abs(x - 80) < 0.05 and abs(y - 80) < 0.05
    # in linear light the blurred dot is the kernel (flipped by the convolution), total light conserved
    assert abs(float(srgb_to_linear(blurry)[..., 0].sum()) - 1.0) < 1e-3


def test_kernel_pair_is_deterministic_and_zero_length_is_identity():
    image = np.random.default_rng(0).random((80, 90, 3)).astype(np.float32)
    first = synthesize_kernel_pair(image, 7, KernelRecipe(length_px=(10, 20)))
    second = synthesize_kernel_pair(image, 7, KernelRecipe(length_px=(10, 20)))
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    blurry, sharp, kernel = synthesize_kernel_pair(image, 1, KernelRecipe(length_px=(0, 0), noise_rms=(0, 0),
                                                                         quantize=False))
    assert kernel.shape == (3, 3) and kernel[1, 1] == pytest.approx(1.0)
    assert np.allclose(blurry, sharp, atol=2e-6)
    with pytest.raises(DeblurrtError, match="kernel length range"):
        KernelRecipe(length_px=(20, 10))


def test_light_sources_are_boosted_and_the_target_shows_the_same_light():
    image = np.full((120, 120, 3), 0.3, np.float32)
    image[58:62, 58:62] = 1.0  # a small lamp
    boosted = BlurConfig.clean((20, 20), reference_size=None, highlight_prob=1.0, highlight_gain=(8, 8))
    plain = BlurConfig.clean((20, 20), reference_size=None)
    lit, lit_sharp = synthesize_pair(image, 0, boosted)
    dim, _ = synthesize_pair(image, 0, plain)
    assert lit.max() > dim.max() + 0.1  # the lamp paints a bright streak
    # no motion: blurry and sharp are the same picture, boosted light included
    still = BlurConfig.clean((0, 0), reference_size=None, highlight_prob=1.0, highlight_gain=(8, 8))
    blurry, sharp = synthesize_pair(image, 0, still)
    assert np.allclose(blurry, sharp, atol=1e-5)


def test_saturated_colours_and_large_white_areas_are_not_light_sources():
    image = np.full((120, 120, 3), 0.3, np.float32)
    image[10:30, 10:30] = (1.0, 0.5, 0.0)  # an orange flower: one channel clipped
    image[60:120, :] = 1.0  # a white wall, far larger than a lamp
    boosted = BlurConfig.clean((20, 20), reference_size=None, highlight_prob=1.0, highlight_gain=(8, 8))
    plain = BlurConfig.clean((20, 20), reference_size=None)
    assert np.array_equal(synthesize_pair(image, 0, boosted)[0], synthesize_pair(image, 0, plain)[0])


def test_near_sharp_share_keeps_motion_under_three_pixels():
    config = BlurConfig.clean((40, 40), reference_size=None, rotation_weight=0, zoom_weight=0, sharp_prob=1.0)
    for seed in range(3):
        blurry, _ = synthesize_pair(_dot(), seed, config)
        light = srgb_to_linear(blurry).sum(axis=2)
        ys, xs = np.nonzero(light > 1e-4)
        assert max(xs.max() - xs.min(), ys.max() - ys.min()) <= 5  # <= 3 px of streak + bilinear footprint


def test_camera_noise_is_mostly_light():
    flat = np.full((64, 64, 3), 0.5, np.float32)
    config = BlurConfig(severity=(0, 0), reference_size=None, foreground_prob=0, highlight_prob=0, jpeg_prob=0,
                        quantize=False)
    levels = [float(np.std(synthesize_pair(flat, seed, config)[0]) * 255) for seed in range(40)]
    assert np.median(levels) < 2.0 and max(levels) < 7.0
    clean = BlurConfig.clean((0, 0), reference_size=None)
    assert float(np.std(synthesize_pair(flat, 0, clean)[0])) == 0.0


def test_training_recipe_from_config_mixes_both_recipes(tmp_path):
    from deblurrt.train.config import TrainConfig
    from deblurrt.train.data.photos import PhotoPool, make_synthetic_item
    from deblurrt.train.loaders import synthetic_recipe

    config = TrainConfig()
    config.data.blur_px, config.data.kernel_share, config.data.sharp_share = "4-40", 0.5, 0.1
    recipe = synthetic_recipe(config)
    assert recipe.reference_size is None and recipe.severity == (4.0, 40.0) and recipe.align == "centroid"
    config.data.kernel_share = 1.5
    with pytest.raises(DeblurrtError, match="kernel_share"):
        synthetic_recipe(config)
    image = (np.random.default_rng(0).random((200, 220, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "p.png"), image)
    pool = PhotoPool(tmp_path)
    recipes = {make_synthetic_item(pool, [i, 0], [i, 1], (64, 64), recipe)[2]["recipe"] for i in range(12)}
    assert recipes == {"warp", "kernel"}


def test_log_length_distribution_gives_every_octave_alike_and_uniform_keeps_its_stream():
    from deblurrt.synthesis import draw_length

    rng = np.random.default_rng(1)
    lengths = np.array([draw_length(rng, 4, 64, "log") for _ in range(4000)])
    assert lengths.min() >= 4 and lengths.max() <= 64
    octaves = np.histogram(np.log2(lengths), bins=[2, 3, 4, 5, 6])[0] / lengths.size
    assert np.all(np.abs(octaves - 0.25) < 0.03)  # uniform in pixels would give 2 %, 5 %, 21 %, 71 %
    assert draw_length(np.random.default_rng(5), 4, 64) == np.random.default_rng(5).uniform(4, 64)
    assert 0 <= draw_length(rng, 0.0, 0.5, "log") <= 0.5  # no log scale below 1 px: drawn uniformly
    with pytest.raises(DeblurrtError, match="length_dist"):
        BlurConfig(length_dist="gauss")


def test_display_space_blur_keeps_brightness_where_linear_light_brightens():
    from deblurrt.train.config import TrainConfig
    from deblurrt.train.loaders import synthetic_recipe

    stripes = np.zeros((96, 96, 3), np.float32)
    stripes[:, ::8] = 1.0
    stripes[:, 1::8] = 1.0  # a dark scene with thin bright lines: linear light spreads them brighter
    shifts = {}
    for gamma_prob in (0.0, 1.0):
        config = BlurConfig.clean((24, 24), reference_size=None, rotation_weight=0, zoom_weight=0,
                                  gamma_prob=gamma_prob)
        blurry, sharp = synthesize_pair(stripes, 3, config)
        np.testing.assert_array_equal(sharp, stripes)
        shifts[gamma_prob] = float(blurry.mean() - sharp.mean()) * 255
    assert shifts[0.0] > 40 and abs(shifts[1.0]) < 1.0
    config = TrainConfig()
    config.data.gamma_share = 0.3
    assert synthetic_recipe(config).gamma_prob == 0.3
    config.data.gamma_share = 2.0
    with pytest.raises(DeblurrtError, match="gamma_share"):
        synthetic_recipe(config)


def test_defocused_samples_keep_the_defocus_in_their_target():
    from deblurrt.synthesis import defocus, disk_kernel

    kernel = disk_kernel(3.0)
    assert kernel.shape == (7, 7) and abs(kernel.sum() - 1) < 1e-6 and kernel[3, 3] == kernel.max()
    assert kernel[0, 0] == 0 and kernel[3, 0] > 0  # round, not square
    rng = np.random.default_rng(0)
    photo = rng.random((80, 80, 3)).astype(np.float32)
    soft = defocus(srgb_to_linear(photo), np.random.default_rng(1), (4.0, 4.0))
    assert soft.shape == photo.shape and np.abs(np.diff(soft, axis=1)).mean() < np.abs(np.diff(srgb_to_linear(photo), axis=1)).mean()
    still = BlurConfig.clean((0, 0), reference_size=None, defocus_prob=1.0, defocus_px=(4.0, 4.0))
    blurry, sharp = synthesize_pair(photo, 2, still)
    assert np.abs(sharp - photo).mean() > 0.02       # the target itself is out of focus (in part)
    assert np.abs(blurry - sharp).max() < 2e-3        # and with no motion the blurry image is that target
    moving = BlurConfig.clean((20, 20), reference_size=None, defocus_prob=1.0)
    blurry, sharp = synthesize_pair(photo, 2, moving)
    assert np.abs(blurry - sharp).mean() > 0.01


def test_blur_dist_reaches_both_recipes():
    from deblurrt.train.config import TrainConfig
    from deblurrt.train.loaders import synthetic_recipe

    config = TrainConfig()
    config.data.blur_px, config.data.blur_dist = "4-80", "log"
    assert synthetic_recipe(config).length_dist == "log"
    image = np.zeros((96, 96, 3), np.float32)
    extents = {}
    for dist in ("uniform", "log"):
        recipe = KernelRecipe(length_px=(4.0, 80.0), length_dist=dist)
        kernels = [synthesize_kernel_pair(image, seed, recipe)[2] for seed in range(40)]
        extents[dist] = np.median([max(np.ptp(np.nonzero(k)[0]), np.ptp(np.nonzero(k)[1])) for k in kernels])
    assert extents["log"] < 0.7 * extents["uniform"]  # medians: about 18 px vs 42 px


# ------------------------------------------------------------------------------------- validation sets

@pytest.fixture(scope="module")
def val_sets(tmp_path_factory) -> tuple[Path, list[Path]]:
    from deblurrt.validation import build_sets

    root = tmp_path_factory.mktemp("val")
    photos = []
    rng = np.random.default_rng(0)
    for i in range(2):
        image = np.full((600, 760, 3), 90 + 40 * i, np.uint8)
        for _ in range(60):
            x, y = (int(v) for v in rng.integers(0, 760, 2))
            cv2.circle(image, (x, y % 600), int(rng.integers(4, 30)), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
        path = root / f"photo{i}.png"
        cv2.imwrite(str(path), image)
        photos.append(path)
    build_sets(root / "sets", photos, count=2, sets=("warp_moderate", "kernel_severe", "sharp", "soft"),
               progress=False)
    return root / "sets", photos


def test_validation_sets_are_reproducible_and_blur_only(val_sets, tmp_path):
    from deblurrt.validation import build_sets

    sets_dir, photos = val_sets
    again = build_sets(tmp_path / "again", photos, count=2, sets=("warp_moderate",), progress=False)
    for name in ("000_photo0.png", "001_photo1.png"):
        first = cv2.imread(str(sets_dir / "warp_moderate" / "blur" / name))
        second = cv2.imread(str(again["warp_moderate"] / "blur" / name))
        assert first.shape == (480, 640, 3) and np.array_equal(first, second)
        sharp = cv2.imread(str(sets_dir / "sharp" / "blur" / name))
        assert np.array_equal(sharp, cv2.imread(str(sets_dir / "sharp" / "sharp" / name)))
    # soft: input = expected output, and softer than the photo (defocus lowers the fine detail)
    for name in ("000_photo0.png", "001_photo1.png"):
        soft = cv2.imread(str(sets_dir / "soft" / "blur" / name))
        assert np.array_equal(soft, cv2.imread(str(sets_dir / "soft" / "sharp" / name)))
        photo = cv2.imread(str(photos[int(name[2])]))
        detail = [cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var() for image in (photo, soft)]
        assert detail[1] < 0.8 * detail[0]
    record = json.loads((sets_dir / "kernel_severe" / "set.json").read_text())
    assert record["length_px"] == [40.0, 80.0] and record["recipe"] == "kernel"
    with pytest.raises(DeblurrtError, match="unknown validation set"):
        build_sets(tmp_path / "x", photos, sets=("warp_huge",), progress=False)


def test_scoring_identity_unsharp_and_targets(val_sets):
    from deblurrt.validation import Restorer, format_markdown, score_sets, verdict

    sets_dir, _ = val_sets
    dirs = {name: sets_dir / name for name in ("warp_moderate", "kernel_severe", "sharp", "soft")}
    identity = score_sets(Restorer("identity"), dirs, progress=False)
    assert identity["sets"]["warp_moderate"]["gain_db"]["mean"] == 0.0
    assert identity["sets"]["sharp"]["output_psnr"]["median"] == 100.0
    assert identity["sets"]["sharp"]["shift_levels"]["mean"] == 0.0
    checks = verdict(identity, "small")
    assert checks["no_harm_psnr"] and checks["no_harm_shift"] and checks["kernel_severe>=2dB"] is False
    unsharp = score_sets(Restorer("unsharp"), dirs, progress=False)
    assert unsharp["sets"]["warp_moderate"]["gain_db"]["mean"] != 0.0
    assert unsharp["sets"]["sharp"]["output_psnr"]["mean"] < 40.0  # sharpening a sharp frame harms it
    assert unsharp["sets"]["soft"]["output_psnr"]["mean"] < 45.0 and "shift_levels" in unsharp["sets"]["soft"]
    assert checks["soft_psnr"] and checks["soft_shift"] and "soft_psnr" in verdict(unsharp, None)
    table = format_markdown([identity, unsharp])
    assert "| identity |" in table and "| unsharp |" in table and "soft: PSNR / shift (worst)" in table
    # the do-no-harm cell carries the worst image's shift beside the mean
    worst = unsharp["sets"]["soft"]["abs_shift_max"]
    assert f"{unsharp['sets']['soft']['shift_levels']['mean']:+.2f} ({worst:.1f})" in table
    harmful = {"label": "m", "sets": {"soft": {"output_psnr": {"mean": 34.5}, "shift_levels": {"mean": -1.7}}}}
    assert verdict(harmful, None) == {"soft_psnr": False, "soft_shift": False}


def test_per_image_comparison_counts_wins_against_the_first_model(val_sets):
    """With several models the table counts, per set, the images each does better / worse on than the first:
    unsharp against identity is counted image by image from the per-image rows, and a report of other sets
    is refused by name."""
    from deblurrt.validation import Restorer, compare_per_image, format_markdown, score_sets

    sets_dir, _ = val_sets
    dirs = {name: sets_dir / name for name in ("warp_moderate", "sharp")}
    identity = score_sets(Restorer("identity"), dirs, progress=False)
    unsharp = score_sets(Restorer("unsharp"), dirs, progress=False)
    counts = compare_per_image(identity, unsharp)
    gains = [row["gain_db"] for row in unsharp["sets"]["warp_moderate"]["per_image"]]
    assert counts["warp_moderate"] == {"better": sum(g > 5e-4 for g in gains), "worse": sum(g < -5e-4 for g in gains),
                                       "same": sum(abs(g) <= 5e-4 for g in gains)}
    n_sharp = unsharp["sets"]["sharp"]["n"]
    assert counts["sharp"] == {"better": 0, "worse": n_sharp, "same": 0}  # identity returns sharp frames exactly
    assert compare_per_image(identity, identity)["warp_moderate"]["same"] == identity["sets"]["warp_moderate"]["n"]
    c = counts["warp_moderate"]
    row = f"| unsharp | {c['better']} / {c['worse']}" + (f" ({c['same']})" if c["same"] else "") + f" | 0 / {n_sharp} |"
    assert "Per image against identity" in format_markdown([identity, unsharp]) and row in format_markdown(
        [identity, unsharp])
    assert "Per image against" not in format_markdown([unsharp])
    renamed = {**unsharp, "sets": {"warp_moderate": {**unsharp["sets"]["warp_moderate"], "per_image": [
        {**r, "name": "x" + r["name"]} for r in unsharp["sets"]["warp_moderate"]["per_image"]]}}}
    with pytest.raises(ValueError, match="same sets"):
        compare_per_image(identity, renamed)


def test_models_of_the_same_file_name_get_distinct_labels():
    """Runs all write last.safetensors: the table (and the pictures named after it) tell them apart by as many
    parent folders as it takes; other labels stay the file name, and one path given twice stays as given."""
    from deblurrt.validation import distinct_labels

    assert distinct_labels(["runs/p/A/last.safetensors", "runs/p/B/last.safetensors", "w/unet_nano_prior.onnx",
                            "identity"]) == ["A/last.safetensors", "B/last.safetensors", "unet_nano_prior.onnx",
                                             "identity"]
    assert distinct_labels(["x/run/last.safetensors", "y/run/last.safetensors", "last.safetensors"]) == [
        "x/run/last.safetensors", "y/run/last.safetensors", "last.safetensors"]
    assert distinct_labels(["a/m.onnx", "a/m.onnx"]) == ["a/m.onnx", "a/m.onnx"]


def test_gain_beyond_tone_forgives_a_global_shift_and_keeps_sharpening(val_sets):
    from deblurrt.validation import Restorer, format_markdown, score_sets, tone_matched

    class Darken:
        """Restores nothing: every pixel 6 levels darker, a tone change a blur-trained model learns."""
        name = label = architecture = "darken"

        def __call__(self, bgr):
            return np.clip(bgr.astype(np.int16) - 6, 0, 255).astype(np.uint8)

    sets_dir, _ = val_sets
    dirs = {"warp_moderate": sets_dir / "warp_moderate"}
    dark = score_sets(Darken(), dirs, progress=False)["sets"]["warp_moderate"]
    # a global shift moves the plain gain (up where the target is darker, as blur in linear light makes it;
    # down here) but is forgiven entirely by the gain beyond tone
    assert abs(dark["gain_db"]["mean"]) > 0.05
    assert abs(dark["gain_beyond_tone_db"]["mean"]) < 0.02
    unsharp = score_sets(Restorer("unsharp"), dirs, progress=False)
    entry = unsharp["sets"]["warp_moderate"]
    # an unsharp mask keeps the mean, so forgiving tone changes its gain only by what the input's shift cost
    assert abs(entry["gain_beyond_tone_db"]["mean"] - entry["gain_db"]["mean"]) < 0.3
    assert entry["gain_beyond_tone_db"]["mean"] != 0.0
    assert "Gain beyond a global tone shift" in format_markdown([unsharp])
    image = np.full((4, 4, 3), (10, 100, 250), np.uint8)
    target = np.full((4, 4, 3), (20, 90, 255), np.uint8)
    assert np.array_equal(tone_matched(image, target), np.full((4, 4, 3), (20, 90, 255), np.uint8))


def test_tone_analysis_script_on_built_sets(val_sets, tmp_path, capsys):
    import json

    from deblurrt.synthesis import srgb_to_linear

    tone = load_script("tone_analysis")
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    darker = np.clip(image.astype(np.int16) - 12, 0, 255).astype(np.uint8)
    held = tone.hold_linear_mean(darker, image)
    # an exposure change in linear light brings the mean back (to 8-bit rounding), black stays black
    assert np.allclose(tone.linear_mean(held), tone.linear_mean(image), atol=2e-3)
    assert not np.allclose(tone.linear_mean(darker), tone.linear_mean(image), atol=2e-3)
    assert np.all(held[darker == 0] == 0)
    same = tone.analyse_pair(image, image, {"identity": image})
    assert same["target_minus_input_levels"] == 0.0 and same["linear_mean_diff"] == 0.0
    assert same["identity:gain_db"] == 0.0
    sets_dir, _ = val_sets
    out = tmp_path / "tone.json"
    assert tone.main([str(sets_dir), "--models", "identity", "--threads", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["sets"]) == {"warp_moderate", "kernel_severe"}  # do-no-harm sets have no target to analyse
    blur = report["sets"]["kernel_severe"]["summary"]
    # linear-light blur brightens in sRGB: the target is darker than its blurry input, and the oracle shift gains
    assert blur["target_minus_input_levels"]["mean"] < 0 and blur["oracle_shift_gain_db"]["mean"] > 0
    assert blur["identity:gain_db"]["mean"] == 0.0
    blurry = cv2.imread(str(next((sets_dir / "kernel_severe" / "blur").glob("*.png"))))
    sharp = cv2.imread(str(next((sets_dir / "kernel_severe" / "sharp").glob("*.png"))))
    assert abs(srgb_to_linear(blurry).mean() - srgb_to_linear(sharp).mean()) * 255 < 1.0
    assert tone.main([str(tmp_path / "nothing")]) == 2
    assert "no blur sets" in capsys.readouterr().err


def test_validate_build_seed_draws_fresh_sets_of_the_same_photos(tmp_path, val_sets):
    from deblurrt.cli import main

    sets_dir, photos = val_sets
    split = tmp_path / "split.txt"
    split.write_text("\n".join(path.name for path in photos) + "\n")
    fresh = tmp_path / "fresh"
    assert main(["validate", "identity", "--build", "--data-root", str(photos[0].parent), "--split", str(split),
                 "--sets", str(fresh), "--seed", "1", "--count", "2", "--sets-only", "warp_moderate",
                 "--quiet"]) == 0
    assert json.loads((fresh / "warp_moderate" / "set.json").read_text())["seed"] == 1
    for name in ("000_photo0.png", "001_photo1.png"):  # same photos and sizes, other crops and streaks
        reference = cv2.imread(str(sets_dir / "warp_moderate" / "blur" / name))
        drawn = cv2.imread(str(fresh / "warp_moderate" / "blur" / name))
        assert drawn.shape == reference.shape and not np.array_equal(drawn, reference)
    # another seed into a folder of seed-0 sets is refused: the reference sets are never overwritten
    before = (sets_dir / "warp_moderate" / "blur" / "000_photo0.png").read_bytes()
    assert main(["validate", "identity", "--build", "--data-root", str(photos[0].parent), "--split", str(split),
                 "--sets", str(sets_dir), "--seed", "2", "--count", "2", "--sets-only", "warp_moderate",
                 "--quiet"]) != 0
    assert (sets_dir / "warp_moderate" / "blur" / "000_photo0.png").read_bytes() == before


def test_validate_command_needs_built_sets_and_keeps_earlier_reports(tmp_path, capsys, val_sets):
    from deblurrt.cli import main

    assert main(["validate", "identity", "--sets", str(tmp_path / "none")]) != 0
    assert "--build" in capsys.readouterr().err
    sets_dir, _ = val_sets
    report = tmp_path / "v.json"
    args = ["validate", "identity", "--sets", str(sets_dir), "--sets-only", "warp_moderate,sharp", "--quiet",
            "--json", str(report)]
    assert main(args) == 0
    record = json.loads(report.read_text())
    assert record["gain_db"] == 0.0 and record["no_harm_psnr"] == 100.0 and record["n"] == 4
    report.write_text("earlier")
    assert main(args) != 0  # an existing report is not replaced without --overwrite
    assert "--overwrite" in capsys.readouterr().err and report.read_text() == "earlier"
    assert main(args + ["--overwrite"]) == 0 and json.loads(report.read_text())["n"] == 4
    # several models: the record carries each one's per-image comparison with the first
    assert main(args[:2] + ["unsharp"] + args[2:] + ["--overwrite"]) == 0
    record = json.loads(report.read_text())
    assert set(record["per_image_vs_first"]) == {"unsharp"}
    assert record["per_image_vs_first"]["unsharp"]["sharp"] == {"better": 0, "worse": 2, "same": 0}
    # --incumbent: the ship rule against the model in service; the unsharp mask changes sharp photos, which
    # identity leaves at 100 dB, so it may not replace identity
    capsys.readouterr()
    assert main(args[:2] + ["unsharp"] + args[2:] + ["--overwrite", "--incumbent", "identity"]) == 0
    out = capsys.readouterr().out
    rule = json.loads(report.read_text())["ship_rule"]
    assert rule["incumbent"] == "identity" and not rule["models"]["unsharp"]["passes"]
    assert any(line.startswith("sharp PSNR") for line in rule["models"]["unsharp"]["not_better"])
    assert "Ship rule against identity" in out and "| unsharp | no | " in out and "sharp PSNR" in out
    assert main(args[:2] + ["unsharp"] + args[2:] + ["--overwrite", "--incumbent", "unet_nano_prior"]) == 2
    assert "is not one of the MODELs" in capsys.readouterr().err


def test_ship_rule_needs_every_mean_better_and_no_larger_shift():
    from deblurrt.validation import ship_rule

    def report(gain, psnr, shift):
        return {"sets": {"warp_mild": {"gain_db": {"mean": gain}},
                         "sharp": {"output_psnr": {"mean": psnr}, "shift_levels": {"mean": shift}}}}

    shipped = report(0.78, 44.9, -0.25)
    assert ship_rule(report(0.80, 45.0, 0.20), shipped) == {"passes": True, "not_better": []}
    equal = ship_rule(report(0.78, 45.0, -0.25), shipped)  # equal is not better
    assert not equal["passes"] and equal["not_better"] == ["warp_mild +0.780 vs +0.780 dB"]
    darker = ship_rule(report(0.90, 45.0, -0.30), shipped)  # the size of the shift counts, not its sign
    assert darker["not_better"] == ["sharp shift of 0.300 vs 0.250 levels (size)"]
    missing = ship_rule({"sets": {"warp_mild": {"gain_db": {"mean": 2.0}}}}, shipped)
    assert missing["not_better"] == ["sharp: not measured"]


# --------------------------------------------------------------------------------- trainer validation

def test_trainer_reports_gain_per_set_and_do_no_harm(tmp_path):
    from tests.test_trainer import make_photos, train_cli

    make_photos(tmp_path / "photos")
    val = tmp_path / "val"
    for name, kernel in (("blurred", (7, 1)), ("sharp", None)):
        for side in ("blur", "sharp"):
            (val / name / side).mkdir(parents=True)
        for path in sorted((tmp_path / "photos").glob("*.png"))[:2]:
            image = cv2.imread(str(path))[:32, :32]
            cv2.imwrite(str(val / name / "sharp" / path.name), image)
            cv2.imwrite(str(val / name / "blur" / path.name), cv2.blur(image, kernel) if kernel else image)
    train_cli(tmp_path, f"data.val_root={val}", "run.steps=2", "run.val_every=2", f"run.out_dir={tmp_path / 'run'}",
              "data.blur_px=2-6", "data.kernel_share=0.5", "data.sharp_share=0.2")
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    validated = [r for r in rows if r.get("val_psnr")]
    assert validated and validated[-1]["val_gain/blurred"] and validated[-1]["val_noharm/sharp"]
    assert 0 < float(validated[-1]["val_noharm/sharp"]) <= 100
    assert (tmp_path / "run" / "best.safetensors").is_file()


def test_train_quality_script_trains_the_v3_recipe_from_shipped_weights_then_resumes(tmp_path):
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    data = tmp_path / "data"
    for folder, name in (("photos", "a.jpg"), ("photos_more", "b.jpg"), ("photos_more", "Aqua.jpg")):
        (data / folder).mkdir(parents=True, exist_ok=True)
        (data / folder / name).write_bytes(b"jpeg")
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "fake_deblurrt"  # records its arguments: what the script asks deblurrt to do
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    env = {**os.environ, "DEBLURRT": str(fake), "DEBLURRT_CACHE": str(tmp_path / "cache"),
           "RUNS": str(tmp_path / "runs")}
    script = [str(repo / "scripts" / "train_quality.sh"), "unet_nano_prior", str(data)]
    subprocess.run(script, env=env, check=True, capture_output=True, text=True)
    train = calls.read_text().splitlines()[-1].split()
    assert train[:2] == ["train", str(repo / "configs" / "unet_nano_prior.yaml")]
    assert str(repo / "configs" / "data" / "blur_v3.yaml") in train
    assert f"run.out_dir={tmp_path / 'runs' / 'unet_nano_prior_v3'}" in train
    assert "data.reuse=4" in train and "data.pool=512" in train
    assert f"model.init={repo / 'weights' / 'unet_nano_prior.safetensors'}" in train and "--resume" not in train
    assert sorted(p.name for p in (tmp_path / "cache" / "train_photos").iterdir()) == ["a.jpg", "b.jpg"]
    (tmp_path / "runs" / "unet_nano_prior_v3").mkdir(parents=True)
    (tmp_path / "runs" / "unet_nano_prior_v3" / "state.safetensors").write_bytes(b"state")
    subprocess.run(script, env=env, check=True, capture_output=True, text=True)
    train = calls.read_text().splitlines()[-1].split()
    assert "--resume" in train and not any(arg.startswith("model.init=") for arg in train)
    wrong = subprocess.run(script, env={**env, "RECIPE": "v9"}, capture_output=True, text=True)
    assert wrong.returncode == 2 and "blur_v9.yaml" in wrong.stderr


def test_polish_script_runs_two_phases_then_soups_and_validates(tmp_path):
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    cache = tmp_path / "cache"
    (cache / "train_photos").mkdir(parents=True)
    (cache / "val_v1").mkdir()
    weights = tmp_path / "R.safetensors"
    weights.write_bytes(b"weights")
    calls = tmp_path / "calls.txt"
    # records its arguments and has the real command line parse every `train` call (--print-config trains
    # nothing); fails for a phase when FAIL_PHASE names it
    real = Path(sys.executable).parent / "deblurrt"
    fake = tmp_path / "fake"
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n'
                    f'if [[ $1 == train ]]; then "{real}" "$@" --print-config > /dev/null || exit 9; fi\n'
                    'if [[ -n "${FAIL_PHASE:-}" && "$*" == *"/$FAIL_PHASE "* ]]; then exit 3; fi\n')
    fake.chmod(0o755)
    env = {**os.environ, "DEBLURRT": str(fake), "PYTHON": str(fake), "DEBLURRT_CACHE": str(cache), "STEPS": "5"}
    script = [str(repo / "scripts" / "polish.sh"), "unet_nano_prior", str(weights), str(tmp_path / "out"),
              "data.crop=128"]
    subprocess.run(script, env=env, check=True, capture_output=True, text=True)
    lines = calls.read_text().splitlines()
    phases = {line.split("run.out_dir=")[1].split()[0]: line.split() for line in lines if line.startswith("train ")}
    assert sorted(phases) == [str(tmp_path / "out" / "A"), str(tmp_path / "out" / "B")]
    for name, args in phases.items():
        assert f"model.init={weights}" in args and "loss.psnr_cap_db=60" in args and "run.steps=5" in args
        assert "data.crop=128" in args  # the caller's overrides reach both phases
        # B: more near-sharp and defocused samples (session 12's shipped phase); A keeps the config's shares
        assert ("data.sharp_share=0.4" in args and "data.defocus_share=0.15" in args) == name.endswith("B")
    soup = next(line for line in lines if "soup.py" in line).split()
    assert soup[1:] == [str(tmp_path / "out" / "soup.safetensors"), str(tmp_path / "out" / "A" / "last.safetensors"),
                        str(tmp_path / "out" / "B" / "last.safetensors")]
    validate = next(line for line in lines if line.startswith("validate ")).split()
    assert str(repo / "weights" / "unet_nano_prior.onnx") in validate and str(weights) in validate
    # the ship rule is judged against the shipped model
    assert validate[validate.index("--incumbent") + 1] == str(repo / "weights" / "unet_nano_prior.onnx")
    again = subprocess.run(script, env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr  # never overwrites a finished polish
    calls.write_text("")
    failed = subprocess.run(script[:3] + [str(tmp_path / "out2")], env={**env, "FAIL_PHASE": "B"},
                            capture_output=True, text=True)
    assert failed.returncode == 3 and "B.log" in failed.stderr
    assert not any("soup.py" in line for line in calls.read_text().splitlines())
    calls.write_text("")
    subprocess.run(script[:3] + [str(tmp_path / "out3")],
                   env={**env, "B_SHARE": "0.25", "B_DEFOCUS": "0", "B_DEFOCUS_PX": "2-10"},
                   check=True, capture_output=True, text=True)
    shares = sorted(arg for line in calls.read_text().splitlines() if line.startswith("train ")
                    for arg in line.split() if arg.startswith(("data.sharp_share=", "data.defocus_")))
    # B_SHARE / B_DEFOCUS / B_DEFOCUS_PX set phase B's shares and radii (parsed by the real command line)
    assert shares == ["data.defocus_px=2-10", "data.defocus_share=0", "data.sharp_share=0.25"]


def test_targets_follow_the_architecture_not_the_file_name(tmp_path, val_sets):
    # a checkpoint is usually called last/best.safetensors: the nano targets must still apply to it
    import shutil

    from deblurrt.validation import Restorer, family_of, score_sets, verdict

    renamed = tmp_path / "best.onnx"
    shutil.copy(REPO / "weights" / "unet_nano_prior.onnx", renamed)
    sets_dir, _ = val_sets
    restorer = Restorer(str(renamed), threads=1)
    assert restorer.label == "best.onnx" and restorer.architecture == "unet_nano_prior"
    report = score_sets(restorer, {"warp_moderate": sets_dir / "warp_moderate"}, limit=1, progress=False)
    assert family_of(report) == "nano" and "warp_moderate>=1.5dB" in verdict(report, family_of(report))
    assert family_of({"label": "identity", "architecture": "identity"}) is None


def test_brightness_probe_stream_columns_on_a_virtual_camera():
    from deblurrt.validation import Restorer

    probe = load_script("brightness_probe")
    stills, pairs = probe.stream_frames(REPO / "assets" / "coffee.png", still=3, blurry=2)
    assert len(stills) == 3 and len(pairs) == 2
    assert all(not np.array_equal(frame, truth) for frame, truth in pairs)  # blurry frames carry their truth
    unsharp = probe.stream_cells(Restorer("unsharp"), stills, pairs)
    still_part, gain_part = unsharp.split(" | ")
    assert float(still_part.split()[0]) < 60 and gain_part.startswith(("+", "-"))


def test_validation_table_script_scores_each_model_at_each_scale(val_sets, tmp_path):
    # the runtime's --target-fps ranking reads this table: the script must run against the validation's report
    # format (it once broke when the reports gained the architecture field)
    import json
    import subprocess
    import sys

    sets_dir, _ = val_sets
    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "validation.json"
    subprocess.run([sys.executable, str(repo / "scripts" / "validation_table.py"), "--sets", str(sets_dir),
                    "--models", str(repo / "weights" / "unet_nano_prior.onnx"), "--scales", "1,0.5", "--limit", "1",
                    "--threads", "1", "--out", str(out), "--quiet"], check=True, capture_output=True, text=True)
    entry = json.loads(out.read_text())["models"]["unet_nano_prior"]
    assert set(entry["gain_db"]) == {"1", "0.5"}
    assert set(entry["sets"]["1"]) == {"warp_moderate", "kernel_severe"}
    assert abs(entry["gain_db"]["1"] - (entry["sets"]["1"]["warp_moderate"] + entry["sets"]["1"]["kernel_severe"]) / 2) < 2e-3


def _listed(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_trainfit_split_holds_training_photos_in_the_held_out_mix():
    """configs/splits/trainfit_photos.txt (the train-fit diagnostic) must never name a held-out photo, or its gap
    to the validation would measure nothing; it keeps the held-out list's size and mix of sources."""
    splits = Path(__file__).resolve().parent.parent / "configs" / "splits"
    held_out, trainfit = _listed(splits / "val_photos.txt"), _listed(splits / "trainfit_photos.txt")
    assert not set(held_out) & set(trainfit)
    assert len(set(trainfit)) == len(trainfit) == len(held_out)

    def mix(names: list[str]) -> dict[str, int]:
        sources = ("photos/", "photos_more/urban100", "photos_more/sunhays80")
        return {source: sum(name.startswith(source) for name in names) for source in sources}

    assert mix(trainfit) == mix(held_out) and sum(mix(trainfit).values()) == len(trainfit)


def test_trainfit_split_names_photos_that_exist(shared_data):
    """Every train-fit photo is in the shared data (and so in the training photos, which are all but the held-out)."""
    from deblurrt.validation import read_photo_list

    splits = Path(__file__).resolve().parent.parent / "configs" / "splits"
    assert len(read_photo_list(splits / "trainfit_photos.txt", shared_data)) == 40
