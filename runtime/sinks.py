"""Frame sinks from URIs: a video file, an image folder, a window, or nothing.

=========================  ==============================================================================
URI                        what
=========================  ==============================================================================
``out.mp4`` / ``.m4v``     MPEG-4 Part 2 (``mp4v``; pip's OpenCV has no H.264 encoder); ``.mov`` too
``out.avi``                Motion-JPEG (``MJPG``)
``out/`` (or no suffix)    an image folder: input file names are kept (``frame_0001.png`` stays), other
                           sources are numbered ``000000.png``
``out.png``                one image (more frames: ``out_000001.png``, ...)
``display://0``            a window (needs an OpenCV with a GUI and a display; ``q``/Esc stops the run)
``rtsp://host:8554/name``  publish H.264 over RTSP to a server (e.g. mediamtx) through GStreamer
``'appsrc ! ... '``        a raw GStreamer pipeline starting with ``appsrc`` (e.g. to ``udpsink`` or a file)
``none`` / empty           discard (benchmarking, ``--headless`` without an output)
=========================  ==============================================================================

:func:`compose_view` builds what is written: the output alone, or ``input | output`` side by side, with an
optional overlay of FPS and latency.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError
from deblurrt.outputs import WRITE_FIX, OutputError, os_reason, write_bytes_atomic, write_failure_reason
from deblurrt.runtime.sources import IMAGE_SUFFIXES, opencv_video_io, redact

log = logging.getLogger("deblurrt.runtime")

VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}


class SinkError(DeblurrtError):
    """An output cannot be created or written; the message says why and what to do."""


class Sink:
    """Base class: :meth:`write` frames (BGR uint8), then :meth:`close` (which finalises files)."""

    def __init__(self, uri: str):
        self.uri = uri
        self.written = 0
        #: set by interactive sinks (a window's q/Esc) to ask the pipeline to stop
        self.stop_requested = False

    def write(self, image: np.ndarray, *, name: str | None = None) -> None:
        """Write one frame; ``name`` is the source file name for image folders."""
        self._write(image, name)
        self.written += 1

    def _write(self, image: np.ndarray, name: str | None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finalise the output (idempotent)."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class NullSink(Sink):
    """Discards frames (headless benchmarking)."""

    def _write(self, image: np.ndarray, name: str | None) -> None:
        pass


class _VideoWriterSink(Sink):
    """Frames into an OpenCV ``VideoWriter`` opened on the first frame (its size fixes the stream's); later
    frames of another size are resized to it (logged once). :meth:`close` releases the writer, which
    finalises the output (the pipeline guarantees it runs on Ctrl-C and SIGTERM)."""

    def __init__(self, uri: str, fps: float):
        super().__init__(uri)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self._writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self._warned = False

    def _open_writer(self, width: int, height: int) -> cv2.VideoWriter:
        """An opened writer for frames of ``width`` x ``height``, or :class:`SinkError` saying why not."""
        raise NotImplementedError

    def _write(self, image: np.ndarray, name: str | None) -> None:
        height, width = image.shape[:2]
        if self._writer is None:
            self._writer, self.size = self._open_writer(width, height), (width, height)
        if (width, height) != self.size:
            if not self._warned:
                log.warning("frame size changed to %dx%d; resizing to the output's %dx%d", width, height, *self.size)
                self._warned = True
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        # OpenCV >= 4.12 returns False when the encoder or the file write failed (older ones return None and
        # never say): a failure stops the run instead of "writing" frames that never reach the file
        if self._writer.write(image) is False:
            self._write_failed()

    def _write_failed(self) -> None:
        raise SinkError(f"writing {self.uri} failed after {self.written} frames. Fix: check the destination")

    def close(self) -> None:
        """Release the writer: a file gets its index (playable), a pipeline its end-of-stream."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class VideoFileSink(_VideoWriterSink):
    """A video file (see :class:`_VideoWriterSink`); .mp4 as mp4v, .avi as MJPG.

    A failed write (disk full, file-size limit) stops the run with a :class:`SinkError`. :meth:`close`
    finalises the file and then reads back how many frames it really holds: :attr:`written` becomes that
    number, and a file that holds fewer frames than were sent (or does not open) is a :class:`SinkError`.
    """

    def __init__(self, path: str | Path, fps: float = 30.0):
        super().__init__(str(path), fps)
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise SinkError(f"cannot write video {self.path}: use {', '.join(VIDEO_CODECS)} (OpenCV's encoders "
                            "here: mp4v in .mp4, MJPG in .avi)")
        _make_parent(self.path)
        self.fourcc = VIDEO_CODECS[suffix]
        #: frames handed to OpenCV (``written`` is what the file holds once closed)
        self.sent = 0
        self._failed = False

    def _open_writer(self, width: int, height: int) -> cv2.VideoWriter:
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (width, height))
        if not writer.isOpened():
            raise SinkError(f"OpenCV cannot write {self.path} with codec {self.fourcc} at {width}x{height} "
                            f"({write_failure_reason(self.path)}). Fix: try .avi (MJPG), check the folder is "
                            "writable and has space")
        return writer

    def _write(self, image: np.ndarray, name: str | None) -> None:
        self.sent += 1
        super()._write(image, name)

    def _write_failed(self) -> None:
        self._failed = True
        raise SinkError(f"writing {self.path} failed after {self.written} frames: "
                        f"{write_failure_reason(self.path)}; the video is incomplete and may not play. {WRITE_FIX}")

    def close(self) -> None:
        """Finalise the file, then count the frames it holds (:attr:`written`); fewer than were sent is an
        error (unless a write failure was already reported)."""
        if self._writer is None:
            return
        super().close()
        self.written = readable_frames(self.path)
        if self.written < self.sent and not self._failed:
            self._failed = True
            raise SinkError(f"{self.path} holds {self.written} playable frames of the {self.sent} sent to it: "
                            f"{write_failure_reason(self.path)}. {WRITE_FIX}")


