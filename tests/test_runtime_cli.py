"""``deblurrt run`` end to end in a subprocess, on a tiny exported ONNX model: files, folders, limits,
signals (the video stays playable and the stats are written), and errors that exit 2 with a fix."""

from __future__ import annotations

import json
import os
import re
import resource
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


def deblurrt(*args, timeout=120, env=None, cwd=None, file_limit=None):
    """``deblurrt run ARGS`` in a subprocess; ``file_limit`` bytes: no file may grow past it (``ulimit -f``,
    a full disk: writes past it fail with EFBIG)."""
    environment = {k: v for k, v in os.environ.items() if k != "DEBLURRT_DEFAULT_MODEL"}
    limit = None if file_limit is None else (lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                                                        (file_limit, file_limit)))
    return subprocess.run([sys.executable, "-m", "deblurrt", "run", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**environment, **(env or {})}, cwd=cwd,
                          preexec_fn=limit)


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


# ------------------------------------------------------------------ outputs: nothing replaced by surprise

def _video(path, frames=3):
    from tests.test_faults import make_video

    return make_video(path, frames=frames)


def _error_line(result):
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("deblurrt run: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_overwrite_with_a_failed_video_write_keeps_the_old_video(model, tmp_path):
    keep = _video(tmp_path / "keep.mp4")
    before = keep.read_bytes()
    source = _video(tmp_path / "in.mp4", frames=30)
    stats_path = tmp_path / "keep.json"
    result = deblurrt(source, keep, "--model", model, "--overwrite", "--threads", 1, "--quiet", "--stats-json",
                      stats_path, file_limit=max(len(before), 8192) + 8192)
    assert result.returncode == 2
    line = _error_line(result)
    assert str(keep) in line and "file-size limit" in line and "kept unchanged" in line and "Fix:" in line
    assert keep.read_bytes() == before and count_frames(keep) == (3, (96, 64))
    assert json.loads(stats_path.read_text())["sink"]["written"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "keep.json", "keep.mp4"]  # no temporary


def test_numbered_image_outputs_are_refused_without_overwrite(model, tmp_path):
    source = _video(tmp_path / "in.mp4")
    for name in ("o_000001.png", "o_000002.png"):
        (tmp_path / name).write_text("precious")
    result = deblurrt(source, tmp_path / "o.png", "--model", model, "--quiet")
    assert result.returncode == 2
    line = _error_line(result)
    assert "o_000001.png" in line and "already exist" in line and "--overwrite" in line
    assert (tmp_path / "o_000001.png").read_text() == "precious" and not (tmp_path / "o.png").exists()
    result = deblurrt(source, tmp_path / "o.png", "--model", model, "--quiet", "--overwrite")
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / "o_000002.png")).shape == (64, 96, 3)


def test_one_image_to_an_image_output_ignores_numbered_names_it_never_writes(model, tmp_path):
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.full((48, 64, 3), 90, np.uint8))
    (tmp_path / "o_000001.png").write_text("unrelated")
    result = deblurrt(image, tmp_path / "o.png", "--model", model, "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o_000001.png").read_text() == "unrelated" and (tmp_path / "o.png").is_file()


def test_stats_json_on_a_name_the_run_writes_a_frame_to_is_refused(model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((40, 50, 3), 128, np.uint8))
    source = _video(tmp_path / "in.mp4")
    cases = [
        ((folder, tmp_path / "out", "--stats-json", tmp_path / "out" / "a.png"), "inside the OUTPUT folder"),
        ((source, tmp_path / "o.png", "--stats-json", tmp_path / "o_000001.png"), "writes a frame to"),
        ((source, tmp_path / "o.png", "--stats-json", tmp_path / "o_000001.png", "--overwrite"), "writes a frame to"),
    ]
    for args, message in cases:
        result = deblurrt(*args, "--model", model, "--quiet")
        assert result.returncode == 2, result.stderr
        line = _error_line(result)
        assert message in line and "Fix:" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "in.mp4"]  # nothing was written
    # a .json name in the OUTPUT folder is no frame's: fine
    result = deblurrt(folder, tmp_path / "out", "--model", model, "--quiet", "--stats-json",
                      tmp_path / "out" / "stats.json")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "stats.json"]


