"""Sources: URIs open the right thing; files and folders deliver every frame in order; live sources keep
only the newest frame, count drops and reconnect with back-off; corrupt frames are skipped and counted;
credentials never appear; synthetic:// is deterministic, blurry, torch-free."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from blocked_imports import run_without

from deblurrt.errors import DeblurrtError
from deblurrt.metrics import psnr
from deblurrt.runtime.sources import (
    ImageFilesSource,
    LiveSource,
    SourceError,
    SyntheticSource,
    VideoFileSource,
    normalize_image,
    open_source,
    opencv_video_io,
    redact,
)


@pytest.mark.parametrize("text, expected", [
    ("rtsp://admin:s3cret@10.0.0.2:554/live", "rtsp://***@10.0.0.2:554/live"),
    ("rtsps://user@cam.local/x", "rtsps://***@cam.local/x"),
    ("http://cam/video?user=bob&password=pw&fps=30", "http://cam/video?user=***&password=***&fps=30"),
    ("rtspsrc location=rtsp://a:b@h/s user-id=bob user-pw=pw ! appsink",
     "rtspsrc location=rtsp://***@h/s user-id=*** user-pw=*** ! appsink"),
    ("/data/clip.mp4", "/data/clip.mp4"),
])
def test_credentials_are_redacted(text, expected):
    assert redact(text) == expected


def test_image_folder_in_natural_order_skipping_corrupt_files(tmp_path):
    rng = np.random.default_rng(0)
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    (tmp_path / "frame5.png").write_bytes(b"not a png")
    cv2.imwrite(str(tmp_path / "frame7.png"), np.full((24, 32), 7, np.uint8))  # grayscale -> BGR
    cv2.imwrite(str(tmp_path / "frame8.png"), np.full((24, 32, 3), 65535, np.uint16))  # 16-bit -> 8-bit
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(str(tmp_path)) as source:
        assert isinstance(source, ImageFilesSource) and not source.live
        frames = list(source)
        assert [f.name for f in frames] == ["frame1.png", "frame2.png", "frame7.png", "frame8.png", "frame10.png"]
        assert [f.index for f in frames] == [0, 1, 2, 3, 4]
        assert all(f.image.shape == (24, 32, 3) and f.image.dtype == np.uint8 for f in frames)
        assert frames[2].image[0, 0].tolist() == [7, 7, 7] and frames[3].image.max() == 255
        assert source.corrupt == 1 and source.dropped == 0
    with open_source(str(tmp_path / "frame*.png")) as source:
        assert len(list(source)) == 5
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path / "*.jpg"))


def test_image_folder_says_once_what_a_pixel_format_loses_and_names_unsupported_ones(tmp_path, caplog):
    for i in (1, 2):  # two 16-bit images: one warning for the run, not one per image
        cv2.imwrite(str(tmp_path / f"deep{i}.png"), np.full((24, 32, 3), 40000, np.uint16))
    cv2.imwrite(str(tmp_path / "clear3.png"), np.full((24, 32, 4), 200, np.uint8))  # with alpha
    cv2.imwrite(str(tmp_path / "float4.tiff"), np.full((24, 32, 3), 0.5, np.float32))
    with caplog.at_level("WARNING", logger="deblurrt"), open_source(str(tmp_path)) as source:
        names = [frame.name for frame in source]
    assert names == ["clear3.png", "deep1.png", "deep2.png"] and source.corrupt == 1
    messages = [record.getMessage() for record in caplog.records]
    assert sum("16-bit images are deblurred and written at 8 bits" in m for m in messages) == 1
    assert sum("alpha channel is dropped" in m for m in messages) == 1
    floats = [m for m in messages if "float4.tiff" in m]
    assert len(floats) == 1 and "float32" in floats[0] and "unreadable" not in floats[0] and "Fix:" in floats[0]


def test_video_file_delivers_every_frame_in_order(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 48))
    for i in range(12):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    with open_source(str(path)) as source:
        assert isinstance(source, VideoFileSource) and source.fps == pytest.approx(15)
        levels = [int(np.median(frame.image)) for frame in source]
    assert len(levels) == 12 and all(abs(a - i * 20) <= 3 for i, a in enumerate(levels))


def test_unopenable_inputs_say_what_to_give(tmp_path):
    with pytest.raises(SourceError, match="does not exist and is not a camera or stream URI"):
        open_source(str(tmp_path / "missing.mp4"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="cannot open video file"):
        open_source(str(broken))
    with pytest.raises(SourceError, match="v4l2-ctl"):
        open_source("/dev/video99")


@pytest.mark.skipif(bool(opencv_video_io().get("gstreamer")), reason="this OpenCV has GStreamer")
@pytest.mark.parametrize("uri", ["csi://0", "videotestsrc ! videoconvert ! appsink"])
def test_gstreamer_sources_explain_a_missing_gstreamer(uri):
    with pytest.raises(SourceError) as caught:
        open_source(uri)
    assert "GStreamer" in str(caught.value) and "JetPack" in str(caught.value)


class FastCamera:
    """A live-camera stand-in: a new numbered frame every ``period`` seconds, optionally failing."""

    def __init__(self, period=0.001, fail_after=None, corrupt_every=None):
        self.period, self.fail_after, self.corrupt_every = period, fail_after, corrupt_every
        self.count = 0
        self.released = False

    def read(self):
        time.sleep(self.period)
        if self.fail_after is not None and self.count >= self.fail_after:
            return False, None
        self.count += 1
        if self.corrupt_every and self.count % self.corrupt_every == 0:
            return True, np.zeros((0, 0, 3), np.uint8)
        return True, np.full((8, 8, 3), self.count % 256, np.uint8)

    def release(self):
        self.released = True


def test_live_source_keeps_the_newest_frame_and_counts_drops():
    camera = FastCamera(period=0.001, corrupt_every=7)
    source = LiveSource("fake://cam", lambda: camera)
    try:
        values = []
        for _ in range(10):
            frame = source.read(timeout=2)
            values.append(int(frame.image[0, 0, 0]))
            # a slow consumer: 10 frames arrive meanwhile (counted, not timed, so a busy machine cannot fail it)
            seen, deadline = camera.count, time.monotonic() + 10
            while camera.count < seen + 10 and time.monotonic() < deadline:
                time.sleep(0.005)
    finally:
        source.close()
    assert camera.released
    # of each 10 at most 2 are corrupt (every 7th) and 1 is delivered: 9 gaps drop at least 63
    assert source.delivered == 10 and source.dropped > 50, source.counters()
    assert source.corrupt > 0
    assert all(b > a for a, b in zip(values, values[1:], strict=False))  # always newer frames


def test_live_source_reconnects_with_backoff_without_ending():
    cameras, opens = [], []

    def opener():
        opens.append(time.monotonic())
        if len(opens) == 2:
            raise SourceError("camera still gone")
        cameras.append(FastCamera(period=0.002, fail_after=5 if len(cameras) == 0 else None))
        return cameras[-1]

    source = LiveSource("fake://cam", opener, backoff=(0.02, 0.1), failures_before_reconnect=3)
    try:
        frames = [source.read(timeout=3) for _ in range(8)]
    finally:
        source.close()
    assert all(f is not None for f in frames)
    assert source.reconnects == 1 and len(opens) == 3
    assert opens[2] - opens[1] >= 0.035  # the back-off doubled after the failed attempt
    assert cameras[0].released


def test_a_stopped_live_source_returns_none():
    source = LiveSource("fake://cam", lambda: FastCamera(period=0.5))
    threading.Timer(0.05, source.stop).start()
    start = time.monotonic()
    assert source.read() is None and time.monotonic() - start < 1.0
    source.close()


def test_normalize_image_rejects_corrupt_frames():
    assert normalize_image(None) is None and normalize_image(np.zeros((0, 4, 3), np.uint8)) is None
    assert normalize_image(np.zeros((4, 4, 3), np.float32)) is None
    assert normalize_image(np.zeros((4, 4, 4), np.uint8)).shape == (4, 4, 3)


# ------------------------------------------------------------------------------------------- synthetic

def test_synthetic_frames_are_blurry_deterministic_and_carry_truth():
    uri = "synthetic://?size=128x96&frames=4&seed=3&live=0"  # every frame, as fast as it renders
    with open_source(uri) as first, open_source(uri) as second:
        assert isinstance(first, SyntheticSource) and not first.live and first.fps == 30
        a, b = list(first), list(second)
    assert len(a) == 4
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.truth, y.truth)
        assert x.image.shape == x.truth.shape == (96, 128, 3)
        assert psnr(x.image, x.truth) < 35  # measured ~20-28 dB at "moderate"
    assert not np.array_equal(a[0].truth, a[3].truth)  # the camera pans
    with open_source("synthetic://?size=128x96&frames=1&seed=4&live=0") as other:
        assert not np.array_equal(next(iter(other)).image, a[0].image)


def test_synthetic_severity_orders_the_blur():
    def mean_psnr(severity):
        with open_source(f"synthetic://?size=128x96&frames=3&severity={severity}&live=0") as source:
            return np.mean([psnr(f.image, f.truth) for f in source])

    assert mean_psnr("mild") > mean_psnr("severe") + 2


def test_synthetic_over_a_photo(tmp_path):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8))
    with open_source(f"synthetic://{photo}?size=64x48&frames=2&live=0") as source:
        frames = list(source)
    assert len(frames) == 2 and frames[0].image.shape == (48, 64, 3)


@pytest.mark.parametrize("uri, fragment", [
    ("synthetic://?size=abc", "expected size=WxH"),
    ("synthetic://?severity=extreme", "severity must be one of"),
    ("synthetic://?speed=3", "unknown synthetic:// option"),
    ("synthetic://no/such/photo.jpg", "does not exist"),
])
def test_synthetic_bad_options(uri, fragment):
    with pytest.raises(DeblurrtError, match=fragment):
        open_source(uri)


def test_synthetic_camera_is_live_by_default_and_live_0_is_file_like():
    with open_source("synthetic://?size=64x48&frames=1") as paced, \
            open_source("synthetic://?size=64x48&frames=1&live=0") as unpaced:
        assert paced.live and paced.fps == 30 and not unpaced.live
    with pytest.raises(DeblurrtError, match="live must be 1"):
        open_source("synthetic://?live=maybe")


def test_live_synthetic_camera_drops_frames_for_a_slow_consumer():
    with open_source("synthetic://?size=64x48&fps=200&frames=40") as source:
        assert source.live
        got = []
        while (frame := source.read(timeout=5)) is not None:
            got.append(frame)
            time.sleep(0.03)
        counters = source.counters()
    assert counters["dropped"] > 0 and len(got) + counters["dropped"] == 40
    assert all(f.truth is not None for f in got)


def test_synthetic_source_works_with_torch_blocked():
    result = run_without("""
        from deblurrt.runtime.sources import open_source
        with open_source("synthetic://?size=64x48&frames=2&live=0") as source:
            print(len(list(source)))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


