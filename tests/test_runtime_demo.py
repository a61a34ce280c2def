"""``deblurrt demo``: with --model it writes a playable side-by-side mp4 of N frames and the stats JSON; without
trained weights it falls back to an untrained export and says so loudly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from deblurrt.export.onnx_export import export_onnx
    from deblurrt.train.models import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("demo")
    return export_onnx(create_model("unet_tiny_prior").eval(), folder / "tiny.onnx", sample_shape=(64, 96))


def demo(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "deblurrt", "demo", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def read_video(path):
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} does not open"
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def test_demo_with_a_model_writes_side_by_side_video_and_stats(model, tmp_path):
    out = tmp_path / "demo.mp4"
    result = demo("--model", model, "--output", out, "--frames", 12, "--size", "160x96", "--quiet")
    assert result.returncode == 0, result.stderr
    frames = read_video(out)
    assert len(frames) == 12 and frames[0].shape == (96, 320, 3)  # blurry | deblurred
    stats = json.loads(out.with_suffix(".json").read_text())
    assert stats["frames_out"] == 12 and stats["psnr_db"]["frames"] == 12
    assert stats["demo"]["untrained"] is False
    assert "PSNR vs the sharp truth" in result.stdout and "FPS" in result.stdout
    assert "UNTRAINED" not in result.stdout


def test_demo_without_weights_falls_back_to_untrained_with_a_banner(tmp_path):
    out = tmp_path / "fallback.mp4"
    result = demo("--output", out, "--frames", 4, "--size", "128x64", "--quiet",
                  env={"DEBLURRT_DEMO_MODEL": str(tmp_path / "weights" / "missing.onnx")})
    assert result.returncode == 0, result.stderr
    assert "missing.onnx is not there" in result.stdout
    assert "UNTRAINED weights: output is not deblurred" in result.stdout
    frames = read_video(out)
    assert len(frames) == 4 and frames[0].shape == (64, 256, 3)
    # the banner is drawn across the middle of the frame: a red band
    band = frames[0][28:36, :, :].astype(int)
    assert (band[:, :, 2] - band[:, :, 1]).mean() > 60
    assert json.loads(out.with_suffix(".json").read_text())["demo"]["untrained"] is True


def test_demo_with_a_missing_model_exits_2(tmp_path):
    result = demo("--model", tmp_path / "nope.onnx", "--output", tmp_path / "x.mp4")
    assert result.returncode == 2 and "does not exist" in result.stderr and "Fix:" in result.stderr


def test_demo_help_has_examples():
    result = subprocess.run([sys.executable, "-m", "deblurrt", "demo", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "examples:" in result.stdout and "UNTRAINED" not in result.stderr
