"""Frame sources from URIs, in the spirit of jetson-inference's ``videoSource``.

=====================================  =======================================================  =========
URI                                    what                                                     kind
=====================================  =======================================================  =========
``0``, ``1``                           camera by index (V4L2 on Linux)                           live
``/dev/video0``                        V4L2 device                                               live
``csi://0``                            Jetson CSI camera via ``nvarguscamerasrc`` (GStreamer)    live
``rtsp://user:pass@host/path``         network stream through FFmpeg (also rtsps, rtmp, http,    live
                                       https, udp, tcp, srt)
``v4l2src ! ... ! appsink``            a raw GStreamer pipeline (anything containing ``!``)      live
``clip.mp4``                           a video file                                              file
``frames/``, ``frames/*.png``          an image folder or a glob, in natural name order          file
``synthetic://[photo]?size=640x360``   a shaky virtual camera with sharp truth                   either
=====================================  =======================================================  =========

Live sources keep only the newest frame: a grabber thread reads the device continuously and a frame not
taken before the next arrives is dropped and counted (latency over completeness). When a live device fails
(unplugged camera, network hiccup) it is reopened with exponential back-off without ending the run. File
sources deliver every frame in order. Corrupt frames are skipped and counted everywhere. Credentials in
stream URIs are never logged: :func:`redact` replaces them.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError

log = logging.getLogger("deblurrt.runtime")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
# FFmpeg otherwise waits ~30 s on an unreachable host
STREAM_TIMEOUT_MS = 5000


class SourceError(DeblurrtError):
    """A source cannot be opened or read; the message names the (redacted) URI and the fix."""


# --------------------------------------------------------------------------------------------- helpers

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_SECRET_PARAMS = re.compile(r"(?P<key>\b(?:user-pw|user-id|password|passwd|pwd|token|user|username)=)"
                            r"(?P<value>\"[^\"]*\"|'[^']*'|[^&\s!]+)", re.IGNORECASE)


def redact(text: str) -> str:
    """``rtsp://admin:secret@cam/stream`` -> ``rtsp://***@cam/stream``; also ``user-pw=...`` in GStreamer
    pipelines and ``password=``/``token=`` query parameters. Safe to log."""
    text = _USERINFO.sub(lambda m: m.group("scheme") + "***@", str(text))
    return _SECRET_PARAMS.sub(lambda m: m.group("key") + "***", text)


def _natural_key(path: str) -> list[Any]:
    """``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def normalize_image(image: Any) -> np.ndarray | None:
    """A decoded frame as BGR uint8 HxWx3, or None when it is corrupt (empty, wrong type or shape)."""
    if not isinstance(image, np.ndarray) or image.size == 0:
        return None
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        return None
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3:
        return None
    if image.shape[2] == 3:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    return None


def lossy_reading(image: Any) -> str | None:
    """What :func:`normalize_image` loses of a decoded image (16 bits, alpha, grey), as a sentence; None when
    nothing is lost or the image is not usable at all."""
    if not isinstance(image, np.ndarray) or image.size == 0 or image.dtype not in (np.uint8, np.uint16):
        return None
    notes = []
    if image.dtype == np.uint16:
        notes.append("16-bit images are deblurred and written at 8 bits")
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else 3
    if channels == 4:
        notes.append("the alpha channel is dropped (outputs have 3 channels)")
    elif channels == 1:
        notes.append("grey images are deblurred as colour and written with 3 channels")
    return "; ".join(notes) or None


def opencv_video_io() -> dict[str, Any]:
    """OpenCV's compiled-in video I/O (FFmpeg, GStreamer, V4L2) and GUI, from ``cv2.getBuildInformation()``."""
    from deblurrt.doctor import parse_opencv_build_info

    return parse_opencv_build_info(cv2.getBuildInformation())


def require_gstreamer(uri: str) -> None:
    """Raise :class:`SourceError` when this OpenCV build has no GStreamer (``csi://`` and pipelines need it)."""
    if not opencv_video_io().get("gstreamer"):
        raise SourceError(
            f"{redact(uri)} needs OpenCV with GStreamer, and this OpenCV ({cv2.__version__}) was built without it "
            "(pip's opencv-python wheels never have it). Fix: on Jetson use JetPack's OpenCV (python3-opencv; "
            "create the venv with --system-site-packages and pip uninstall opencv-python-headless inside it), "
            "or build OpenCV with -DWITH_GSTREAMER=ON. A USB camera works without it: use 0 or /dev/video0")


