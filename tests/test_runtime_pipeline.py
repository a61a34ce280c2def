"""The pipeline: every file frame reaches the sink in order, live sources drop instead of queueing,
statistics are complete, errors and stops still close the output and write the stats."""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from deblurrt.runtime.backends import Backend, InputSpec, ModelInfo, ShapeRange
from deblurrt.runtime.pipeline import STAGES, Pipeline, PipelineOptions
from deblurrt.runtime.sinks import (
    ImageFileSink,
    ImageFolderSink,
    NullSink,
    SinkError,
    VideoFileSink,
    compose_view,
    open_sink,
    readable_frames,
)
from deblurrt.runtime.sources import LiveSource, open_source


class Identity(Backend):
    """A model stand-in that returns its input (after ``delay`` seconds)."""

    name = "identity"

    def __init__(self, delay=0.0, fail_at=None):
        super().__init__("identity.onnx")
        self.delay, self.fail_at, self.calls = delay, fail_at, 0
        self.info = ModelInfo(name="identity", pad_multiple=16, input_name="blurry", output_name="sharp")
        self.input_spec = InputSpec("blurry", np.dtype(np.float32), (None, 3, None, None))

    def _infer(self, batch):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("model exploded")
        time.sleep(self.delay)
        return batch.copy()


class Collect(NullSink):
    def __init__(self):
        super().__init__("collect")
        self.items = []

    def _write(self, image, name):
        self.items.append((name, image.copy()))


def _folder(path, count=7):
    path.mkdir()
    rng = np.random.default_rng(0)
    images = {}
    for i in range(count):
        name = f"img_{i + 1}.png"  # img_10 sorts after img_9 (natural order)
        images[name] = rng.integers(0, 256, (30 + i, 45, 3), dtype=np.uint8)
        cv2.imwrite(str(path / name), images[name])
    return images


def test_folder_to_folder_keeps_names_order_and_pixels(tmp_path):
    images = _folder(tmp_path / "in", count=11)
    source, sink = open_source(str(tmp_path / "in")), open_sink(str(tmp_path / "out") + "/")
    assert isinstance(sink, ImageFolderSink)
    stats = Pipeline(source, Identity(), sink, PipelineOptions(status=None)).run()
    assert stats["frames_in"] == stats["frames_out"] == 11
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(images)
    for name, image in images.items():  # identity model + PNG: bit-exact, sizes kept (30..40 rows)
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / name)), image)


def test_order_is_kept_through_the_threads(tmp_path):
    _folder(tmp_path / "in", count=12)
    sink = Collect()
    Pipeline(open_source(str(tmp_path / "in")), Identity(delay=0.002), sink, PipelineOptions(status=None)).run()
    assert [name for name, _ in sink.items] == [f"img_{i}.png" for i in range(1, 13)]


def test_stats_have_every_stage_and_psnr_for_synthetic(tmp_path):
    stats_path = tmp_path / "stats.json"
    source = open_source("synthetic://?size=96x64&frames=6&live=0")
    stats = Pipeline(source, Identity(), NullSink("none"),
                     PipelineOptions(stats_json=stats_path, status=None)).run()
    on_disk = json.loads(stats_path.read_text())
    assert on_disk == json.loads(json.dumps(stats))
    for key in ("frames_in", "frames_out", "dropped", "fps", "model_fps", "latency_ms", "psnr_db", "stopped_by"):
        assert key in on_disk
    for stage in STAGES:
        summary = on_disk["latency_ms"][stage]
        assert summary["count"] == 6 and summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["max"]
    psnr = on_disk["psnr_db"]
    assert psnr["frames"] == 6 and psnr["gain"] == pytest.approx(0.0, abs=1e-9)  # identity: output == input
    assert psnr["input"] < 35 and on_disk["stopped_by"] == "end of input" and not on_disk["interrupted"]


