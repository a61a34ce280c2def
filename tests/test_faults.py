"""Fault injection: nothing lost, nothing overwritten, no tracebacks.

Each test breaks something on purpose -- a full disk (a file-size limit in a subprocess, RLIMIT_FSIZE, as
``ulimit -f`` sets), an unwritable destination, a destination under a file, an output that is the input
(same file, folder, symlink, ``./`` form), an input with no readable frame, a truncated video, an existing
output -- and asserts the exit code, the one-line message (no traceback), and that no input and no earlier
output was lost or changed.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from deblurrt.cli import main
from deblurrt.outputs import OutputError, probe_writable, write_json_atomic

pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------- helpers

@pytest.fixture
def model(tiny_model):
    return str(tiny_model["onnx"])


def make_video(path: Path, frames: int = 30, size=(96, 64)) -> Path:
    """A video of random frames (they compress badly: the output grows fast): mp4v in .mp4, MJPG otherwise."""
    fourcc = "mp4v" if Path(path).suffix.lower() == ".mp4" else "MJPG"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 20, size)
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def make_pairs(folder: Path, count: int = 3, size=(64, 48)) -> Path:
    rng = np.random.default_rng(1)
    for sub in ("blur", "sharp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        cv2.imwrite(str(folder / "blur" / f"{i}.png"), image)
        cv2.imwrite(str(folder / "sharp" / f"{i}.png"), image)
    return folder


def snapshot(*roots: Path) -> dict[str, bytes]:
    """Every file under ``roots`` with its bytes: compared before and after, it proves nothing was lost."""
    files = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        files.update({str(p): p.read_bytes() for p in paths})
    return files


def temporaries(*roots: Path) -> list[str]:
    """Temporary files an atomic write could leave behind (``.NAME.tmpPID.SUFFIX``, probes)."""
    return [str(p) for root in roots if root.is_dir() for p in root.rglob(".*") if ".tmp" in p.name
            or p.name.startswith(".deblurrt-probe-")]


def cli(capsys, *args) -> tuple[int, str]:
    """``deblurrt ARGS`` in this process: exit code and stderr."""
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_error_line(stderr: str, command: str) -> str:
    """The error line of ``stderr``: exactly one, and no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith(f"deblurrt {command}: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def limited(limit_bytes: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``deblurrt ARGS`` in a subprocess whose files may not grow past ``limit_bytes`` (a full disk, as
    ``ulimit -f`` makes it: writes past the limit fail with EFBIG)."""
    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "deblurrt", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=set_limit, cwd=REPO)


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder this process cannot write to. Root ignores permission bits, so there it is /sys (read-only
    sysfs); elsewhere a folder without write permission."""
    if os.geteuid() == 0:
        candidate = Path("/sys")
    else:
        candidate = tmp_path / "locked"
        candidate.mkdir()
        candidate.chmod(0o500)
    try:
        probe_writable(candidate)
    except OutputError:
        yield candidate
    else:
        pytest.skip(f"{candidate} is writable here")
    if candidate != Path("/sys"):
        candidate.chmod(0o700)


# ------------------------------------------------------------------------------------------- disk full

def test_disk_full_while_writing_an_mp4_stops_the_run_and_the_stats_tell_the_truth(model, tmp_path):
    source = make_video(tmp_path / "in.avi", frames=40, size=(192, 128))  # the mp4 would be ~0.5 MB
    before = snapshot(source)
    out, stats_path = tmp_path / "out.mp4", tmp_path / "stats.json"
    result = limited(64 * 1024, "run", source, out, "--model", model, "--stats-json", stats_path, "--quiet")
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr, "run")
    assert str(out) in line and "file-size limit" in line and "Fix:" in line
    stats = json.loads(stats_path.read_text())
    assert stats["error"] and "file-size limit" in stats["error"]
    # the file holds no playable frame (the mp4 index could not be written), and the stats say so
    assert stats["sink"]["written"] == 0 and not cv2.VideoCapture(str(out)).isOpened()
    assert snapshot(source) == before and temporaries(tmp_path) == []