def csi_pipeline(sensor: int, width: int = 1280, height: int = 720, fps: float = 30, flip: int = 0) -> str:
    """The GStreamer pipeline of a Jetson CSI camera (Argus), delivering BGR to OpenCV's appsink."""
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM), width={width}, height={height}, "
            f"framerate={round(fps)}/1, format=NV12 ! nvvidconv flip-method={flip} ! video/x-raw, width={width}, "
            f"height={height}, format=BGRx ! videoconvert ! video/x-raw, format=BGR ! "
            "appsink drop=true max-buffers=1 sync=false")


# --------------------------------------------------------------------------------------------- frames

@dataclass
class Frame:
    """One captured frame.

    Attributes:
        image: BGR uint8 ``HxWx3``.
        index: position in the source's delivered sequence (0, 1, ...).
        timestamp: ``time.perf_counter()`` when it was captured (end-to-end latency starts here).
        name: the file name for image folders (sinks keep it), else None.
        truth: the sharp ground truth (``synthetic://`` only), BGR uint8.
        capture_ms: time spent reading/decoding it.
    """

    image: np.ndarray
    index: int
    timestamp: float
    name: str | None = None
    truth: np.ndarray | None = None
    capture_ms: float = 0.0


class Reader(Protocol):
    """What a live source polls: ``cv2.VideoCapture`` fits, and so does a test stand-in."""

    def read(self) -> tuple[bool, Any]: ...

    def release(self) -> None: ...


class Source:
    """Base class: ``read()`` returns the next :class:`Frame` or None at the end; iterate or use ``with``."""

    live: bool = False

    def __init__(self, uri: str):
        self.uri = redact(uri)
        self.fps: float | None = None
        self.dropped = 0
        self.corrupt = 0
        self.reconnects = 0
        self.delivered = 0
        #: frames the input announced (a video file's frame count), None when unknown
        self.expected: int | None = None
        #: the input stopped before what it announced (a truncated file): ``missing`` frames never came
        self.ended_early = False
        self.missing = 0

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame; None at the end of a file source (or when a live source is stopped)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Ask a blocked :meth:`read` to return None soon (called from another thread)."""

    def close(self) -> None:
        """Release the device or file."""

    def counters(self) -> dict[str, int]:
        """``{"delivered", "dropped", "corrupt", "reconnects", "missing"}``."""
        return {"delivered": self.delivered, "dropped": self.dropped, "corrupt": self.corrupt,
                "reconnects": self.reconnects, "missing": self.missing}

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LiveSource(Source):
    """A live device polled by a grabber thread; :meth:`read` returns the newest frame not yet delivered.

    Args:
        uri: for messages (credentials are redacted).
        opener: returns an opened :class:`Reader`, or raises :class:`SourceError`. Called once here (a device
            that cannot be opened at start is an error) and again on every reconnect.
        fps: nominal rate (for the output video), or None.
        backoff: (first, max) seconds between reconnect attempts; doubles each failure.
        failures_before_reconnect: consecutive failed reads that mean the device is gone.
    """

    live = True

    def __init__(self, uri: str, opener: Callable[[], Reader], *, fps: float | None = None,
                 backoff: tuple[float, float] = (0.5, 8.0), failures_before_reconnect: int = 5):
        super().__init__(uri)
        self.fps = fps
        self._opener = opener
        self._backoff = backoff
        self._max_failures = failures_before_reconnect
        self._reader: Reader | None = opener()
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._captured = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._grab_loop, name="deblurrt-grab", daemon=True)
        self._thread.start()

    def _reconnect(self) -> bool:
        delay, attempt = self._backoff[0], 0
        while not self._stop.is_set():
            attempt += 1
            log.warning("source %s lost; reconnecting in %.1f s (attempt %d)", self.uri, delay, attempt)
            if self._stop.wait(delay):
                return False
            try:
                self._reader = self._opener()
            except DeblurrtError as error:
                log.warning("reconnect to %s failed: %s", self.uri, redact(str(error)))
                delay = min(delay * 2, self._backoff[1])
                continue
            self.reconnects += 1
            log.warning("source %s reconnected", self.uri)
            return True
        return False

    def _grab_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if self._reader is None and not self._reconnect():
                break
            start = time.perf_counter()
            try:
                ok, image = self._reader.read()
            except cv2.error as error:  # a backend may raise on a broken stream instead of returning False
                log.warning("source %s: read failed: %s", self.uri, redact(str(error)))
                ok, image = False, None
            now = time.perf_counter()
            if not ok:
                failures += 1
                if failures >= self._max_failures:
                    self._release_reader()
                    failures = 0
                else:
                    self._stop.wait(0.01)  # a transient failure: do not spin
                continue
            failures = 0
            image = normalize_image(image)
            if image is None:
                self.corrupt += 1
                continue
            with self._cond:
                if self._latest is not None:
                    self.dropped += 1  # nobody took the previous frame in time: keep only the newest
                self._latest = Frame(image, self._captured, now, capture_ms=(now - start) * 1e3)
                self._captured += 1
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _release_reader(self) -> None:
        if self._reader is not None:
            try:
                self._reader.release()
            finally:
                self._reader = None

    def read(self, timeout: float | None = None) -> Frame | None:
        """The newest frame (waits for one); None when stopped or after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._latest is None:
                if self._stop.is_set() or not self._thread.is_alive():
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(0.1 if remaining is None else min(remaining, 0.1))
            frame, self._latest = self._latest, None
        frame.index = self.delivered
        self.delivered += 1
        return frame

    def stop(self) -> None:
        """Stop grabbing; a blocked :meth:`read` returns None."""
        self._stop.set()

    def close(self) -> None:
        """Stop the grabber thread and release the device."""
        self.stop()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self._release_reader()