def test_max_frames(tmp_path):
    source = open_source("synthetic://?size=64x48")  # endless
    stats = Pipeline(source, Identity(), NullSink("none"), PipelineOptions(max_frames=5, status=None)).run()
    assert stats["frames_in"] == stats["frames_out"] == 5 and stats["stopped_by"] == "max frames"


def test_live_source_faster_than_inference_drops_and_counts(tmp_path):
    class Camera:
        n = 0

        def read(self):
            time.sleep(0.002)
            Camera.n += 1
            return True, np.full((48, 64, 3), Camera.n % 256, np.uint8)

        def release(self):
            pass

    source = LiveSource("fake://camera", Camera)
    try:
        stats = Pipeline(source, Identity(delay=0.03), NullSink("none"),
                         PipelineOptions(max_frames=10, status=None)).run()
    finally:
        source.close()
    assert stats["frames_out"] == 10 and stats["dropped"] > 20
    # latency stays bounded by a few inference times instead of growing with a queue of stale frames
    assert stats["latency_ms"]["end_to_end"]["p90"] < 200


def test_a_failing_model_still_closes_the_video_and_writes_stats(tmp_path):
    stats_path, video = tmp_path / "stats.json", tmp_path / "out.avi"
    source = open_source("synthetic://?size=64x48&frames=20&live=0")
    with pytest.raises(RuntimeError, match="model exploded"):
        Pipeline(source, Identity(fail_at=6), VideoFileSink(video, 10),
                 PipelineOptions(stats_json=stats_path, status=None)).run()
    stats = json.loads(stats_path.read_text())
    assert stats["error"] == "RuntimeError: model exploded" and stats["interrupted"]
    capture = cv2.VideoCapture(str(video))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == stats["frames_out"] == 5


def test_tiling_kicks_in_through_the_pipeline(tmp_path):
    backend = Identity()
    profile = ShapeRange((1, 3, 16, 16), (1, 3, 32, 32), (1, 3, 32, 48))  # an engine smaller than the frame
    backend.input_spec = InputSpec("blurry", np.dtype(np.float32), (None, 3, None, None), (profile,))
    sink = Collect()
    source = open_source("synthetic://?size=96x64&frames=2&live=0")
    stats = Pipeline(source, backend, sink, PipelineOptions(status=None, overlap=8)).run()
    assert stats["tiled"] and stats["frames_out"] == 2
    with open_source("synthetic://?size=96x64&frames=2&live=0") as again:
        for (_, image), frame in zip(sink.items, again, strict=True):
            np.testing.assert_array_equal(image, frame.image)


def test_side_by_side_and_overlay_view():
    left = np.zeros((40, 60, 3), np.uint8)
    right = np.full((40, 60, 3), 200, np.uint8)
    view = compose_view(left, right, side_by_side=True, overlay=["12.0 FPS"])
    assert view.shape == (40, 120, 3)
    plain = compose_view(left, right)
    assert plain is right
    assert compose_view(left, right, overlay=["x"]).shape == right.shape


def test_sink_uris(tmp_path):
    assert isinstance(open_sink(None), NullSink) and isinstance(open_sink("none"), NullSink)
    assert isinstance(open_sink(str(tmp_path / "v.mp4")), VideoFileSink)
    with pytest.raises(SinkError, match="use .mp4"):
        VideoFileSink(tmp_path / "v.mkv")
    with pytest.raises(SinkError, match="cannot tell what to write"):
        open_sink(str(tmp_path / "v.xyz"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkError, match="is a file"):
        open_sink(str(tmp_path / "file" / "v.mp4"))
    with pytest.raises(SinkError, match="--headless"):
        open_sink("display://0", headless=True)


# ------------------------------------------------------------------ outputs: nothing replaced by surprise

def _frames(count, size=(64, 48)):
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(count)]