def test_disk_full_while_saving_eval_outputs_is_one_line_and_leaves_no_temporary_file(model, tmp_path):
    data = make_pairs(tmp_path / "val")
    before = snapshot(data)
    result = limited(0, "eval", model, "--data", data, "--save", tmp_path / "out", "--json",
                     tmp_path / "e.json", "--quiet")
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr, "eval")
    assert "cannot write" in line and "file-size limit" in line and "Fix:" in line
    assert snapshot(data) == before and temporaries(tmp_path) == []


def test_a_failed_atomic_write_removes_its_temporary_file(tmp_path):
    code = (f"from deblurrt.outputs import write_json_atomic\n"
            f"write_json_atomic({str(tmp_path / 'big.json')!r}, {{'x': 'y' * 100000}})\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)))
    assert result.returncode == 1 and "OutputError: cannot write" in result.stderr
    assert "file-size limit" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ unwritable, parent is a file

@pytest.mark.parametrize("command", ["run", "eval", "bench", "data"])
def test_an_unwritable_destination_is_refused_before_any_work(command, model, unwritable, tmp_path, capsys):
    target = unwritable / "deblurrt-test" / "out.json"
    args = {
        "run": ["run", "synthetic://?frames=2", "none", "--model", model, "--stats-json", target],
        "eval": ["eval", model, "--data", make_pairs(tmp_path / "val"), "--json", target],
        "bench": ["bench", "--model", model, "--json", target],
        "data": ["data", "synth", tmp_path, unwritable / "deblurrt-test"],
    }[command]
    code, err = cli(capsys, *args)
    assert code == 2
    line = one_error_line(err, command)
    assert "cannot write in" in line and "Fix:" in line


@pytest.mark.parametrize("command", ["run", "run-output", "eval", "eval-save", "bench", "data", "export"])
def test_a_destination_under_a_file_says_it_is_a_file(command, tiny_model, tmp_path, capsys):
    model = str(tiny_model["onnx"])
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    target = blocker / "out.json"
    args = {
        "run": ["run", "synthetic://?frames=2", "none", "--model", model, "--stats-json", target],
        "run-output": ["run", "synthetic://?frames=2", blocker / "out.mp4", "--model", model],
        "eval": ["eval", model, "--data", make_pairs(tmp_path / "val"), "--json", target],
        "eval-save": ["eval", model, "--data", make_pairs(tmp_path / "val"), "--save", blocker / "out"],
        "bench": ["bench", "--model", model, "--json", target],
        "data": ["data", "synth", tmp_path, blocker / "set"],
        "export": ["export", tiny_model["ckpt"], "--out", blocker / "m.onnx", "--no-accuracy"],
    }[command]
    code, err = cli(capsys, *args)
    assert code == 2
    line = one_error_line(err, command.split("-")[0])
    assert "notes.txt is a file, not a folder" in line and "does not exist" not in line
    assert blocker.read_text() == "keep me"


# ----------------------------------------------------------------------------------- output = input

def test_run_never_writes_over_its_input(model, tmp_path, capsys):
    video = make_video(tmp_path / "in.avi", frames=6)
    (tmp_path / "link.avi").symlink_to(video)
    os.link(video, tmp_path / "hard.avi")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"f{i}.png"), np.full((32, 48, 3), 40 * i, np.uint8))
    before = snapshot(tmp_path)
    cases = [
        (video, video, "is the input"),
        (video, "--overwrite", "is the input"),  # --overwrite never allows it
        (tmp_path / "link.avi", video, "is the input"),
        (video, tmp_path / "link.avi", "is the input"),
        (video, tmp_path / "hard.avi", "is the input"),
        (video, Path(f"{tmp_path}/./sub/../in.avi"), "is the input"),
        (frames, frames, "is the input"),
        (frames, Path(f"{frames}/"), "is the input"),
        (f"{frames}/*.png", frames, "contains the input"),
        (frames, tmp_path, "contains the input folder"),
    ]
    for source, output, message in cases:
        extra = ["--overwrite"] if output == "--overwrite" else []
        target = video if output == "--overwrite" else output
        code, err = cli(capsys, "run", source, target, "--model", model, "--quiet", *extra)
        assert code == 2, (source, output, err)
        assert message in one_error_line(err, "run"), (source, output, err)
    code, err = cli(capsys, "run", video, tmp_path / "o.mp4", "--model", model, "--stats-json", video,
                    "--overwrite")
    assert code == 2 and "is the input" in one_error_line(err, "run")
    assert snapshot(tmp_path) == before