class VideoFileSource(Source):
    """Every frame of a video file, in order. An undecodable frame followed by good ones is skipped and
    counted as corrupt; when decoding stops for good before the frame count the file announces, the file
    ended early (truncated or damaged): :attr:`ended_early` is set and :attr:`missing` counts the frames
    announced but never delivered."""

    def __init__(self, path: str | Path, *, max_consecutive_failures: int = 25):
        super().__init__(str(path))
        self.path = Path(path)
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"cannot open video file {self.path}: OpenCV/FFmpeg does not recognise it (or it is "
                              "truncated: an mp4 whose index is missing does not open). Fix: check the file plays "
                              "(ffprobe), or convert it to H.264/MJPEG mp4/avi")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None
        self.expected = self.frame_count
        self._max_failures = max_consecutive_failures
        self._ended = False

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next decodable frame, or None at the end of the file."""
        failures = 0
        while not self._ended:
            start = time.perf_counter()
            before = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES) or 0)
            ok, image = self._cap.read()
            now = time.perf_counter()
            image = normalize_image(image) if ok else None
            if image is not None:
                self.corrupt += failures  # bad frames with good ones after them: corrupt, skipped
                frame = Frame(image, self.delivered, now, capture_ms=(now - start) * 1e3)
                self.delivered += 1
                return frame
            position = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES) or 0)
            failures += 1
            # a failed read before the announced end may be one corrupt frame: try on, unless the decoder no
            # longer advances (the data ran out) or too many failed in a row
            if ok or (self.frame_count is not None and position < self.frame_count - 1
                      and position > before and failures < self._max_failures):
                continue
            self._ended = True
            if self.frame_count is not None and self.delivered + self.corrupt < self.frame_count:
                self.ended_early = True
                self.missing = self.frame_count - self.delivered - self.corrupt
        return None

    def close(self) -> None:
        """Release the file."""
        self._cap.release()


class ImageFilesSource(Source):
    """Images from a folder, a glob or one file, in natural name order; unreadable files are skipped."""

    def __init__(self, uri: str, paths: list[Path]):
        super().__init__(uri)
        if not paths:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {uri}. Fix: point at a folder or glob "
                              "of images, e.g. 'frames/*.png'")
        self.paths = paths
        self._next = 0
        self._told: set[str] = set()  # each lossy conversion is reported once per run, not once per image

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next readable image, or None after the last."""
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            start = time.perf_counter()
            decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            image = normalize_image(decoded)
            now = time.perf_counter()
            if image is None:
                self.corrupt += 1
                if isinstance(decoded, np.ndarray) and decoded.size and decoded.dtype not in (np.uint8, np.uint16):
                    # it opens: saying "unreadable" would send the user looking for a broken file
                    log.warning("skipping %s: its pixels are %s, and deblurrt reads 8- and 16-bit images. Fix: "
                                "convert it to an 8- or 16-bit PNG or TIFF", path, decoded.dtype)
                else:
                    log.warning("skipping unreadable image %s", path)
                continue
            lost = lossy_reading(decoded)
            if lost and lost not in self._told:
                self._told.add(lost)
                log.warning("%s (first: %s)", lost, path.name)
            frame = Frame(image, self.delivered, now, name=path.name, capture_ms=(now - start) * 1e3)
            self.delivered += 1
            return frame
        return None