def _decoded(path):
    """(frames decoded, (width, height)) of a video file."""
    capture = cv2.VideoCapture(str(path))
    count, size = 0, None
    while True:
        ok, image = capture.read()
        if not ok:
            break
        count, size = count + 1, (image.shape[1], image.shape[0])
    capture.release()
    return count, size


def test_a_video_is_written_under_a_temporary_name_and_renamed_when_closed(tmp_path):
    out = tmp_path / "out.avi"
    out.write_bytes(b"the earlier video")  # what --overwrite replaces: it must survive until the new one is done
    sink = VideoFileSink(out, 10)
    for image in _frames(3):
        sink.write(image)
    assert out.read_bytes() == b"the earlier video"
    assert sink.temporary.parent == tmp_path and sink.temporary.is_file()
    sink.close()
    assert sink.written == 3 and _decoded(out) == (3, (64, 48))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.avi"]  # no temporary file left


def test_a_stopped_pipeline_still_leaves_a_playable_video_under_its_name(tmp_path):
    # a run stopped early (max frames here; Ctrl-C and SIGTERM go the same way) keeps what it wrote
    video = tmp_path / "out.mp4"
    source = open_source("synthetic://?size=64x48&frames=20&live=0")
    stats = Pipeline(source, Identity(), VideoFileSink(video, 10), PipelineOptions(max_frames=4, status=None)).run()
    assert stats["sink"]["written"] == 4 and _decoded(video) == (4, (64, 48))
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def _write_video_limited(out, limit_bytes, frames=30):
    """Write ``frames`` random 96x64 frames to ``out`` through VideoFileSink in a process whose files may not
    grow past ``limit_bytes`` (a full disk, as ``ulimit -f`` makes it); returns the completed process."""
    code = (
        "import sys, numpy as np\n"
        "from deblurrt.runtime.sinks import SinkError, VideoFileSink\n"
        f"sink = VideoFileSink({str(out)!r}, 10)\n"
        "rng = np.random.default_rng(0)\n"
        "try:\n"
        f"    for _ in range({frames}):\n"
        "        sink.write(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))\n"
        "    sink.close()\n"
        "except SinkError as error:\n"
        "    sink.close()\n"
        "    print(error, file=sys.stderr)\n"
        "    print(sink.written)\n"
        "    sys.exit(2)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes)))


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_failed_video_write_keeps_the_existing_file_and_removes_the_temporary(tmp_path, suffix):
    out = tmp_path / f"keep{suffix}"
    with VideoFileSink(out, 10) as sink:
        for image in _frames(3, (96, 64)):
            sink.write(image)
    before = out.read_bytes()
    assert len(before) < 40 * 1024  # under the limit below: only the new, larger video hits it
    result = _write_video_limited(out, 40 * 1024)
    assert result.returncode == 2, result.stderr
    assert "file-size limit" in result.stderr and f"the existing {out} is kept unchanged" in result.stderr
    assert out.read_bytes() == before and _decoded(out) == (3, (96, 64))
    assert result.stdout.split() == ["0"]  # the stats' sink.written: none of this run's frames are there
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_a_failed_avi_write_with_no_earlier_file_keeps_the_frames_that_play(tmp_path):
    out = tmp_path / "new.avi"
    result = _write_video_limited(out, 40 * 1024)
    assert result.returncode == 2, result.stderr
    kept = int(result.stdout.split()[-1])
    assert 0 < kept < 30 and f"{kept} playable frames of the 30 sent" in result.stderr
    assert f"those {kept} frames are kept as {out}" in result.stderr
    assert _decoded(out)[0] == kept == readable_frames(out)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_readable_frames_counts_what_a_cut_file_really_holds(tmp_path):
    out = tmp_path / "cut.avi"
    with VideoFileSink(out, 10) as sink:
        for image in _frames(10):
            sink.write(image)
    assert readable_frames(out) == 10
    # an AVI cut short (a full disk) still announces 10 frames in its header; the count must not believe it
    os.truncate(out, out.stat().st_size // 2)
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT) == 10
    assert 0 < readable_frames(out) < 10


def test_odd_frame_sizes_are_cropped_to_even_with_one_warning(tmp_path, caplog):
    out = tmp_path / "odd.mp4"
    with caplog.at_level(logging.WARNING, logger="deblurrt.runtime"), VideoFileSink(out, 10) as sink:
        for image in _frames(3, (97, 65)):
            sink.write(image)
    warnings = [r.getMessage() for r in caplog.records if "even" in r.getMessage()]
    assert len(warnings) == 1 and "97x65" in warnings[0] and "96x64" in warnings[0], warnings
    assert _decoded(out) == (3, (96, 64)) and sink.video_size == (96, 64)


def test_an_image_file_sink_never_replaces_an_existing_numbered_frame(tmp_path):
    out = tmp_path / "o.png"
    precious = tmp_path / "o_000001.png"
    precious.write_text("precious")
    sink = ImageFileSink(out)
    first, second = _frames(2)
    sink.write(first)
    with pytest.raises(SinkError, match=r"o_000001\.png already exists.*--overwrite"):
        sink.write(second)
    assert precious.read_text() == "precious"
    replacing = ImageFileSink(out, overwrite=True)
    replacing.write(first)
    replacing.write(second)
    np.testing.assert_array_equal(cv2.imread(str(precious)), second)


def test_an_image_folder_sink_refuses_two_frames_of_one_name(tmp_path):
    sink = ImageFolderSink(tmp_path / "out")
    first, second = _frames(2)
    sink.write(first, name="a.png")
    with pytest.raises(SinkError, match=r"two frames of this run are named a\.png"):
        sink.write(second, name="a.png")
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / "a.png")), first)
    assert Path(tmp_path / "out").is_dir() and os.listdir(tmp_path / "out") == ["a.png"]


