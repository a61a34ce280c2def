"""Training data: blur synthesis, datasets and ``deblurrt data``. Small generated / scikit-image images only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from deblurrt.cli import main
from deblurrt.errors import DeblurrtError
from deblurrt.synthesis import (
    SEVERITY_PRESETS,
    BlurConfig,
    _corners,
    _diameter,
    _displacements,
    average_frames,
    linear_to_srgb,
    parse_severity,
    shake_trajectory,
    srgb_to_linear,
    synthesize_pair,
)
from deblurrt.train.data.photos import PhotoPool, load_image, save_png, split_photos

skimage_data = pytest.importorskip("skimage.data")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """A 160x160 float crop with faces, text-like detail and flat areas."""
    return skimage_data.astronaut()[40:200, 150:310].astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    """Three small 'photos' from scikit-image, PNG and JPEG."""
    folder = tmp_path_factory.mktemp("photos")
    for name, image in [("astronaut.png", skimage_data.astronaut()[::2, ::2]),
                        ("chelsea.jpg", skimage_data.chelsea()), ("coffee.png", skimage_data.coffee()[::2, ::2])]:
        cv2.imwrite(str(folder / name), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    return folder


# ------------------------------------------------------------------------------------------- synthesis

def test_same_seed_same_pair_different_seed_different(astronaut):
    config = BlurConfig(foreground_prob=0.5, highlight_prob=0.5, jpeg_prob=0.5)
    for seed in (0, 1, 2):
        first = synthesize_pair(astronaut, seed, config, out_size=(128, 128))
        again = synthesize_pair(astronaut, seed, config, out_size=(128, 128))
        assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
        assert first[0].dtype == np.float32 and first[0].shape == (128, 128, 3)
        assert 0.0 <= first[0].min() and first[0].max() <= 1.0
    other = synthesize_pair(astronaut, 3, config, out_size=(128, 128))
    assert not np.array_equal(first[0], other[0])


def test_opencv_thread_count_does_not_change_the_pair(astronaut):
    threads = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        single = synthesize_pair(astronaut, 5, BlurConfig(foreground_prob=1.0))[0]
        cv2.setNumThreads(2)
        multi = synthesize_pair(astronaut, 5, BlurConfig(foreground_prob=1.0))[0]
    finally:
        cv2.setNumThreads(threads)
    assert np.array_equal(single, multi)


def test_blur_strength_grows_with_severity(astronaut):
    scores = {}
    for severity in ("mild", "moderate", "severe"):
        config = BlurConfig.clean(severity)
        scores[severity] = np.mean([psnr(*synthesize_pair(astronaut, seed, config, out_size=(128, 128)))
                                    for seed in range(5)])
    assert scores["mild"] > scores["moderate"] + 1.0 > scores["severe"] + 2.0, scores


def test_severity_ranges_scale_with_the_short_side():
    config = BlurConfig(severity="moderate")
    assert config.severity_range_px(256, 256) == SEVERITY_PRESETS["moderate"]
    assert config.severity_range_px(512, 1024) == (16.0, 36.0)
    assert BlurConfig(severity=(4, 6), reference_size=None).severity_range_px(900, 900) == (4.0, 6.0)
    assert parse_severity("severe") == "severe" and parse_severity("8-18") == (8.0, 18.0)
    for bad in ("extreme", "18-8", "x-y"):
        with pytest.raises(DeblurrtError, match="severity"):
            parse_severity(bad)
    with pytest.raises(DeblurrtError, match="unknown blur severity"):
        BlurConfig(severity="huge")


@pytest.mark.parametrize("bad", ["inf", "nan", "1e9-2e9", "5000-6000", "0-0", "0", "8-inf", "-5"])
def test_severity_must_be_a_finite_usable_range(bad):
    # inf and 1e9 used to reach the trajectory code (OverflowError, NaN sub-frame count); 0-0 made no blur
    with pytest.raises(DeblurrtError, match=r"bad severity .*0 < HI <= 256 \(pixels at a 256-px short side"):
        parse_severity(bad)
    with pytest.raises(DeblurrtError, match="pixels of the produced image"):
        parse_severity(bad, absolute=True)


def test_severity_accepts_the_edges_of_its_range():
    assert parse_severity("0-8") == (0.0, 8.0) and parse_severity("256") == (256.0, 256.0)
    assert parse_severity(" 4-80 ") == (4.0, 80.0) and parse_severity("Mild") == "mild"
    with pytest.raises(DeblurrtError, match="finite"):
        BlurConfig(severity=(4.0, float("inf")))


def test_trajectory_peak_displacement_and_identity_at_mid_exposure():
    rng = np.random.default_rng(0)
    for peak in (5.0, 20.0, 40.0):
        trajectory = shake_trajectory(rng, peak, (200, 300), rotation_weight=0.5, zoom_weight=0.3)
        streak = _diameter(_displacements(trajectory, _corners(200, 300)))
        assert streak == pytest.approx(peak, rel=0.01)
        middle = [np.interp(0.5, np.linspace(0, 1, len(trajectory)), column) for column in trajectory.T]
        assert np.allclose(middle, 0.0, atol=1e-9)


def test_srgb_round_trip_is_exact_and_linear_averaging_differs():
    levels = np.linspace(0, 1, 100_001, dtype=np.float32)
    assert np.abs(linear_to_srgb(srgb_to_linear(levels)) - levels).max() < 1e-6
    codes = np.arange(256, dtype=np.uint8)  # the exact 8-bit lookup path
    assert np.abs(srgb_to_linear(codes) - srgb_to_linear(codes / np.float32(255))).max() < 1e-6
    # a black/white checkerboard, its complement, the board again: each pixel sees light 2/3 or 1/3 of the
    # time; averaging in sRGB would give 0.667 / 0.333, averaging light gives 0.854 / 0.613
    board = (np.indices((16, 16)).sum(0) % 2).astype(np.float32)[..., None].repeat(3, 2)
    blurry, sharp = average_frames([board, 1.0 - board, board])
    on, off = board[..., 0] == 1, board[..., 0] == 0
    assert np.allclose(blurry[on], linear_to_srgb(np.float32(2 / 3)), atol=1e-6)
    assert np.allclose(blurry[off], linear_to_srgb(np.float32(1 / 3)), atol=1e-6)
    assert blurry[on].min() > 2 / 3 + 0.15 and blurry[off].min() > 1 / 3 + 0.25
    assert np.array_equal(sharp, 1.0 - board)  # the middle frame


def test_gopro_averaging_of_identical_frames_returns_the_frame(astronaut):
    blurry, sharp = average_frames([astronaut] * 7)
    assert np.abs(blurry - astronaut).max() < 1e-5
    assert np.array_equal(sharp, astronaut)
    with pytest.raises(DeblurrtError, match="one size"):
        average_frames([astronaut, astronaut[:10]])


def test_point_light_paints_a_streak_as_long_as_the_peak_displacement():
    image = np.zeros((161, 161, 3), np.float32)
    image[80, 80] = 1.0
    for length in (8.0, 16.0, 32.0):
        for seed in range(3):
            config = BlurConfig.clean((length, length), reference_size=None, rotation_weight=0, zoom_weight=0)
            blurry, _ = synthesize_pair(image, seed, config)
            ys, xs = np.nonzero(blurry.max(axis=2) > 0.02)
            lit = np.stack([xs, ys], axis=1).astype(np.float64)
            streak = np.sqrt(((lit[:, None] - lit[None]) ** 2).sum(-1)).max()
            assert length - 1.0 <= streak <= length + 3.0  # bilinear footprint adds about a pixel


def test_boosted_highlights_leave_bright_streaks():
    image = np.full((96, 96, 3), 0.2, np.float32)
    image[46:50, 46:50] = 1.0  # a small lamp, clipped in the photo
    plain = BlurConfig.clean((20, 20), reference_size=None)
    boosted = BlurConfig.clean((20, 20), reference_size=None, highlight_prob=1.0, highlight_gain=(8, 8))
    bright_plain = (synthesize_pair(image, 1, plain)[0].min(axis=2) > 0.7).sum()
    bright_boosted = (synthesize_pair(image, 1, boosted)[0].min(axis=2) > 0.7).sum()
    assert bright_boosted > 3 * max(bright_plain, 1)


def test_flat_image_stays_flat_without_noise_and_not_with_it():
    grey = np.full((64, 96, 3), 0.4, np.float32)
    blurry, sharp = synthesize_pair(grey, 0, BlurConfig.clean("severe", foreground_prob=1.0))
    assert np.abs(blurry - 0.4).max() < 1e-5 and np.abs(sharp - 0.4).max() < 1e-5
    noisy, _ = synthesize_pair(grey, 0, BlurConfig.clean("severe", noise=((0.01, 0.01), (0.01, 0.01))))
    assert noisy.std() > 0.01


def test_sharp_target_is_the_unwarped_middle_subframe(astronaut):
    # no motion: the pair is the input
    blurry, sharp = synthesize_pair(astronaut, 0, BlurConfig.clean((0, 0)))
    assert np.array_equal(sharp, astronaut) and np.abs(blurry - astronaut).max() < 1e-5
    # one sub-frame: only t = 0.5 is exposed, which is the identity, whatever the severity
    blurry, sharp = synthesize_pair(astronaut, 1, BlurConfig.clean("severe", subframes=1))
    assert np.abs(blurry - astronaut).max() < 1e-5
    # with a margin the target is exactly the centre crop, with noise and JPEG on the blurry side only
    blurry, sharp = synthesize_pair(astronaut, 2, BlurConfig(foreground_prob=0.0, jpeg_prob=1.0),
                                    out_size=(96, 128))
    assert np.array_equal(sharp, astronaut[32:128, 16:144])
    assert psnr(blurry, sharp) < 35


def test_uint8_input_gives_the_same_geometry(astronaut):
    as_uint8 = np.rint(astronaut * 255).astype(np.uint8)
    from_uint8 = synthesize_pair(as_uint8, 4, BlurConfig.clean("moderate"))
    from_float = synthesize_pair(as_uint8.astype(np.float32) / 255, 4, BlurConfig.clean("moderate"))
    assert np.abs(from_uint8[0] - from_float[0]).max() < 1e-5
    assert np.array_equal(from_uint8[1], from_float[1])


# ------------------------------------------------------------------------------------------ image I/O

def test_images_load_as_rgb_float_from_8_and_16_bit(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint16)
    rgb[..., 0] = 65535  # pure red
    cv2.imwrite(str(tmp_path / "red16.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    image = load_image(tmp_path / "red16.png")
    assert image.dtype == np.float32 and image.shape == (4, 5, 3)
    assert np.array_equal(image[0, 0], [1.0, 0.0, 0.0])
    save_png(tmp_path / "out.png", image)
    assert np.array_equal(load_image(tmp_path / "out.png"), image)
    assert not list(tmp_path.glob(".*.tmp"))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DeblurrtError, match="broken.jpg"):
        load_image(tmp_path / "broken.jpg")


# ------------------------------------------------------------------------------------- crop sampling

def test_crops_prefer_textured_regions(tmp_path):
    rng = np.random.default_rng(0)
    image = np.full((256, 512, 3), 128, np.uint8)
    image[:, 256:] = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)  # right half: texture
    cv2.imwrite(str(tmp_path / "half.png"), image)
    pool = PhotoPool(tmp_path)
    centres = [crop.x + crop.margin + 32 for crop in (pool.sample(rng, 64, 64, margin=8) for _ in range(300))]
    assert np.mean(np.array(centres) >= 256) > 0.75
    assert np.mean(np.array(centres) < 256) > 0.02  # flat regions are still seen sometimes


def test_split_photos_is_deterministic_and_disjoint(photo_dir):
    train, val = split_photos(photo_dir, val_fraction=0.34, seed=1)
    assert (train, val) == split_photos(photo_dir, val_fraction=0.34, seed=1)
    assert len(val) == 1 and not set(train) & set(val) and len(train) + len(val) == 3
    train, val = split_photos(photo_dir, val_names=["chelsea"], seed=0)
    assert [p.name for p in val] == ["chelsea.jpg"]
    with pytest.raises(DeblurrtError, match="nope"):
        split_photos(photo_dir, val_names=["nope.png"])


# -------------------------------------------------------------------------------------------- datasets

def _write_pairs(folder: Path, names: list[str], size=(24, 32)) -> None:
    rng = np.random.default_rng(len(names))
    for sub in ("blur", "sharp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / "blur" / name), image)
        cv2.imwrite(str(folder / "sharp" / name), image)  # identical content: crops must stay aligned


def test_paired_folder_crops_both_images_alike(tmp_path):
    pytest.importorskip("torch")
    from deblurrt.train.data.datasets import PairedFolder

    _write_pairs(tmp_path, ["a.png", "b.png"])
    full = PairedFolder(tmp_path)
    assert len(full) == 2 and full[0]["name"] == "a.png" and full[0]["blur"].shape == (3, 24, 32)
    cropped = PairedFolder(tmp_path, crop=16, augment=True, seed=0)
    for index in range(2):
        item = cropped[index]
        assert item["blur"].shape == (3, 16, 16)
        assert bool((item["blur"] == item["sharp"]).all())
        assert bool((cropped[index]["blur"] == item["blur"]).all())  # seeded: reproducible


def test_paired_folder_mismatch_lists_the_names(tmp_path):
    pytest.importorskip("torch")
    from deblurrt.train.data.datasets import PairedFolder

    _write_pairs(tmp_path, ["a.png", "b.png"])
    cv2.imwrite(str(tmp_path / "blur" / "only_blur.png"), np.zeros((4, 4, 3), np.uint8))
    for i in range(12):
        cv2.imwrite(str(tmp_path / "sharp" / f"s{i:02d}.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DeblurrtError) as error:
        PairedFolder(tmp_path)
    message = str(error.value)
    assert "only_blur.png" in message and "s00.png" in message and "12 only in" in message
    assert "s11.png" not in message  # long lists are cut, with the count


def test_gopro_layout_reads_and_explains_a_wrong_root(tmp_path):
    pytest.importorskip("torch")
    from deblurrt.train.data.datasets import GoProFolder

    for split, scene, names in [("train", "GOPR0372_07_00", ["000047.png", "000048.png"]),
                                ("train", "GOPR0374_11_00", ["000001.png"]), ("test", "GOPR0384_11_00", ["1.png"])]:
        _write_pairs(tmp_path / split / scene, names)
        (tmp_path / split / scene / "blur_gamma").mkdir()  # present in GoPro_Large, ignored
    train = GoProFolder(tmp_path, split="train")
    assert [train[i]["name"] for i in range(len(train))] == [
        "GOPR0372_07_00/000047.png", "GOPR0372_07_00/000048.png", "GOPR0374_11_00/000001.png"]
    assert len(GoProFolder(tmp_path, split="test")) == 1
    with pytest.raises(DeblurrtError, match="GoPro_Large"):
        GoProFolder(tmp_path / "train")


def test_realblur_list_reads_pairs_relative_to_root(tmp_path):
    pytest.importorskip("torch")
    from deblurrt.train.data.datasets import RealBlurList

    base = "RealBlur-J_ECC_IMCORR_centroid_itensity_ref/scene230"
    for sub, name in [("gt", "gt_1.png"), ("blur", "blur_1.png"), ("gt", "gt_2.png"), ("blur", "blur_2.png")]:
        (tmp_path / base / sub).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / base / sub / name), np.full((8, 8, 3), 200 if sub == "gt" else 50, np.uint8))
    lines = [f"{base}/gt/gt_{i}.png {base}/blur/blur_{i}.png" for i in (1, 2)]
    (tmp_path / "RealBlur_J_test_list.txt").write_text("\n".join(lines) + "\n\n")
    dataset = RealBlurList(tmp_path, "RealBlur_J_test_list.txt")
    assert len(dataset) == 2
    item = dataset[1]
    assert item["name"] == f"{base}/blur/blur_2.png"
    assert float(item["sharp"].mean()) == pytest.approx(200 / 255) and float(item["blur"].mean()) == pytest.approx(50 / 255)
    (tmp_path / "bad_list.txt").write_text(lines[0] + "\nmissing/gt.png missing/blur.png\n")
    with pytest.raises(DeblurrtError, match="missing/gt.png"):
        RealBlurList(tmp_path, "bad_list.txt")


def test_synthetic_pairs_are_reproducible_across_instances_and_workers(photo_dir):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from deblurrt.train.data.datasets import SyntheticPairs

    first = SyntheticPairs(photo_dir, crop=48, length=6, severity="severe", seed=3)
    second = SyntheticPairs(photo_dir, crop=48, length=6, severity="severe", seed=3)
    a, b = first[4], second[4]
    assert a["name"] == b["name"] and bool((a["blur"] == b["blur"]).all()) and bool((a["sharp"] == b["sharp"]).all())
    assert a["blur"].shape == (3, 48, 48) and a["blur"].dtype == torch.float32
    assert not bool((first[5]["sharp"] == a["sharp"]).all())
    first.set_epoch(1)
    assert not bool((first[4]["blur"] == a["blur"]).all())  # a new epoch draws new items
    first.set_epoch(0)

    def collect(workers: int) -> list:
        # spawn, as the trainer does: forked workers can deadlock in OpenCV's thread pool after the parent used it
        loader = DataLoader(first, batch_size=2, num_workers=workers,
                            multiprocessing_context="spawn" if workers else None)
        return [batch for batch in loader]

    serial, parallel = collect(0), collect(2)
    assert len(serial) == len(parallel) == 3
    for s, p in zip(serial, parallel, strict=True):
        assert s["name"] == p["name"] and s["blur"].shape == (2, 3, 48, 48)
        assert bool((s["blur"] == p["blur"]).all()) and bool((s["sharp"] == p["sharp"]).all())


def test_synthetic_pairs_from_the_shared_photos(shared_data):
    pytest.importorskip("torch")
    from deblurrt.train.data.datasets import SyntheticPairs

    photos = shared_data / "photos"
    if not photos.is_dir():
        pytest.skip("no shared photos")
    train, val = split_photos(photos, val_fraction=0.1, seed=0)
    dataset = SyntheticPairs(train, crop=128, length=4, seed=0)
    item = dataset[0]
    assert item["blur"].shape == (3, 128, 128)
    assert not set(dataset.pool.names) & {p.name for p in val}


# ------------------------------------------------------------------------------- deblurrt data synth

def _synth(photo_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "deblurrt", "data", "synth", str(photo_dir), str(out), "--count", "3",
               "--size", "64x48", "--seed", "1", "--severity", "moderate", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_data_synth_writes_a_reproducible_paired_set(photo_dir, tmp_path):
    first = _synth(photo_dir, tmp_path / "a")
    assert first.returncode == 0, first.stderr
    blur = sorted(p.name for p in (tmp_path / "a" / "blur").iterdir())
    assert blur == sorted(p.name for p in (tmp_path / "a" / "sharp").iterdir())
    assert blur == ["0000_astronaut.png", "0001_chelsea.png", "0002_coffee.png"]
    assert cv2.imread(str(tmp_path / "a" / "blur" / blur[0])).shape == (48, 64, 3)
    record = json.loads((tmp_path / "a" / "synth.json").read_text())
    assert record["severity_px"] == [pytest.approx(8 * 48 / 256), pytest.approx(18 * 48 / 256)]
    assert [item["photo"] for item in record["items"]] == ["astronaut.png", "chelsea.jpg", "coffee.png"]
    assert {"blur_seed", "crop_seed", "x", "y", "flip", "rot90"} <= set(record["items"][0])
    assert record["versions"]["deblurrt"] and "synth" in record["command"]
    second = _synth(photo_dir, tmp_path / "b")
    assert second.returncode == 0, second.stderr
    for sub in ("blur", "sharp"):
        for name in blur:
            assert (tmp_path / "a" / sub / name).read_bytes() == (tmp_path / "b" / sub / name).read_bytes()
    # an existing set is kept unless --overwrite
    again = _synth(photo_dir, tmp_path / "a")
    assert again.returncode == 2 and "not empty" in again.stderr and "--overwrite" in again.stderr
    fewer = _synth(photo_dir, tmp_path / "a", "--overwrite", "--exclude", "coffee")
    assert fewer.returncode == 0, fewer.stderr
    assert sorted(p.name for p in (tmp_path / "a" / "blur").iterdir()) == [
        "0000_astronaut.png", "0001_chelsea.png", "0002_astronaut.png"]


@pytest.mark.parametrize("args, problem", [
    (["--size", "0x64"], "--size"),
    (["--size", "big"], "--size"),
    (["--severity", "wild"], "severity"),
    (["--exclude", "nothere.png"], "nothere.png"),
    (["--size", "2000"], "smaller than"),
    (["--seed", "-1"], "--seed"),
])
def test_data_synth_bad_arguments_exit_2_naming_the_problem(photo_dir, tmp_path, capsys, args, problem):
    code = main(["data", "synth", str(photo_dir), str(tmp_path / "out"), "--count", "1", *args])
    assert code == 2
    assert problem in capsys.readouterr().err


def test_data_synth_missing_or_empty_photo_folder(tmp_path, capsys):
    assert main(["data", "synth", str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    result = subprocess.run([sys.executable, "-m", "deblurrt", "data", "synth", str(tmp_path / "empty"),
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no images" in result.stderr


def test_data_help_lists_synth_and_split(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "synth" in out and "split" in out and "examples:" in out


def test_data_split_writes_lists_usable_by_synth(photo_dir, tmp_path, capsys):
    assert main(["data", "split", str(photo_dir), "--val-fraction", "0.34", "--out", str(tmp_path)]) == 0
    val = (tmp_path / "val_photos.txt").read_text().split()
    train = (tmp_path / "train_photos.txt").read_text().split()
    assert len(val) == 1 and len(train) == 2
    code = main(["data", "synth", str(photo_dir), str(tmp_path / "set"), "--count", "2", "--size", "32",
                 "--photos-list", str(tmp_path / "val_photos.txt")])
    assert code == 0
    assert all(Path(val[0]).stem in p.name for p in (tmp_path / "set" / "blur").iterdir())


@pytest.mark.parametrize("severity", ["inf", "1e9-2e9", "nan", "0-0", "5000-6000"])
def test_data_synth_refuses_an_unusable_severity_before_writing_anything(photo_dir, tmp_path, capsys, severity):
    out = tmp_path / "set"
    code = main(["data", "synth", str(photo_dir), str(out), "--count", "1", "--size", "32", "--severity", severity])
    assert code == 2
    err = capsys.readouterr().err
    assert f"--severity: bad severity '{severity}'" in err and "0 < HI <= 256" in err and "Fix:" in err
    assert "Traceback" not in err
    assert not out.exists()  # no half-made blur/ and sharp/ without synth.json


def _copy_photos(photo_dir: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for photo in photo_dir.iterdir():
        (folder / photo.name).write_bytes(photo.read_bytes())
    return folder


def test_data_synth_never_writes_into_or_around_the_photo_folder(photo_dir, tmp_path, capsys):
    photos = _copy_photos(photo_dir, tmp_path / "data" / "photos")
    before = sorted(p.name for p in photos.iterdir())
    # the photo folder itself, also through another spelling, and even with --overwrite (README: always refused)
    for out in (photos, photos / ".." / "photos"):
        code = main(["data", "synth", str(photos), str(out), "--overwrite", "--count", "1", "--size", "32"])
        assert code == 2
        assert "is the input" in capsys.readouterr().err
    # a folder that contains the photo folder
    code = main(["data", "synth", str(photos), str(tmp_path / "data"), "--overwrite", "--count", "1", "--size", "32"])
    assert code == 2
    assert "contains the input folder" in capsys.readouterr().err
    assert sorted(p.name for p in photos.iterdir()) == before
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["photos"]


def test_data_split_keeps_existing_lists_unless_overwrite(photo_dir, tmp_path, capsys):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "val_photos.txt").write_text("my hand-edited list\n")
    command = ["data", "split", str(photo_dir), "--val-fraction", "0.34", "--out", str(lists)]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "val_photos.txt already exists" in err and "--overwrite" in err
    # both lists are checked before either is written: no train list next to the kept val list
    assert (lists / "val_photos.txt").read_text() == "my hand-edited list\n"
    assert not (lists / "train_photos.txt").exists()
    assert main([*command, "--overwrite"]) == 0
    assert len((lists / "val_photos.txt").read_text().split()) == 1
    assert len((lists / "train_photos.txt").read_text().split()) == 2
    assert sorted(p.name for p in lists.iterdir()) == ["train_photos.txt", "val_photos.txt"]  # no temporary left
    capsys.readouterr()
    # the same command again (a script's retry) finds the same names: nothing to replace, nothing refused
    assert main(command) == 0
    assert "(unchanged)" in capsys.readouterr().out
    # an edited train list alone is refused too, and the missing val list is not written beside it
    (lists / "train_photos.txt").write_text("astronaut.png\n")
    (lists / "val_photos.txt").unlink()
    assert main(command) == 2
    assert "train_photos.txt already exists" in capsys.readouterr().err
    assert (lists / "train_photos.txt").read_text() == "astronaut.png\n"
    assert not (lists / "val_photos.txt").exists()


def test_data_split_out_that_is_a_file_is_refused(photo_dir, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["data", "split", str(photo_dir), "--out", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "x"