class _SyntheticReader:
    """A :class:`Reader` over :class:`SyntheticCamera`, paced at its fps (a live virtual camera)."""

    def __init__(self, camera: Any, frames: int | None):
        self.camera, self.frames = camera, frames
        self.index = 0
        self.truths: dict[int, np.ndarray] = {}
        self._next_time = time.perf_counter()

    def read(self) -> tuple[bool, Any]:
        if self.frames is not None and self.index >= self.frames:
            time.sleep(0.05)
            return False, None
        delay = self._next_time - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        self._next_time = max(self._next_time + 1.0 / self.camera.options.fps, time.perf_counter() - 1.0)
        blurry, sharp = self.camera.render(self.index)
        self.index += 1
        return True, (blurry, sharp)

    def release(self) -> None:
        """Nothing to release."""


class SyntheticSource(Source):
    """``synthetic://``: blurry frames with their sharp truth (:mod:`deblurrt.runtime.synthetic`).

    By default a virtual camera: paced at ``fps`` behind a grabber thread that keeps only the newest frame,
    like a real one (frames the pipeline cannot take in time are dropped and counted), so the end-to-end
    latency is a camera's. ``live=0`` makes it a file-like source instead: every frame, deterministic, as
    fast as it renders.
    """

    def __init__(self, uri: str):
        from deblurrt.runtime.synthetic import SyntheticCamera, parse_synthetic_uri

        super().__init__(uri)
        self.options = parse_synthetic_uri(uri)
        self.camera = SyntheticCamera(self.options)
        self.fps = self.options.fps
        self.live = self.options.live
        self._index = 0
        self._live: LiveSource | None = None
        if self.live:
            reader = _SyntheticReader(self.camera, self.options.frames)
            self._live = _PairLiveSource(uri, lambda: reader, fps=self.fps)

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame (with ``truth``); None after ``frames`` frames."""
        if self._live is not None:
            return self._live.read(timeout)
        if self.options.frames is not None and self._index >= self.options.frames:
            return None
        start = time.perf_counter()
        blurry, sharp = self.camera.render(self._index)
        now = time.perf_counter()
        frame = Frame(blurry, self._index, now, truth=sharp, capture_ms=(now - start) * 1e3)
        self._index += 1
        self.delivered += 1
        return frame

    def counters(self) -> dict[str, int]:
        """The live grabber's counters when live."""
        return self._live.counters() if self._live is not None else super().counters()

    def stop(self) -> None:
        """Stop the live grabber, if any."""
        if self._live is not None:
            self._live.stop()

    def close(self) -> None:
        """Stop the live grabber, if any."""
        if self._live is not None:
            self._live.close()


class _PairLiveSource(LiveSource):
    """A live source whose reader yields ``(blurry, sharp)`` pairs (the synthetic camera)."""

    def _grab_loop(self) -> None:
        reader = self._reader
        while not self._stop.is_set():
            start = time.perf_counter()
            ok, pair = reader.read()
            now = time.perf_counter()
            if not ok:
                if reader.frames is not None and reader.index >= reader.frames:
                    break  # the finite virtual camera ended
                continue
            with self._cond:
                if self._latest is not None:
                    self.dropped += 1
                self._latest = Frame(pair[0], self._captured, now, truth=pair[1], capture_ms=(now - start) * 1e3)
                self._captured += 1
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()