# ------------------------------------------------------------------ a finished video is never lost

def test_a_symlinked_video_output_is_written_through_to_its_target_and_the_link_kept(tmp_path):
    videos, links = tmp_path / "videos", tmp_path / "links"
    videos.mkdir()
    links.mkdir()
    real = videos / "real.avi"
    real.write_bytes(b"the earlier video")  # what --overwrite replaces: through the link
    link = links / "out.avi"
    link.symlink_to(Path("..") / "videos" / "real.avi")
    sink = VideoFileSink(link, 10)
    for image in _frames(3):
        sink.write(image)
    # the temporary file lies next to the real file (a rename cannot cross file systems), named after OUTPUT
    assert sink.temporary.parent == videos.resolve() and sink.temporary.name.startswith(".out.tmp")
    assert real.read_bytes() == b"the earlier video"
    sink.close()
    assert link.is_symlink() and os.readlink(link) == str(Path("..") / "videos" / "real.avi")
    assert sink.written == 3 and _decoded(real) == (3, (64, 48)) and _decoded(link) == (3, (64, 48))
    assert sorted(p.name for p in videos.iterdir()) == ["real.avi"] and os.listdir(links) == ["out.avi"]
    # a link to a file that is not there yet: the file is created where the link points
    dangling = links / "new.mp4"
    dangling.symlink_to(videos / "new.mp4")
    with VideoFileSink(dangling, 10) as sink:
        for image in _frames(2):
            sink.write(image)
    assert dangling.is_symlink() and _decoded(videos / "new.mp4") == (2, (64, 48))
    # ... but no folder is made where a link points into nothing (an unmounted disk)
    lost = links / "lost.mp4"
    lost.symlink_to(tmp_path / "unmounted" / "lost.mp4")
    with pytest.raises(SinkError, match=r"symlink to .*lost\.mp4, whose folder does not exist.*Fix:"):
        VideoFileSink(lost, 10)
    assert not (tmp_path / "unmounted").exists()