def test_two_inputs_of_one_name_into_one_folder_are_refused_up_front(model, tmp_path):
    for sub, value in (("x1", 60), ("x2", 200)):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / "a.png"), np.full((40, 50, 3), value, np.uint8))
    result = deblurrt(str(tmp_path / "x*" / "a.png"), tmp_path / "dup", "--model", model, "--quiet")
    assert result.returncode == 2
    line = _error_line(result)
    assert str(tmp_path / "x1" / "a.png") in line and str(tmp_path / "x2" / "a.png") in line
    assert str(tmp_path / "dup" / "a.png") in line and "Fix:" in line
    assert not (tmp_path / "dup").exists()


def test_an_odd_frame_size_into_a_video_is_announced(model, tmp_path):
    image = tmp_path / "odd.png"
    cv2.imwrite(str(image), np.full((65, 97, 3), 120, np.uint8))
    result = deblurrt(image, tmp_path / "odd.mp4", "--model", model, "--quiet")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "97x65" in warnings[0] and "96x64" in warnings[0], result.stderr
    assert count_frames(tmp_path / "odd.mp4") == (1, (96, 64))


@pytest.mark.parametrize("value", ["5", "-1", "0", "2", "nan", "x"])
def test_skip_threshold_outside_its_range_is_refused(value):
    result = deblurrt("synthetic://?frames=1", "none", "--skip-sharp", "--skip-threshold", value)
    assert result.returncode == 2
    assert "--skip-threshold" in result.stderr and "(0, 2)" in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_describes_skip_threshold_as_the_code_compares_it():
    from deblurrt.commands._adaptive import skip_threshold

    assert skip_threshold("0.1") == 0.1 and skip_threshold("1.5") == 1.5
    result = subprocess.run([sys.executable, "-m", "deblurrt", "run", "--help"], capture_output=True, text=True,
                            timeout=60)
    text = " ".join(result.stdout.split())
    assert "lowest score of the last 30 frames" in text and "(0 sharp .. 1 blurry)" not in text


@pytest.mark.parametrize("command", ["run", "demo"])
def test_help_examples_name_models_in_a_form_that_works_from_anywhere(command, tmp_path, monkeypatch):
    from deblurrt.commands.run import lookup_model, shipped_models

    monkeypatch.chdir(tmp_path)  # not the repository root, where weights/ would make more forms work
    result = subprocess.run([sys.executable, "-m", "deblurrt", command, "--help"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    words = result.stdout.split()
    models = {words[i + 1] for i, word in enumerate(words[:-1]) if word == "--model"}
    shipped = [m for m in models if Path(m).stem in shipped_models()]
    assert shipped, models  # the examples show a shipped model
    for name in shipped:  # ... by a name that resolves from any working folder, not a bare file name
        assert Path(lookup_model(name)).is_file(), name


def test_a_shipped_file_name_outside_weights_suggests_the_shipped_name(tmp_path):
    result = deblurrt("synthetic://?frames=1", "none", "--model", "unet_nano_prior.onnx", cwd=tmp_path)
    assert result.returncode == 2
    line = _error_line(result)
    assert "shipped model's name, unet_nano_prior (" in line and "Fix:" in line


def test_a_synthetic_photo_input_is_many_frames_so_numbered_outputs_are_refused_before_the_model_loads(tmp_path):
    cv2.imwrite(str(tmp_path / "photo.png"), np.full((48, 64, 3), 90, np.uint8))
    (tmp_path / "o_000001.png").write_text("precious")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")  # loading it fails: the refusal has to come before
    result = deblurrt("synthetic://photo.png?size=64x48&frames=5&live=0", "o.png", "--model", broken, "--quiet",
                      cwd=tmp_path)
    assert result.returncode == 2
    line = _error_line(result)
    assert "o_000001.png" in line and "already exist" in line and "--overwrite" in line, line
    assert "broken.onnx" not in line
    assert (tmp_path / "o_000001.png").read_text() == "precious" and not (tmp_path / "o.png").exists()


def test_a_symlinked_video_output_is_written_through_and_the_start_line_names_the_temporary(model, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    real = _video(videos / "real.mp4")
    link = tmp_path / "out.mp4"
    link.symlink_to(real)
    result = deblurrt("synthetic://?size=96x64&frames=4&live=0", link, "--model", model, "--overwrite",
                      "--threads", 1)
    assert result.returncode == 0, result.stderr
    temporary = re.escape(str(videos.resolve() / ".out.tmp"))
    assert re.search(rf"-> {re.escape(str(link))} \(written as {temporary}\d+\.mp4 until complete\)",
                     result.stderr), result.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert count_frames(real) == (4, (96, 64))
    assert os.listdir(videos) == ["real.mp4"]  # no temporary file left
