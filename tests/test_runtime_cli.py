"""``deblurrt run`` end to end in a subprocess, on a tiny exported ONNX model: files, folders, limits,
signals (the video stays playable and the stats are written), and errors that exit 2 with a fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from deblurrt.runtime.sinks import display_problem

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture
def model(tiny_model):
    return tiny_model["onnx"]


def deblurrt(*args, timeout=120, env=None):
    environment = {k: v for k, v in os.environ.items() if k != "DEBLURRT_DEFAULT_MODEL"}
    return subprocess.run([sys.executable, "-m", "deblurrt", "run", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**environment, **(env or {})})


def count_frames(path):
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} does not open"
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    count = 0
    while capture.read()[0]:
        count += 1
    return count, size


def test_video_file_to_video_file(model, tmp_path):
    source = tmp_path / "in.mp4"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 20, (200, 120))
    rng = np.random.default_rng(0)
    for _ in range(20):
        writer.write(rng.integers(0, 256, (120, 200, 3), dtype=np.uint8))
    writer.release()
    out, stats_path = tmp_path / "out.mp4", tmp_path / "stats.json"
    result = deblurrt(source, out, "--model", model, "--threads", 2, "--stats-json", stats_path)
    assert result.returncode == 0, result.stderr
    assert count_frames(out) == (20, (200, 120))
    stats = json.loads(stats_path.read_text())
    for key in ("frames_in", "frames_out", "dropped", "fps"):
        assert key in stats
    assert stats["frames_in"] == stats["frames_out"] == 20 and stats["dropped"] == 0
    for stage in ("capture", "pre", "infer", "post", "write"):
        assert {"p50", "p90", "p99"} <= set(stats["latency_ms"][stage])
    assert "deblurrt run: frames 20 in / 20 out" in result.stderr


def test_max_frames_side_by_side_and_overlay(model, tmp_path):
    out = tmp_path / "view.avi"
    result = deblurrt("synthetic://?size=128x96", out, "--model", model, "--max-frames", 4, "--side-by-side",
                      "--overlay", "--quiet")
    assert result.returncode == 0, result.stderr
    assert count_frames(out) == (4, (256, 96))
    assert result.stderr == ""


def test_folder_to_folder(model, tmp_path):
    (tmp_path / "in").mkdir()
    names = ["b.png", "a.jpg", "c10.png", "c9.png"]
    for name in names:
        cv2.imwrite(str(tmp_path / "in" / name), np.full((40, 50, 3), 128, np.uint8))
    stats_path = tmp_path / "s.json"
    result = deblurrt(tmp_path / "in", tmp_path / "out", "--model", model, "--stats-json", stats_path)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "out")) == sorted(names)
    assert cv2.imread(str(tmp_path / "out" / "c10.png")).shape == (40, 50, 3)
    assert json.loads(stats_path.read_text())["frames_out"] == 4


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_run_finalises_video_and_stats(model, tmp_path, signum):
    out, stats_path = tmp_path / "long.mp4", tmp_path / "stats.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "deblurrt", "run", "synthetic://?size=96x64", str(out), "--model", str(model),
         "--stats-json", str(stats_path), "--threads", "1"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the first status line: frames are flowing
            line = process.stderr.readline()
            lines.append(line)
            if line.startswith("deblurrt run: frames"):
                break
        else:
            pytest.fail("no status line: " + "".join(lines))
        process.send_signal(signum)
        rest = process.communicate(timeout=60)[1]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, rest
    stats = json.loads(stats_path.read_text())
    assert stats["interrupted"] and stats["stopped_by"] == signal.Signals(signum).name
    assert stats["frames_out"] > 0 and stats["frames_out"] == stats["frames_in"]
    assert count_frames(out) == (stats["frames_out"], (96, 64))
    assert stats["psnr_db"]["frames"] == stats["frames_out"]


def test_unopenable_source_exits_2_with_a_fix(model, tmp_path):
    result = deblurrt(tmp_path / "nothing.mp4", "--model", model, "--headless")
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Fix:" in result.stderr


def test_stream_credentials_never_reach_the_output(model):
    result = deblurrt("rtsp://admin:hunter2@127.0.0.1:9/stream", "--model", model, "--headless")
    assert result.returncode == 2
    assert "rtsp://***@127.0.0.1:9/stream" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_backend_mismatch_exits_2(model):
    result = deblurrt("synthetic://", "--model", model, "--backend", "trt", "--headless")
    assert result.returncode == 2
    assert "cannot run" in result.stderr and "--backend ort" in result.stderr


@pytest.mark.skipif(display_problem() is None, reason="this machine can show a window")
def test_no_display_is_a_clear_error(model):
    result = deblurrt("synthetic://?frames=1", "--model", model)
    assert result.returncode == 2
    assert "display" in result.stderr and "--headless" in result.stderr


def test_model_defaults_to_the_shipped_model(model, tmp_path):
    out = tmp_path / "default.avi"
    result = deblurrt("synthetic://?size=96x64&frames=3&live=0", out, "--quiet",
                      env={"DEBLURRT_DEFAULT_MODEL": str(model)})
    assert result.returncode == 0, result.stderr
    assert count_frames(out) == (3, (96, 64))


def test_missing_default_model_asks_for_model(tmp_path):
    missing = tmp_path / "weights" / "unet_nano_prior.onnx"
    result = deblurrt("synthetic://?frames=1", "none", env={"DEBLURRT_DEFAULT_MODEL": str(missing)})
    assert result.returncode == 2
    assert str(missing) in result.stderr and "pass --model" in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_teaches():
    result = subprocess.run([sys.executable, "-m", "deblurrt", "run", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for example in ("csi://0", "rtsp://", "synthetic://", "frames/ deblurred/", "/dev/video1", "--stats-json",
                    "weights/unet_nano_prior.onnx", "DEBLURRT_DEFAULT_MODEL"):
        assert example in result.stdout
    assert "required" not in result.stdout


def test_model_by_shipped_name_resolves_to_the_weights_onnx():
    from deblurrt.commands.run import lookup_model, repository_root, shipped_models

    assert "unet_nano_prior" in shipped_models()  # the repository ships the nano default
    assert Path(lookup_model("unet_nano_prior")) == repository_root() / "weights" / "unet_nano_prior.onnx"
    assert lookup_model("some/dir/model.onnx") == "some/dir/model.onnx"  # paths pass through untouched


def test_unknown_model_name_exits_2_listing_the_shipped_ones(tmp_path):
    result = deblurrt("synthetic://?frames=1", "none", "--model", "unet_giant_prior")
    assert result.returncode == 2
    assert "'unet_giant_prior' is neither a file nor a shipped model" in result.stderr
    assert "unet_nano_prior" in result.stderr and "Traceback" not in result.stderr