def test_a_failed_rename_keeps_the_finished_video_and_names_it(tmp_path):
    out = tmp_path / "out.avi"
    sink = VideoFileSink(out, 10)
    for image in _frames(3):
        sink.write(image)
    out.mkdir()  # something made a folder of that name meanwhile: the rename onto it fails
    (out / "other").write_text("not ours")
    with pytest.raises(SinkError) as caught:
        sink.close()
    message = str(caught.value)
    assert f"the video is at {sink.temporary} (3 frames)" in message and "Fix:" in message, message
    assert sink.temporary.is_file() and _decoded(sink.temporary) == (3, (64, 48))  # the only copy survives
    assert sink.written == 0 and (out / "other").read_text() == "not ours"


@pytest.fixture
def opencv_without_ffmpeg(monkeypatch):
    """This OpenCV as one built without FFmpeg that cannot read its own files back (JetPack's, writing
    through GStreamer): every ``VideoCapture`` stays unopened; ``VideoWriter`` is untouched."""
    real_capture, real_has_backend = cv2.VideoCapture, cv2.videoio_registry.hasBackend
    monkeypatch.setattr(cv2, "VideoCapture", lambda *args, **kwargs: real_capture())
    monkeypatch.setattr(cv2.videoio_registry, "hasBackend",
                        lambda api: api != cv2.CAP_FFMPEG and real_has_backend(api))
    return monkeypatch


def test_a_video_that_cannot_be_read_back_is_still_renamed_into_place(tmp_path, caplog, opencv_without_ffmpeg):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the earlier video")  # --overwrite: replaced by the new one all the same
    with caplog.at_level(logging.WARNING, logger="deblurrt.runtime"), VideoFileSink(out, 10) as sink:
        for image in _frames(4):
            sink.write(image)
        temporary = sink.temporary
        assert readable_frames(temporary) is None  # cannot tell, which is not "holds 0 frames"
    warnings = [r.getMessage() for r in caplog.records if "unverified" in r.getMessage()]
    assert len(warnings) == 1 and str(out) in warnings[0] and "4 frames sent" in warnings[0], warnings
    assert sink.written == 4 and not temporary.exists()
    opencv_without_ffmpeg.undo()  # a real OpenCV again: the file plays
    assert _decoded(out) == (4, (64, 48)) and readable_frames(out) == 4


def test_readable_frames_retries_any_backend_and_tells_unknown_from_empty(tmp_path, monkeypatch):
    out = tmp_path / "mjpg.avi"
    with VideoFileSink(out, 10) as sink:
        for image in _frames(5):
            sink.write(image)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)  # no index: FFmpeg (which reads every container written) opens nothing
    assert readable_frames(broken) == 0 and readable_frames(tmp_path / "absent.mp4") == 0
    # FFmpeg does not open it, OpenCV's own MJPEG reader (what CAP_ANY finds without FFmpeg) does
    real_capture = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda path, api=cv2.CAP_ANY: real_capture(
        path, cv2.CAP_OPENCV_MJPEG) if api == cv2.CAP_ANY else real_capture())
    assert readable_frames(out) == 5


def test_an_interrupted_read_back_keeps_the_video_and_names_it(tmp_path, caplog, monkeypatch):
    import deblurrt.runtime.sinks as sinks

    def interrupted(path):
        raise KeyboardInterrupt

    out = tmp_path / "out.mp4"
    sink = VideoFileSink(out, 10)
    for image in _frames(3):
        sink.write(image)
    monkeypatch.setattr(sinks, "readable_frames", interrupted)
    with caplog.at_level(logging.WARNING, logger="deblurrt.runtime"), pytest.raises(KeyboardInterrupt):
        sink.close()
    assert any(str(sink.temporary) in r.getMessage() for r in caplog.records), caplog.text
    monkeypatch.undo()
    assert sink.temporary.is_file() and _decoded(sink.temporary) == (3, (64, 48)) and not out.exists()