def readable_frames(path: str | Path) -> int:
    """How many frames a finalised video file announces (0 when it does not open, e.g. an mp4 whose index
    could not be written)."""
    logging_api = cv2.utils.logging
    level = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)  # an unplayable file is reported by the caller
    try:
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        try:
            if not capture.isOpened():
                return 0
            return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        finally:
            capture.release()
    finally:
        logging_api.setLogLevel(level)


def _make_parent(path: Path) -> None:
    """Create the folder ``path`` goes into; :class:`SinkError` when a part of it is a file or unwritable."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise SinkError(f"cannot write {path}: a part of {parent} is a file, not a folder. Fix: choose a path "
                        "inside a folder") from error
    except OSError as error:
        raise SinkError(f"cannot create the folder {parent} for {path}: {os_reason(error)}") from error


def _write_image(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` by ``path``'s suffix and write it atomically (no half image under the real name; a
    failed write is a :class:`SinkError` naming the path and the reason)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(path.suffix or ".png", image, params)
    if not ok:
        raise SinkError(f"OpenCV cannot encode {path}. Fix: write .png")
    try:
        write_bytes_atomic(path, encoded.tobytes())
    except OutputError as error:
        raise SinkError(str(error)) from error


class ImageFolderSink(Sink):
    """One image per frame in a folder, named like the input image (or numbered ``000000.png``). The folder
    is created when opened and removed again at :meth:`close` when this sink created it and wrote nothing."""

    def __init__(self, folder: str | Path):
        super().__init__(str(folder))
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise SinkError(f"output folder {self.folder} is a file. Fix: give a folder (new or empty)")
        self._created = not self.folder.exists()
        _make_parent(self.folder / "x")

    def _write(self, image: np.ndarray, name: str | None) -> None:
        filename = name or f"{self.written:06d}.png"
        if not cv2.haveImageWriter(filename):
            filename = Path(filename).stem + ".png"
        _write_image(self.folder / filename, image)

    def close(self) -> None:
        """Remove the folder again when this run created it and wrote nothing into it."""
        if self._created and self.written == 0:
            try:
                self.folder.rmdir()
            except OSError:
                pass  # not empty after all, or already gone: leave it
        self._created = False


class ImageFileSink(Sink):
    """``out.png``: the first frame there, later ones as ``out_000001.png``, ..."""

    def __init__(self, path: str | Path):
        super().__init__(str(path))
        self.path = Path(path)
        _make_parent(self.path)

    def _write(self, image: np.ndarray, name: str | None) -> None:
        path = self.path if self.written == 0 else self.path.with_name(
            f"{self.path.stem}_{self.written:06d}{self.path.suffix}")
        _write_image(path, image)


def display_problem() -> str | None:
    """Why a window cannot be shown here, or None when it can."""
    gui = (opencv_video_io().get("gui") or "NONE").upper()
    if gui in ("NONE", "NO", ""):
        return (f"this OpenCV ({cv2.__version__}) has no GUI (opencv-python-headless, what 'make setup' "
                "installs). Fix: 'make gui' (or pip uninstall opencv-python-headless && pip install "
                "opencv-python), or give an OUTPUT file (out.mp4), or run with --headless")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return ("no display ($DISPLAY is not set: an SSH session or a service?). Fix: write to a file "
                "(OUTPUT out.mp4), use --headless, or run on the desktop (export DISPLAY=:0)")
    return None


class DisplaySink(Sink):
    """An OpenCV window; ``q`` or Esc sets :attr:`stop_requested`."""

    def __init__(self, uri: str = "display://0", title: str = "deblurrt"):
        super().__init__(uri)
        problem = display_problem()
        if problem:
            raise SinkError(f"cannot open {uri}: {problem}")
        self.title = title
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)

    def _write(self, image: np.ndarray, name: str | None) -> None:
        cv2.imshow(self.title, image)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stop_requested = True

    def close(self) -> None:
        """Close the window."""
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass


def rtsp_publish_pipeline(url: str, encoder: str | None = None, bitrate_kbps: int = 4000) -> str:
    """A GStreamer pipeline that encodes BGR frames from OpenCV to H.264 and publishes them to an RTSP server
    (``rtspclientsink``, from gst-rtsp-server). Jetson's hardware encoder is used when present in the name
    of ``encoder`` (``nvv4l2h264enc``), x264 otherwise."""
    encoder = encoder or "x264enc tune=zerolatency speed-preset=ultrafast"
    if encoder.startswith("nvv4l2h264enc"):
        convert = "nvvidconv ! video/x-raw(memory:NVMM), format=NV12"
        encode = f"{encoder} bitrate={bitrate_kbps * 1000} insert-sps-pps=true"
    else:
        convert = "videoconvert ! video/x-raw, format=I420"
        encode = f"{encoder} bitrate={bitrate_kbps}"
    return (f"appsrc is-live=true ! video/x-raw, format=BGR ! {convert} ! {encode} ! h264parse ! "
            f"rtspclientsink location={url}")


class GStreamerSink(_VideoWriterSink):
    """Frames into a GStreamer pipeline through OpenCV's ``VideoWriter(CAP_GSTREAMER)``: RTSP publishing or
    any ``appsrc ! ...`` pipeline. Needs an OpenCV built with GStreamer (JetPack's; not pip's wheels)."""

    def __init__(self, uri: str, pipeline: str, fps: float = 30.0):
        super().__init__(redact(uri), fps)
        if not opencv_video_io().get("gstreamer"):
            raise SinkError(f"{redact(uri)} needs OpenCV with GStreamer, and this OpenCV ({cv2.__version__}) has "
                            "none (pip's opencv-python wheels never do). Fix: on Jetson use JetPack's OpenCV "
                            "(venv with --system-site-packages, pip uninstall opencv-python-headless); or write a "
                            "file (out.mp4) and stream it with ffmpeg")
        self.pipeline = pipeline

    def _open_writer(self, width: int, height: int) -> cv2.VideoWriter:
        writer = cv2.VideoWriter(self.pipeline, cv2.CAP_GSTREAMER, 0, self.fps, (width, height))
        if not writer.isOpened():
            raise SinkError(f"GStreamer could not open the output pipeline for {self.uri}. Fix: check that the "
                            "elements exist (gst-inspect-1.0 rtspclientsink x264enc) and that the RTSP server is "
                            "running")
        return writer


def output_kind(uri: str | None) -> str:
    """What ``uri`` writes: ``none``, ``display``, ``stream`` (RTSP or a GStreamer pipeline), ``video``,
    ``image`` (one file) or ``folder``; :class:`SinkError` when it cannot tell."""
    text = "" if uri is None else str(uri).strip()
    if text.lower() in ("", "none", "null", "headless"):
        return "none"
    if text.startswith("display://"):
        return "display"
    if text.startswith(("rtsp://", "rtsps://")) or "!" in text:
        return "stream"
    path = Path(text).expanduser()
    suffix = path.suffix.lower()
    if text.endswith(("/", os.sep)) or path.is_dir() or not suffix:
        return "folder"
    if suffix in VIDEO_CODECS:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise SinkError(f"cannot tell what to write for {text!r}. Fix: use a video ({', '.join(VIDEO_CODECS)}), an "
                    "image folder (out/), an image (out.png), display://0, rtsp://server/name, an 'appsrc ! ...' "
                    "pipeline, or none")


def open_sink(uri: str | None, *, fps: float | None = None, headless: bool = False) -> Sink:
    """Open a sink from a URI (see the module docstring); ``headless`` forbids ``display://``."""
    text = "" if uri is None else str(uri).strip()
    kind = output_kind(text)
    if kind == "none":
        return NullSink("none")
    if kind == "display":
        if headless:
            raise SinkError(f"--headless was given together with {text}. Fix: drop one of them")
        return DisplaySink(text)
    if text.startswith(("rtsp://", "rtsps://")):
        return GStreamerSink(text, rtsp_publish_pipeline(text), fps or 30.0)
    if kind == "stream":
        if not text.lstrip().startswith("appsrc"):
            raise SinkError(f"an output GStreamer pipeline must start with appsrc, received {redact(text)!r}")
        return GStreamerSink(text, text, fps or 30.0)
    path = Path(text).expanduser()
    if kind == "folder":
        return ImageFolderSink(path)
    if kind == "video":
        return VideoFileSink(path, fps or 30.0)
    return ImageFileSink(path)