def test_eval_save_into_the_input_images_is_refused(model, tmp_path, capsys):
    data = make_pairs(tmp_path / "val")
    before = snapshot(data)
    for save, message in ((data / "blur", "is the input"), (data, "contains the input folder")):
        code, err = cli(capsys, "eval", model, "--data", data, "--save", save, "--overwrite")
        assert code == 2 and message in one_error_line(err, "eval")
    code, err = cli(capsys, "eval", model, "--data", data, "--json", model, "--overwrite")
    assert code == 2 and "is also" in one_error_line(err, "eval")
    assert snapshot(data) == before


# ------------------------------------------------------------------------------------------- overwrite

def test_existing_outputs_are_refused_unless_overwrite(model, tiny_model, tmp_path, capsys):
    source = make_video(tmp_path / "in.avi", frames=4)
    earlier = {name: tmp_path / name for name in ("out.mp4", "stats.json", "e.json", "b.json", "m.onnx")}
    for path in earlier.values():
        path.write_text("an earlier result")
    (tmp_path / "outdir").mkdir()
    (tmp_path / "outdir" / "keep.png").write_text("an earlier frame")
    data = make_pairs(tmp_path / "val")
    refused = [
        ("run", source, earlier["out.mp4"], "--model", model),
        ("run", source, "none", "--model", model, "--stats-json", earlier["stats.json"]),
        ("run", source, tmp_path / "outdir", "--model", model),
        ("eval", model, "--data", data, "--json", earlier["e.json"]),
        ("eval", model, "--data", data, "--save", tmp_path / "outdir"),
        ("bench", "--model", model, "--json", earlier["b.json"]),
        ("export", tiny_model["ckpt"], "--out", earlier["m.onnx"]),
    ]
    for args in refused:
        code, err = cli(capsys, *args)
        assert code == 2, args
        line = one_error_line(err, args[0])
        assert ("already exists" in line or "already holds" in line) and "--overwrite" in line, line
    assert all(path.read_text() == "an earlier result" for path in earlier.values())
    assert (tmp_path / "outdir" / "keep.png").read_text() == "an earlier frame"
    # with --overwrite the file is replaced, and into a folder only same-named files would be
    code, err = cli(capsys, "run", source, earlier["out.mp4"], "--model", model, "--overwrite", "--quiet")
    assert code == 0, err
    assert cv2.VideoCapture(str(earlier["out.mp4"])).get(cv2.CAP_PROP_FRAME_COUNT) == 4
    code, err = cli(capsys, "run", source, tmp_path / "outdir", "--model", model, "--overwrite", "--quiet")
    assert code == 0, err
    assert (tmp_path / "outdir" / "keep.png").read_text() == "an earlier frame"
    assert len(list((tmp_path / "outdir").iterdir())) == 5


