"""``deblurrt eval``: the numbers equal a hand computation with deblurrt.metrics over the same FrameAdapter
outputs; paired, GoPro and RealBlur layouts; mismatch errors; --save; ONNX and the PyTorch checkpoint agree;
and the fast synthetic:// camera is deterministic, equals explicit warps, and is timed."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from deblurrt.errors import DeblurrtError
from deblurrt.metrics import psnr, ssim

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture
def models(tiny_model):
    """The tiny model as ONNX and as the .safetensors checkpoint it was exported from."""
    return {"onnx": tiny_model["onnx"], "safetensors": tiny_model["ckpt"]}


def make_pairs(folder, names, size=(70, 100), seed=0):
    """Blur/sharp PNG pairs (odd sizes, so the runtime must pad and crop)."""
    rng = np.random.default_rng(seed)
    (folder / "blur").mkdir(parents=True)
    (folder / "sharp").mkdir(parents=True)
    for name in names:
        sharp = cv2.GaussianBlur(rng.integers(0, 256, (*size, 3), dtype=np.uint8), (0, 0), 1.0)
        blur = cv2.blur(sharp, (7, 1))
        cv2.imwrite(str(folder / "sharp" / name), sharp)
        cv2.imwrite(str(folder / "blur" / name), blur)
    return folder


def deblurrt(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "deblurrt", "eval", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def test_eval_matches_a_hand_computation_and_writes_the_json(models, tmp_path):
    from deblurrt.runtime.backends import open_backend
    from deblurrt.runtime.prepost import FrameAdapter

    data = make_pairs(tmp_path / "val", ["a.png", "b.png", "c.png"])
    report_path = tmp_path / "report.json"
    result = deblurrt(models["onnx"], "--data", data, "--json", report_path, "--threads", 2)
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert {"model", "backend", "precision", "data", "count", "input", "output", "gain_db", "per_image",
            "environment"} <= set(report)
    # the contract: at least these keys, psnr/ssim being the OUTPUT means
    assert {"model", "backend", "n", "psnr", "ssim", "input_psnr", "input_ssim", "per_image"} <= set(report)
    assert report["n"] == 3 and report["reference"] == "sharp"
    assert report["psnr"] == report["output"]["psnr"] and report["ssim"] == report["output"]["ssim"]
    assert report["input_psnr"] == report["input"]["psnr"] and report["input_ssim"] == report["input"]["ssim"]
    for row in report["per_image"]:
        assert {"name", "psnr", "ssim", "input_psnr"} <= set(row)
        assert row["psnr"] == row["output_psnr"] and row["ssim"] == row["output_ssim"]
        assert row["input_sharpness"] > 0 and row["sharpness_ratio"] > 0
    assert report["sharpness"]["input"] > 0 and report["sharpness"]["laplacian_var"]["ratio"] > 0
    assert report["backend"] == "onnxruntime" and report["precision"] == "fp32" and report["count"] == 3
    assert [row["name"] for row in report["per_image"]] == ["a.png", "b.png", "c.png"]
    assert {"opencv", "numpy", "python", "cpu_count"} <= set(report["environment"])

    # by hand: the same backend and FrameAdapter, metrics from deblurrt.metrics on RGB
    expected_in, expected_out = [], []
    with open_backend(models["onnx"], threads=2) as backend:
        adapter = FrameAdapter.for_backend(backend)
        for row, name in zip(report["per_image"], ["a.png", "b.png", "c.png"], strict=True):
            blur = cv2.imread(str(data / "blur" / name))
            sharp = cv2.imread(str(data / "sharp" / name))
            out = adapter(backend.infer, blur)
            assert out.shape == blur.shape
            expected_in.append(psnr(blur[:, :, ::-1], sharp[:, :, ::-1]))
            expected_out.append(psnr(out[:, :, ::-1], sharp[:, :, ::-1]))
            assert row["input_psnr"] == pytest.approx(expected_in[-1], abs=1e-3)
            assert row["output_psnr"] == pytest.approx(expected_out[-1], abs=1e-3)
            assert row["output_ssim"] == pytest.approx(ssim(out[:, :, ::-1], sharp[:, :, ::-1]), abs=1e-3)
            assert row["latency_ms"] > 0
    assert report["input"]["psnr"] == pytest.approx(np.mean(expected_in), abs=1e-3)
    assert report["output"]["psnr"] == pytest.approx(np.mean(expected_out), abs=1e-3)
    assert report["gain_db"] == pytest.approx(np.mean(expected_out) - np.mean(expected_in), abs=2e-3)
    assert "mean" in result.stdout and "a.png" in result.stdout and "ms/image (p50)" in result.stdout


def test_gopro_layout_limit_and_save(models, tmp_path):
    root = tmp_path / "GoPro_Large"
    make_pairs(root / "test" / "GOPR0001", ["000001.png", "000002.png"], seed=1)
    make_pairs(root / "test" / "GOPR0002", ["000001.png"], seed=2)
    make_pairs(root / "train" / "GOPR0099", ["000001.png"], seed=3)  # the train split is not evaluated
    saved = tmp_path / "out"
    result = deblurrt(models["onnx"], "--data", root, "--save", saved, "--json", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["layout"] == "gopro" and report["count"] == 3
    names = sorted(str(p.relative_to(saved)) for p in saved.rglob("*.png"))
    assert names == ["GOPR0001/000001.png", "GOPR0001/000002.png", "GOPR0002/000001.png"]
    image = cv2.imread(str(saved / "GOPR0001" / "000001.png"))
    assert image.shape == (70, 100, 3)
    assert not list(saved.rglob(".*"))  # no temporary files left behind

    limited = deblurrt(models["onnx"], "--data", root / "test", "--limit", 1, "--quiet")
    assert limited.returncode == 0, limited.stderr
    assert "1 images" in limited.stdout


def test_realblur_list(models, tmp_path):
    from deblurrt.runtime.evaluate import find_pairs

    data = make_pairs(tmp_path / "rb", ["x.png", "y.png"])
    (data / "list.txt").write_text("# gt blur\nsharp/x.png blur/x.png\n\nsharp/y.png blur/y.png\n")
    layout, pairs = find_pairs(data, "list.txt")
    assert layout == "realblur" and [p.name for p in pairs] == ["blur/x.png", "blur/y.png"]
    assert pairs[0].sharp == data / "sharp" / "x.png"
    result = deblurrt(models["onnx"], "--data", data, "--list", "list.txt", "--quiet")
    assert result.returncode == 0, result.stderr


def test_mismatch_missing_and_empty_data_exit_2_with_the_fix(models, tmp_path):
    data = make_pairs(tmp_path / "val", ["a.png", "b.png"])
    (data / "sharp" / "b.png").rename(data / "sharp" / "z.png")
    result = deblurrt(models["onnx"], "--data", data)
    assert result.returncode == 2
    assert "b.png" in result.stderr and "z.png" in result.stderr and "Fix:" in result.stderr

    missing = deblurrt(models["onnx"], "--data", tmp_path / "nope")
    assert missing.returncode == 2 and "does not exist" in missing.stderr

    (tmp_path / "empty" / "blur").mkdir(parents=True)
    (tmp_path / "empty" / "sharp").mkdir()
    empty = deblurrt(models["onnx"], "--data", tmp_path / "empty")
    assert empty.returncode == 2 and "no images" in empty.stderr

    wrong = deblurrt(models["onnx"], "--data", data, "--backend", "trt")
    assert wrong.returncode == 2 and "Fix:" in wrong.stderr

    from deblurrt.runtime.evaluate import find_pairs

    with pytest.raises(DeblurrtError, match="no evaluation layout"):
        find_pairs(tmp_path / "empty" / "blur")
    (tmp_path / "empty" / "sharp").rmdir()  # blur/ alone and empty: blurry-only, but nothing to score
    with pytest.raises(DeblurrtError, match="no images"):
        find_pairs(tmp_path / "empty")


def _blurry_images(folder, names, size=(70, 100), seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for name in names:
        sharp = cv2.GaussianBlur(rng.integers(0, 256, (*size, 3), dtype=np.uint8), (0, 0), 1.0)
        cv2.imwrite(str(folder / name), cv2.blur(sharp, (7, 1)))
    return folder


@pytest.mark.parametrize("layout", ["images", "blur-only"])
def test_no_sharp_images_reports_no_reference_sharpness_only(models, tmp_path, layout):
    from deblurrt.runtime.backends import open_backend
    from deblurrt.runtime.evaluate import find_pairs, sharpness
    from deblurrt.runtime.prepost import FrameAdapter

    root = tmp_path / "phone"
    folder = _blurry_images(root if layout == "images" else root / "blur", ["p1.png", "p2.jpg"])
    found, pairs = find_pairs(root)
    assert found == layout and [p.name for p in pairs] == ["p1.png", "p2.jpg"]
    assert all(p.sharp is None for p in pairs)

    report_path = tmp_path / "nr.json"
    result = deblurrt(models["onnx"], "--data", root, "--json", report_path, "--threads", 2,
                      "--save", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert {"model", "backend", "n", "psnr", "ssim", "input_psnr", "input_ssim", "per_image"} <= set(report)
    assert report["n"] == 2 and report["reference"] == "none" and report["layout"] == layout
    assert report["psnr"] is report["ssim"] is report["input_psnr"] is report["input_ssim"] is None
    assert report["gain_db"] is None
    with open_backend(models["onnx"], threads=2) as backend:
        adapter = FrameAdapter.for_backend(backend)
        ratios = []
        for row in report["per_image"]:
            assert {"name", "psnr", "ssim", "input_psnr"} <= set(row)
            assert row["psnr"] is row["ssim"] is row["input_psnr"] is None
            blurry = cv2.imread(str(folder / row["name"]))
            out = adapter(backend.infer, blurry)
            assert row["input_sharpness"] == pytest.approx(sharpness(blurry)["gradient"], abs=1e-3)
            assert row["output_sharpness"] == pytest.approx(sharpness(out)["gradient"], abs=1e-3)
            assert row["output_laplacian_var"] == pytest.approx(sharpness(out)["laplacian_var"], rel=1e-4)
            assert row["sharpness_ratio"] == pytest.approx(row["output_sharpness"] / row["input_sharpness"],
                                                           rel=1e-3)
            ratios.append(row["sharpness_ratio"])
    assert report["sharpness"]["ratio"] == pytest.approx(np.mean(ratios), abs=1e-3)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p1.png", "p2.png"]
    assert "no-reference sharpness only" in result.stdout and "PSNR/SSIM need sharp images" in result.stdout
    assert "in grad" in result.stdout


def test_sharpness_measure_ranks_blur():
    from deblurrt.runtime.evaluate import sharpness

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8), (0, 0), 1.0)
    flat = np.full_like(image, 128)
    assert sharpness(flat) == {"gradient": 0.0, "laplacian_var": 0.0}
    sharp, blurred = sharpness(image), sharpness(cv2.blur(image, (9, 9)))
    assert sharp["gradient"] > 2 * blurred["gradient"] and sharp["laplacian_var"] > 4 * blurred["laplacian_var"]


def test_onnx_and_safetensors_agree(models, tmp_path):
    from deblurrt.runtime.backends import open_backend
    from deblurrt.runtime.evaluate import evaluate, find_pairs, summarize

    data = make_pairs(tmp_path / "val", ["a.png", "b.png"], seed=5)
    layout, pairs = find_pairs(data)
    reports = {}
    for kind in ("onnx", "safetensors"):
        with open_backend(models[kind], threads=2) as backend:
            reports[kind] = summarize(evaluate(backend, pairs), backend=backend, data=data, layout=layout)
    assert reports["safetensors"]["backend"] == "torch"
    assert abs(reports["onnx"]["output"]["psnr"] - reports["safetensors"]["output"]["psnr"]) < 0.05
    assert reports["onnx"]["input"] == reports["safetensors"]["input"]


# ------------------------------------------------------------------------------- synthetic:// camera

def test_fast_synthetic_camera_is_deterministic_per_frame():
    from deblurrt.runtime.synthetic import SyntheticCamera, parse_synthetic_uri

    options = parse_synthetic_uri("synthetic://?size=160x96&seed=7")
    first, second = SyntheticCamera(options), SyntheticCamera(options)
    a = [first.render(i) for i in range(3)]
    b = [second.render(i) for i in (2, 1, 0)][::-1]  # any order: frame i depends on (seed, i) only
    for (blurry, sharp), (again, sharp_again) in zip(a, b, strict=True):
        np.testing.assert_array_equal(blurry, again)
        np.testing.assert_array_equal(sharp, sharp_again)
        assert blurry.dtype == np.uint8 and blurry.shape == (96, 160, 3)
        assert 12 < psnr(blurry, sharp) < 35  # blurred, yet the same view
    other = SyntheticCamera(parse_synthetic_uri("synthetic://?size=160x96&seed=8")).render(0)
    assert not np.array_equal(other[0], a[0][0])


def test_a_small_photo_is_upscaled_to_cover_the_frame_and_said_once(tmp_path, caplog):
    from deblurrt.runtime.synthetic import SyntheticCamera, parse_synthetic_uri

    rng = np.random.default_rng(0)
    photo = tmp_path / "small.png"
    cv2.imwrite(str(photo), cv2.GaussianBlur(rng.integers(0, 256, (100, 150, 3), dtype=np.uint8), (0, 0), 1.0))
    with caplog.at_level("WARNING", logger="deblurrt.runtime.synthetic"):
        camera = SyntheticCamera(parse_synthetic_uri(f"synthetic://{photo}?size=160x96"))
        for index in range(3):
            blurry, sharp = camera.render(index)
            assert blurry.shape == sharp.shape == (96, 160, 3)
    notes = [r.getMessage() for r in caplog.records if r.name == "deblurrt.runtime.synthetic"]
    assert len(notes) == 1 and notes[0] == camera.scale_note
    assert "small.png is 150x100" in notes[0] and "upscaled" in notes[0]
    height, width = camera.scene_bgr.shape[:2]
    assert height >= 96 + 2 * camera.margin and width >= 160 + 2 * camera.margin  # covers frame + shake
    assert abs(width / height - 1.5) < 0.02  # aspect kept

    big = tmp_path / "big.png"
    cv2.imwrite(str(big), rng.integers(0, 256, (600, 900, 3), dtype=np.uint8))
    caplog.clear()
    with caplog.at_level("WARNING", logger="deblurrt.runtime.synthetic"):
        camera = SyntheticCamera(parse_synthetic_uri(f"synthetic://{big}?size=160x96"))
    assert camera.scale_note is None and not caplog.records and camera.scene_bgr.shape == (600, 900, 3)


def test_motion_kernel_equals_averaging_translated_warps():
    """The fast renderer's premise: for a translating camera, filtering with the splatted trajectory equals
    averaging bilinear warps of the scene along it (what synthesize_pair does)."""
    from deblurrt.runtime.synthetic import blur_with_kernel, motion_kernel
    from deblurrt.synthesis import resample_trajectory, shake_trajectory

    rng = np.random.default_rng(3)
    height, width, margin = 48, 64, 30
    window = rng.random((height + 2 * margin, width + 2 * margin, 3), dtype=np.float32)
    trajectory = shake_trajectory(rng, 22.0, (height, width), rotation_weight=0.0, zoom_weight=0.0)
    kernel, radius = motion_kernel(trajectory[:, :2], step=0.02)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5) and radius < margin
    fast = blur_with_kernel(window, kernel, radius, margin, (height, width))
    rows = resample_trajectory(trajectory, 801)
    warps = np.zeros((height, width, 3), np.float32)
    for dx, dy, _, _ in rows:
        matrix = np.array([[1.0, 0.0, margin - dx], [0.0, 1.0, margin - dy]])
        warps += cv2.warpAffine(window, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    warps /= len(rows)
    assert np.abs(fast - warps).max() < 2e-3


def test_synthetic_camera_speed_benchmark(record_property):
    """Benchmark, not an assertion on time: frames per second of the virtual camera at 640x360, one thread.
    The rates go to the test report's properties (``--junitxml``), not into the test output."""
    from deblurrt.runtime.synthetic import SyntheticCamera, parse_synthetic_uri

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        rates = {}
        for render, count in (("fast", 30), ("exact", 4)):
            camera = SyntheticCamera(parse_synthetic_uri(f"synthetic://?size=640x360&render={render}"))
            camera.render(0)
            start = time.perf_counter()
            for index in range(1, count + 1):
                camera.render(index)
            rates[render] = count / (time.perf_counter() - start)
    finally:
        cv2.setNumThreads(threads)
    record_property("synthetic_fast_fps", round(rates["fast"], 1))
    record_property("synthetic_exact_fps", round(rates["exact"], 1))
    assert rates["fast"] > 0 and rates["exact"] > 0
