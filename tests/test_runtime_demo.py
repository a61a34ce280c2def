"""``deblurrt demo``: by default it films the shipped CC0 photo (assets/coffee.png, upscaled to cover the frame)
and writes runs/demo/ (a playable side-by-side mp4, stats.json, a few side-by-side PNG frames) and prints a
summary (FPS, per-stage latency, live PSNR in/out); without trained weights it falls back to an untrained
export and says so loudly; without the photo it films the generated scene and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def model(tiny_model):
    return tiny_model["onnx"]


def demo(*args, env=None, cwd=None, timeout=180):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("DEBLURRT_DEMO_MODEL", "DEBLURRT_DEFAULT_MODEL", "DEBLURRT_DEMO_PHOTO")}
    return subprocess.run([sys.executable, "-m", "deblurrt", "demo", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**environment, **(env or {})}, cwd=cwd)


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


def test_demo_defaults_film_the_shipped_photo_into_runs_demo(model, tmp_path):
    assert (REPO / "assets" / "coffee.png").is_file()
    result = demo("--model", model, "--frames", 6, "--png-frames", "2,5,50", "--quiet", "--no-pace", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "runs" / "demo"  # the default folder, relative to where the demo runs
    frames = read_video(out / "demo.mp4")
    assert len(frames) == 6 and frames[0].shape == (360, 1280, 3)  # blurry | deblurred at 640x360
    assert sorted(p.name for p in out.glob("*.png")) == ["frame_0002.png", "frame_0005.png"]  # 50 > --frames
    assert cv2.imread(str(out / "frame_0005.png")).shape == (360, 1280, 3)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["frames_out"] == 6 and stats["psnr_db"]["frames"] == 6
    assert stats["demo"]["untrained"] is False
    assert stats["demo"]["scene"] == str(REPO / "assets" / "coffee.png")
    assert "upscaled" in stats["demo"]["scene_note"] and "coffee.png" in stats["demo"]["source"]
    # the scene and its upscaling are stated (once), then the summary block
    assert result.stdout.count("coffee.png is 600x400") == 1 and "upscaled" in result.stdout
    summary = result.stdout[result.stdout.index("deblurrt demo: summary"):]
    for text in ("FPS", "latency", "capture", "infer", "write", "(p50 per stage)", "PSNR vs the sharp truth",
                 "input", "output", "demo.mp4", "stats.json", "frame_0002.png"):
        assert text in summary, text
    assert "UNTRAINED" not in result.stdout


def test_demo_without_weights_or_photo_falls_back_and_says_so(tmp_path):
    out = tmp_path / "o"
    result = demo("--out-dir", out, "--output", tmp_path / "custom.mp4", "--frames", 4, "--size", "128x64",
                  "--quiet", "--no-pace", env={"DEBLURRT_DEMO_MODEL": str(tmp_path / "weights" / "missing.onnx"),
                                  "DEBLURRT_DEMO_PHOTO": str(tmp_path / "assets" / "gone.png")})
    assert result.returncode == 0, result.stderr
    assert "missing.onnx is not there" in result.stdout
    assert "UNTRAINED weights: output is not deblurred" in result.stdout
    assert "running an UNTRAINED network" in result.stdout
    assert "gone.png is not there" in result.stdout and "generated (procedural) scene" in result.stdout
    frames = read_video(tmp_path / "custom.mp4")  # --output overrides the video's path only
    assert len(frames) == 4 and frames[0].shape == (64, 256, 3)
    # the banner is drawn across the middle of the frame: a red band, in the video and the PNG
    band = frames[0][28:36, :, :].astype(int)
    assert (band[:, :, 2] - band[:, :, 1]).mean() > 60
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["frame_0003.png"]  # 10,60,110 are past 4 frames: the last one
    band = cv2.imread(str(pngs[0]))[28:36].astype(int)
    assert (band[:, :, 2] - band[:, :, 1]).mean() > 60
    stats = json.loads((out / "stats.json").read_text())
    assert stats["demo"]["untrained"] is True and stats["demo"]["scene"] == "procedural"
    assert "these numbers measure RANDOM weights" in result.stdout


def test_demo_camera_is_paced_like_a_real_one_by_default(model, tmp_path):
    """Paced at 30 fps with newest-frame semantics: every camera frame is either written or counted as
    dropped (how many are dropped depends on the machine, so it is not asserted)."""
    result = demo("--model", model, "--frames", 5, "--size", "96x64", "--png-frames", "none", "--quiet",
                  "--out-dir", tmp_path / "paced")
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "paced" / "stats.json").read_text())
    assert stats["source"]["live"] is True and stats["source"]["fps"] == 30
    assert stats["frames_out"] + stats["dropped"] == 5 and stats["frames_out"] >= 1
    assert "paced at 30 fps" in result.stdout and "a camera's latency" in result.stdout


def test_demo_with_a_missing_model_exits_2(tmp_path):
    result = demo("--model", tmp_path / "nope.onnx", "--out-dir", tmp_path / "x")
    assert result.returncode == 2 and "does not exist" in result.stderr and "Fix:" in result.stderr


def test_demo_help_has_examples():
    result = subprocess.run([sys.executable, "-m", "deblurrt", "demo", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "examples:" in result.stdout and "UNTRAINED" not in result.stderr
    for text in ("--out-dir", "runs/demo", "--png-frames", "--procedural", "assets/coffee.png"):
        assert text in result.stdout


def test_demo_missing_photo_exits_2(tmp_path):
    result = demo("--photo", tmp_path / "none.jpg", "--out-dir", tmp_path / "x")
    assert result.returncode == 2 and "does not exist" in result.stderr and "Fix:" in result.stderr


def test_default_paths_are_found_from_the_repository(monkeypatch):
    from deblurrt.commands import demo as demo_command
    from deblurrt.commands import run as run_command

    for name in ("DEBLURRT_DEMO_MODEL", "DEBLURRT_DEFAULT_MODEL", "DEBLURRT_DEMO_PHOTO"):
        monkeypatch.delenv(name, raising=False)
    assert demo_command.default_photo_path() == REPO / "assets" / "coffee.png"
    assert demo_command.default_model_path() == REPO / "weights" / "unet_nano_prior.onnx"
    assert run_command.default_model_path() == REPO / "weights" / "unet_nano_prior.onnx"
    monkeypatch.setenv("DEBLURRT_DEFAULT_MODEL", "/x/y.onnx")
    assert demo_command.default_model_path() == Path("/x/y.onnx")  # the run override applies to the demo
    monkeypatch.setenv("DEBLURRT_DEMO_MODEL", "/x/z.onnx")
    assert demo_command.default_model_path() == Path("/x/z.onnx")