def test_data_synth_overwrite_deletes_only_what_synth_json_lists(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(2)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(photos / name), rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    out = tmp_path / "set"
    synth = ["data", "synth", photos, out, "--count", "2", "--size", "32", "--seed", "3"]
    code, err = cli(capsys, *synth)
    assert code == 0, err
    listed = sorted(p.name for p in (out / "blur").iterdir())
    (out / "notes.md").write_text("mine")  # beside blur/ and sharp/: never touched
    code, err = cli(capsys, *synth[:-2], "--seed", "4", "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in (out / "blur").iterdir()) == listed and (out / "notes.md").read_text() == "mine"
    # a PNG that synth.json does not list would mix into the set: refused, and kept
    (out / "blur" / "someone_elses.png").write_bytes(b"precious")
    before = snapshot(out)
    code, err = cli(capsys, *synth, "--overwrite")
    assert code == 2
    line = one_error_line(err, "data")
    assert "someone_elses.png" in line and "does not list" in line and "Fix:" in line
    assert snapshot(out) == before


# ------------------------------------------------------------------------------ wrong success / inputs

def test_a_folder_without_readable_images_fails(model, tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        (frames / f"{i}.png").write_bytes(b"not a png")
    stats_path = tmp_path / "stats.json"
    code, err = cli(capsys, "run", frames, tmp_path / "out", "--model", model, "--stats-json", stats_path,
                    "--quiet")
    assert code == 2
    line = one_error_line(err, "run")
    assert "no frame could be read" in line and "3 corrupt" in line and "nothing was written" in line
    assert not (tmp_path / "out").exists()  # the output folder it created is removed again, being empty
    assert json.loads(stats_path.read_text())["frames_out"] == 0


def test_a_truncated_video_is_reported_and_fails_with_strict(model, tmp_path, capsys):
    full = make_video(tmp_path / "full.avi", frames=40)
    truncated = tmp_path / "cut.avi"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 5])
    code, err = cli(capsys, "run", truncated, tmp_path / "a.mp4", "--model", model, "--quiet")
    assert code == 0
    warning = [line for line in err.splitlines() if line.startswith("deblurrt run: warning:")]
    assert len(warning) == 1 and "ended early" in warning[0] and "of the 40 frames" in warning[0]
    stats_path = tmp_path / "s.json"
    code, err = cli(capsys, "run", truncated, tmp_path / "b.mp4", "--model", model, "--quiet", "--strict",
                    "--stats-json", stats_path)
    assert code == 1
    line = one_error_line(err, "run")
    assert "ended early" in line and "--strict" in line
    stats = json.loads(stats_path.read_text())
    assert stats["input"]["ended_early"] and stats["input"]["expected_frames"] == 40
    assert stats["input"]["missing_frames"] == 40 - stats["frames_in"] > 0
    assert cv2.VideoCapture(str(tmp_path / "b.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == stats["frames_out"]


def test_interrupted_eval_writes_what_it_measured(model, tmp_path):
    data = make_pairs(tmp_path / "val", count=150, size=(384, 288))
    saved, report_path = tmp_path / "saved", tmp_path / "report.json"
    process = subprocess.Popen([sys.executable, "-m", "deblurrt", "eval", model, "--data", str(data), "--save",
                                str(saved), "--json", str(report_path), "--quiet", "--threads", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (saved.is_dir() and any(saved.glob("*.png"))) and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    report = json.loads(report_path.read_text())
    if report["n"] == report["total"]:
        pytest.skip("every image was scored before the signal arrived (a very fast machine)")
    assert process.returncode == 130, err
    assert "Traceback" not in err and "INTERRUPTED (SIGINT)" in out
    assert report["interrupted"] and 1 <= report["n"] < report["total"] == 150
    assert len(report["per_image"]) == report["n"] and temporaries(saved) == []


# -------------------------------------------------------------------------------- one-line errors

@pytest.mark.parametrize("args, message", [
    (["bench", "--model", "unet_tiny", "--size", "100000x100000"], "too large"),
    (["data", "synth", ".", "out", "--size", "360x640"], "ambiguous"),
])
def test_absurd_or_ambiguous_sizes_are_refused_up_front(args, message, capsys):
    try:
        code = main(args)
    except SystemExit as exit_info:  # argparse refuses an option's type with exit 2
        code = exit_info.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_model_directory_and_an_unknown_model_name_are_one_line_errors(model, tmp_path, capsys):
    code, err = cli(capsys, "run", "synthetic://?frames=1", "none", "--model", tmp_path)
    assert code == 2 and "is a directory, not a model file" in one_error_line(err, "run")
    code, err = cli(capsys, "bench", "--model", tmp_path)
    assert code == 2 and "is a directory, not a model file" in one_error_line(err, "bench")
    pytest.importorskip("torch")
    code, err = cli(capsys, "train", REPO / "configs" / "unet_nano_prior.yaml", "model.name=unet_huge")
    assert code == 2
    assert "model.name: unknown model 'unet_huge'. Did you mean unet_base?" in one_error_line(err, "train")


def test_write_json_atomic_names_the_path_on_failure(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot"):
        write_json_atomic(tmp_path / "file" / "out.json", {"a": 1})
    assert (tmp_path / "file").read_text() == "x"