# --------------------------------------------------------------------------------------------- opening

def _capture_opener(uri: str, target: Any, api: int, params: list[int] | None = None,
                    size: tuple[int, int] | None = None, fps: float | None = None) -> Callable[[], Reader]:
    def open_capture() -> Reader:
        cap = cv2.VideoCapture(target, api, params) if params else cv2.VideoCapture(target, api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {redact(uri)}: the device or stream did not answer. Fix: check that "
                              "it exists and is not in use (v4l2-ctl --list-devices; ffprobe for streams; "
                              "'deblurrt doctor' for OpenCV's video I/O)")
        if size is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer queued frames in the driver: lower latency
        return cap

    return open_capture


def image_files(text: str) -> list[Path] | None:
    """The images a local INPUT reads, in natural name order, when it is an image folder, a glob (possibly
    matching none) or one image file; None when it is none of those (a video file, or nothing there).
    Cameras and streams are for the caller to tell apart first, as :func:`open_source` does."""
    path = Path(text).expanduser()
    if path.is_dir():
        return sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                      key=lambda p: _natural_key(p.name))
    if any(ch in text for ch in "*?["):
        return [Path(p) for p in sorted(glob.glob(os.path.expanduser(text)), key=_natural_key)
                if Path(p).suffix.lower() in IMAGE_SUFFIXES]
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return [path]
    return None


def open_source(uri: str, *, size: tuple[int, int] | None = None, fps: float | None = None) -> Source:
    """Open a source from a URI (see the module docstring). ``size`` (W, H) and ``fps`` request a camera mode.

    Raises :class:`SourceError` (exit code 2 in the CLI) with the redacted URI and a fix.
    """
    text = str(uri).strip()
    if not text:
        raise SourceError("empty input. Fix: give a camera index (0), a file, a folder, a stream URL or synthetic://")
    if text.startswith("synthetic://"):
        return SyntheticSource(text)
    if text.isdigit():
        opener = _capture_opener(text, int(text), cv2.CAP_ANY, size=size, fps=fps)
        return LiveSource(text, opener, fps=fps)
    if text.startswith("/dev/video"):
        if not Path(text).exists():
            raise SourceError(f"{text} does not exist. Fix: list cameras with 'v4l2-ctl --list-devices' "
                              "(or ls /dev/video*)")
        opener = _capture_opener(text, text, cv2.CAP_V4L2, size=size, fps=fps)
        return LiveSource(text, opener, fps=fps)
    if text.startswith("csi://"):
        require_gstreamer(text)
        body, _, query = text[len("csi://"):].partition("?")
        options = dict(item.partition("=")[::2] for item in query.split("&") if item)
        try:
            width, height = (int(v) for v in options.get("size", "1280x720").split("x"))
            rate = float(options.get("fps", fps or 30))
            pipeline = csi_pipeline(int(body or 0), width, height, rate, int(options.get("flip", 0)))
        except ValueError as error:
            raise SourceError(f"bad CSI URI {text!r}: use csi://N?size=1280x720&fps=30&flip=0") from error
        return LiveSource(text, _capture_opener(text, pipeline, cv2.CAP_GSTREAMER), fps=rate)
    if "!" in text:
        require_gstreamer(text)
        return LiveSource(text, _capture_opener(text, text, cv2.CAP_GSTREAMER), fps=fps)
    if text.lower().startswith(STREAM_SCHEMES):
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS]
        return LiveSource(text, _capture_opener(text, text, cv2.CAP_FFMPEG, params), fps=fps)
    if text.startswith("file://"):
        text = text[len("file://"):]
    images = image_files(text)
    if images is not None:
        return ImageFilesSource(text, images)
    path = Path(text).expanduser()
    if path.is_file():
        return VideoFileSource(path)
    raise SourceError(f"input {redact(text)!r} does not exist and is not a camera or stream URI. Fix: give a "
                      "camera index (0), /dev/videoN, csi://N, rtsp://host/path, a video file, an image folder "
                      "or glob, or synthetic://")