def test_gstreamer_outputs_explain_what_is_missing_and_build_pipelines():
    from deblurrt.runtime.sinks import SinkError, open_sink, rtsp_publish_pipeline
    from deblurrt.runtime.sources import opencv_video_io

    software = rtsp_publish_pipeline("rtsp://localhost:8554/deblurred")
    assert software.startswith("appsrc") and "x264enc" in software and software.endswith(
        "rtspclientsink location=rtsp://localhost:8554/deblurred")
    jetson = rtsp_publish_pipeline("rtsp://localhost:8554/d", encoder="nvv4l2h264enc")
    assert "nvvidconv" in jetson and "bitrate=4000000" in jetson
    with pytest.raises(SinkError, match="must start with appsrc"):
        open_sink("videotestsrc ! fakesink")
    if not opencv_video_io().get("gstreamer"):
        with pytest.raises(SinkError, match="needs OpenCV with GStreamer") as error:
            open_sink("rtsp://user:secret@localhost:8554/out")
        assert "secret" not in str(error.value)


def _linear_mean(bgr: np.ndarray) -> float:
    """Mean light of an 8-bit sRGB image, linear (what blur integrates)."""
    from deblurrt.synthesis import srgb_to_linear

    return float(srgb_to_linear(bgr).mean())


@pytest.mark.parametrize("light, spacing, boosted", [(120, 200, False), (6, 40, True)], ids=["white walls", "lamps"])
def test_synthetic_boosts_light_sources_not_white_areas(tmp_path, light, spacing, boosted):
    # the training recipe's rule: a small near-white blob is a light (it streaks brighter than white when
    # shaken), a large white area is not (a boosted wall glows in halos no camera shows)
    scene = np.full((700, 1100, 3), 90, np.uint8)
    for cy in range(spacing, 700 - spacing // 2, spacing):
        for cx in range(spacing, 1100 - spacing // 2, spacing):
            half = light // 2
            scene[cy - half:cy + half, cx - half:cx + half] = 255
    cv2.imwrite(str(tmp_path / "scene.png"), scene)
    from deblurrt.runtime.synthetic import SyntheticCamera, parse_synthetic_uri

    camera = SyntheticCamera(parse_synthetic_uri(f"synthetic://{tmp_path / 'scene.png'}?size=320x180&seed=3"))
    ratios = []
    for index in range(8):
        blurry, sharp = camera.render(index)
        # blur moves light around but keeps its total: only a boost adds any
        ratios.append(_linear_mean(blurry) / _linear_mean(sharp))
    if boosted:
        assert np.median(ratios) > 1.05
    else:
        assert abs(np.median(ratios) - 1.0) < 0.02
    # the truth is the photo, lights clipped to white: nothing darker or brighter than the scene holds
    still = camera.render(0)[1]
    assert still.max() == 255 and still.min() == 90