# --------------------------------------------------------------------------------------------- the view

def _label(image: np.ndarray, lines: list[str], origin: tuple[int, int] = (8, 8)) -> None:
    """Draw text lines on a dark box, in place (readable over any content)."""
    scale = max(0.4, min(image.shape[:2]) / 720.0)
    thickness = 1 if scale < 0.8 else 2
    sizes = [cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness) for line in lines]
    line_h = max(s[0][1] + s[1] for s in sizes) + 4
    width = max(s[0][0] for s in sizes) + 8
    x, y = origin
    box = image[y:y + line_h * len(lines) + 4, x:x + width]
    box[:] = (box * 0.35).astype(np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(image, line, (x + 4, y + (i + 1) * line_h - 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), thickness, cv2.LINE_AA)


def compose_view(input_image: np.ndarray, output_image: np.ndarray, *, side_by_side: bool = False,
                 overlay: list[str] | None = None) -> np.ndarray:
    """The frame to write: the output, or ``input | output``; ``overlay`` lines drawn top-left."""
    if side_by_side:
        if input_image.shape != output_image.shape:
            input_image = cv2.resize(input_image, (output_image.shape[1], output_image.shape[0]))
        view = np.concatenate([input_image, output_image], axis=1)
        _label(view, ["input"], (8, max(0, view.shape[0] - 40)))
        _label(view, ["deblurred"], (output_image.shape[1] + 8, max(0, view.shape[0] - 40)))
    else:
        view = output_image.copy() if overlay else output_image
    if overlay:
        _label(view, overlay)
    return view
