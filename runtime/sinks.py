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

Nothing is overwritten by surprise: a video file is written under a temporary name in the same folder
(:func:`deblurrt.outputs.temporary_name`; for a symlink, the folder of the file it points to, which is written
through) and renamed onto its name only when it is finalised and holds every frame; an image file sink refuses
names that already exist unless opened with ``overwrite``, and an image folder refuses two frames of the same
name in one run.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from deblurrt.errors import DeblurrtError
from deblurrt.outputs import (
    WRITE_FIX,
    OutputError,
    os_reason,
    temporary_name,
    write_bytes_atomic,
    write_failure_reason,
)
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
    finalises the output (the pipeline guarantees it runs on Ctrl-C and SIGTERM).

    Where :attr:`even_size` is set (video files: OpenCV's mp4v and MJPG encoders only take even sizes and
    would otherwise drop the last column/row without a word), an odd width or height is cropped by one pixel
    and a warning names both sizes once: padding instead would add a border that is not in the picture."""

    #: crop odd frame sizes to even ones (the encoder needs it) and say so once
    even_size = False

    def __init__(self, uri: str, fps: float):
        super().__init__(uri)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self._writer: cv2.VideoWriter | None = None
        #: the frame size the stream is fixed to (the first frame's), W x H
        self.size: tuple[int, int] | None = None
        #: the size the video is written at: :attr:`size`, made even where :attr:`even_size` says so
        self.video_size: tuple[int, int] | None = None
        self._warned = False

    def _video_size(self, width: int, height: int) -> tuple[int, int]:
        """The size frames of ``width`` x ``height`` are written at (even where the encoder needs it)."""
        if not self.even_size or (width % 2 == 0 and height % 2 == 0):
            return width, height
        even = (width - width % 2, height - height % 2)
        if min(even) < 2:
            raise SinkError(f"cannot write {width}x{height} frames to the video {self.uri}: its encoder needs "
                            "an even width and height of at least 2. Fix: write images (out/ or out.png)")
        log.warning("frames are %dx%d, but the video encoder needs an even width and height: %s is written at "
                    "%dx%d (the last %s dropped). Fix: to keep every pixel, write images (out/ or out.png)",
                    width, height, self.uri, *even,
                    "column and row are" if width % 2 and height % 2 else "column is" if width % 2 else "row is")
        return even

    def _open_writer(self, width: int, height: int) -> cv2.VideoWriter:
        """An opened writer for frames of ``width`` x ``height``, or :class:`SinkError` saying why not."""
        raise NotImplementedError

    def _write(self, image: np.ndarray, name: str | None) -> None:
        height, width = image.shape[:2]
        if self._writer is None:
            video_size = self._video_size(width, height)
            self._writer = self._open_writer(*video_size)
            self.size, self.video_size = (width, height), video_size
        if (width, height) != self.size:
            if not self._warned:
                log.warning("frame size changed to %dx%d; resizing to the output's %dx%d", width, height, *self.size)
                self._warned = True
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        if self.video_size != self.size:
            # crop ourselves rather than leave it to the encoder: the same pixels, and said once above
            image = image[:self.video_size[1], :self.video_size[0]]
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

    The file is written under a temporary name (``.NAME.tmpPID.SUFFIX``, see
    :func:`deblurrt.outputs.temporary_name`) in the folder of :attr:`target`, so an existing file of that name
    (``--overwrite``) is untouched until the new video is complete. :meth:`close` finalises the temporary file,
    reads back how many frames it holds (:attr:`written`) and renames it onto :attr:`target` when it holds every
    frame sent, which is also the case for a run stopped early (Ctrl-C, SIGTERM, a failing model): what was
    written is a playable video. A process killed outright (SIGKILL, out of memory) never gets to
    :meth:`close`: its frames stay in the temporary file (an .avi plays what reached the disk, an .mp4 has no
    index).

    :attr:`target` is :attr:`path`, or the file a symlink at :attr:`path` points to: the video is written
    through the link, which is kept (as ``open()`` and shell redirection treat a link).

    Where this OpenCV cannot read the file back at all (no FFmpeg, and no other backend opens it: JetPack's
    OpenCV writing through GStreamer), the frames cannot be counted: without a reported write failure the file
    is renamed into place all the same, :attr:`written` is the frames sent, and a warning says it is unverified.

    A failed write (disk full, file-size limit) stops the run with a :class:`SinkError`, and so does a file
    that holds fewer frames than were sent. Then the temporary file is removed, unless it still plays and
    nothing is at :attr:`target` yet: those frames are kept under :attr:`path` (as for an interrupted run) and
    the error says how many. An existing file at :attr:`target` is never replaced by an incomplete one. A
    complete video is never deleted: when the rename fails, or the read-back is interrupted (a second Ctrl-C),
    the temporary file stays and the error or warning gives its path.
    """

    even_size = True

    def __init__(self, path: str | Path, fps: float = 30.0):
        super().__init__(str(path), fps)
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise SinkError(f"cannot write video {self.path}: use {', '.join(VIDEO_CODECS)} (OpenCV's encoders "
                            "here: mp4v in .mp4, MJPG in .avi)")
        _make_parent(self.path)
        self.fourcc = VIDEO_CODECS[suffix]
        #: the file the video becomes: :attr:`path`, or where a symlink at :attr:`path` points (the link stays)
        self.target = Path(os.path.realpath(self.path))
        if not self.target.parent.is_dir():  # a dangling link into a missing folder (an unmounted disk?)
            raise SinkError(f"cannot write {self.path}: it is a symlink to {self.target}, whose folder does not "
                            "exist. Fix: create that folder (or mount its disk), or give another OUTPUT")
        #: where the frames go until :meth:`close` renames it onto :attr:`target`: next to it, named after
        #: :attr:`path` (whose suffix picks the container)
        self.temporary = self.target.with_name(temporary_name(self.path).name)
        #: frames handed to OpenCV (``written`` is what the file holds once closed)
        self.sent = 0
        self._failed = False

    def _open_writer(self, width: int, height: int) -> cv2.VideoWriter:
        writer = cv2.VideoWriter(str(self.temporary), cv2.VideoWriter_fourcc(*self.fourcc), self.fps,
                                 (width, height))
        if not writer.isOpened():
            reason = write_failure_reason(self.temporary)
            self._discard_temporary()
            raise SinkError(f"OpenCV cannot write {self.path} with codec {self.fourcc} at {width}x{height} "
                            f"({reason}). Fix: try .avi (MJPG), check the folder is writable and has space")
        return writer

    def _write(self, image: np.ndarray, name: str | None) -> None:
        self.sent += 1
        super()._write(image, name)

    def _write_failed(self) -> None:
        self._failed = True
        raise SinkError(f"writing {self.path} failed after {self.written} frames: "
                        f"{write_failure_reason(self.temporary)}; {self._kept()}. {WRITE_FIX}")

    def _exists(self) -> bool:
        """Whether a file (or anything) is at :attr:`target` already."""
        return os.path.lexists(self.target)

    def _kept(self, held: int | None = None) -> str:
        """What happens to the frames of a failed write, in words (``held``: the playable frames, None while
        the file is still open and that is not known yet)."""
        if self._exists():
            return f"the existing {self.path} is kept unchanged"
        if held is None:
            return f"the frames that still play, if any, are kept as {self.path}"
        return f"those {held} frames are kept as {self.path}" if held > 0 else f"nothing was written to {self.path}"

    def close(self) -> None:
        """Finalise the temporary file, count the frames it holds (:attr:`written`), and rename it onto
        :attr:`target` when it holds every frame sent (or when this OpenCV cannot read it back and no write
        failed: renamed unverified, with a warning). Fewer is a :class:`SinkError` (unless a write failure
        was already reported); the temporary file is then kept only where it plays and nothing is at
        :attr:`target` (see the class docstring), else removed. Never removed: a video that may be complete
        (a failed rename, an interrupted read-back): the error or warning names the temporary file."""
        if self._writer is None:
            return
        super().close()
        try:
            held = readable_frames(self.temporary)
        except BaseException as error:
            self.written = 0
            where = f"the video ({self.sent} frames sent) is at {self.temporary}, not checked and not renamed"
            if isinstance(error, Exception):
                raise SinkError(f"{self.path}: reading the new video back failed ({error}); {where}. Fix: check "
                                f"that it plays and move it onto {self.path} yourself") from error
            log.warning("%s: stopped while the new video was read back; %s", self.path, where)
            raise
        if self._failed or (held is not None and held < self.sent):
            self._close_incomplete(held or 0)
            return
        if held is None:
            log.warning("this OpenCV cannot read %s back (no FFmpeg, and no other video backend here reads it), "
                        "so its frames were not counted: it is renamed into place unverified, %d frames sent. "
                        "Fix: check that it plays", self.path, self.sent)
            held = self.sent
        self.written = held
        try:
            os.replace(self.temporary, self.target)
        except OSError as error:
            self.written = 0
            raise SinkError(f"cannot move the finished video onto {self.path}: {os_reason(error)}; the video is at "
                            f"{self.temporary} ({held} frames). Fix: check that {self.target.parent} is writable and "
                            f"that {self.target} is not a folder, then move it there yourself") from error

    def _close_incomplete(self, held: int) -> None:
        """The new video holds fewer frames than were sent, or a write failed: keep its playable frames where
        nothing is at :attr:`target` yet, else remove it; :class:`SinkError` unless a write failure was
        already reported."""
        reason = write_failure_reason(self.temporary)
        kept = self._kept(held)
        self.written = self._keep_partial(held)
        if not self._failed:
            self._failed = True
            raise SinkError(f"{self.path}: the new video holds {held} playable frames of the {self.sent} "
                            f"sent to it: {reason}; {kept}. {WRITE_FIX}")

    def _keep_partial(self, held: int) -> int:
        """After a failed write: rename the temporary file onto :attr:`target` when it still plays and nothing
        is there (the frames are all there is), else remove it. Returns the frames :attr:`path` now holds from
        this run."""
        if held <= 0 or self._exists():
            self._discard_temporary()
            return 0
        try:
            os.replace(self.temporary, self.target)
        except OSError as error:  # those frames are all there is: leave them where they are and say so
            log.warning("cannot move the %d frames that play onto %s: %s; they are at %s", held, self.path,
                        os_reason(error), self.temporary)
            return 0
        return held

    def _discard_temporary(self) -> None:
        """Remove the temporary file where it is still there (after a rename it is not)."""
        try:
            self.temporary.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:  # the folder went away or became read-only: say so, the run's error stands
            log.warning("could not remove the temporary file %s: %s", self.temporary, os_reason(error))


def has_ffmpeg() -> bool:
    """Whether this OpenCV reads video files through FFmpeg (pip's wheels do; JetPack's OpenCV does not)."""
    registry = getattr(cv2, "videoio_registry", None)
    if registry is not None and hasattr(registry, "hasBackend"):
        return bool(registry.hasBackend(cv2.CAP_FFMPEG))
    return bool(opencv_video_io().get("ffmpeg"))


def _count_frames(capture: cv2.VideoCapture, reopen: Callable[[], cv2.VideoCapture],
                  trust_count: bool) -> int:
    """The frames an opened ``capture`` delivers (it is released). Where ``trust_count`` (FFmpeg) and the file
    announces a count, decoding the last announced frame confirms it (one seek), else ``reopen()`` gives a
    capture from the start; the frames are then counted one by one (up to the announced count where it is
    trusted)."""
    announced = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    limit = announced if trust_count and announced else None
    if limit:
        try:
            if capture.set(cv2.CAP_PROP_POS_FRAMES, limit - 1) and capture.grab():
                return limit
        finally:
            capture.release()
        capture = reopen()
    try:
        count = 0
        while (limit is None or count < limit) and capture.grab():
            count += 1
        return count
    finally:
        capture.release()


def readable_frames(path: str | Path) -> int | None:
    """How many frames a finalised video file really holds, or None when this OpenCV cannot tell.

    FFmpeg reads every container :class:`VideoFileSink` writes, so where it is in this OpenCV a file it cannot
    open holds 0 playable frames (e.g. an mp4 whose index could not be written). The count the file announces
    comes from its header, which a writer rewrites at the end even when frame data before it could not be
    written (an AVI cut short by a full disk or ``ulimit -f`` still announces every frame). So the last
    announced frame is decoded too (one seek: cheap); only when that fails, or nothing is announced, are the
    frames counted one by one, which is also the number that still plays.

    Where FFmpeg does not open the file, any backend that does (``CAP_ANY``: GStreamer, OpenCV's own MJPEG
    reader) counts the frames one by one (their announced counts are estimates). None when no backend opens
    the file, or one opens it but decodes nothing, in an OpenCV without FFmpeg (JetPack's, writing through
    GStreamer): the file may well be complete, and the caller decides."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return 0
    except OSError:
        return 0  # not there: nothing was written
    logging_api = cv2.utils.logging
    level = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)  # an unplayable file is reported by the caller
    try:
        for api in (cv2.CAP_FFMPEG, cv2.CAP_ANY):
            capture = cv2.VideoCapture(str(path), api)
            if not capture.isOpened():
                capture.release()
                continue
            count = _count_frames(capture, lambda api=api: cv2.VideoCapture(str(path), api),
                                  trust_count=api == cv2.CAP_FFMPEG)
            if count or api == cv2.CAP_FFMPEG:
                return count
        return 0 if has_ffmpeg() else None
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


def folder_image_name(name: str | None, index: int) -> str:
    """The file name :class:`ImageFolderSink` gives frame ``index`` named ``name``: the source's file name,
    with ``.png`` instead of a suffix OpenCV cannot write, or ``NNNNNN.png`` for unnamed frames."""
    filename = name or f"{index:06d}.png"
    if not cv2.haveImageWriter(filename):
        filename = Path(filename).stem + ".png"
    return filename


class ImageFolderSink(Sink):
    """One image per frame in a folder, named like the input image (or numbered ``000000.png``). The folder
    is created when opened and removed again at :meth:`close` when this sink created it and wrote nothing.
    Two frames with the same name in one run (``x1/a.png`` and ``x2/a.png``) are a :class:`SinkError`: the
    second would silently replace the first."""

    def __init__(self, folder: str | Path):
        super().__init__(str(folder))
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise SinkError(f"output folder {self.folder} is a file. Fix: give a folder (new or empty)")
        self._created = not self.folder.exists()
        _make_parent(self.folder / "x")
        self._names: set[str] = set()

    def _write(self, image: np.ndarray, name: str | None) -> None:
        filename = folder_image_name(name, self.written)
        if filename in self._names:
            raise SinkError(f"two frames of this run are named {filename}: the second would replace the first in "
                            f"{self.folder}. Fix: give input images distinct names, or write each input folder to "
                            "its own OUTPUT folder")
        _write_image(self.folder / filename, image)
        self._names.add(filename)

    def close(self) -> None:
        """Remove the folder again when this run created it and wrote nothing into it."""
        if self._created and self.written == 0:
            try:
                self.folder.rmdir()
            except OSError:
                pass  # not empty after all, or already gone: leave it
        self._created = False


def numbered_image_path(path: Path, index: int) -> Path:
    """Where :class:`ImageFileSink` writes frame ``index``: ``path`` itself for the first, then
    ``STEM_000001.SUFFIX``, ``STEM_000002.SUFFIX``, ..."""
    return path if index == 0 else path.with_name(f"{path.stem}_{index:06d}{path.suffix}")


def is_numbered_image_name(path: Path, name: str) -> bool:
    """Whether the file name ``name`` is one :class:`ImageFileSink` on ``path`` writes after its first frame
    (``STEM_NNNNNN.SUFFIX``)."""
    pattern = rf"{re.escape(path.stem)}_\d{{6,}}{re.escape(path.suffix)}"
    return re.fullmatch(pattern, name) is not None


def numbered_image_files(path: Path) -> list[Path]:
    """The existing files next to ``path`` named like its later frames (``STEM_NNNNNN.SUFFIX``), sorted."""
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []  # no folder yet (or unreadable): nothing there to overwrite
    return sorted(entry for entry in entries if is_numbered_image_name(path, entry.name))


class ImageFileSink(Sink):
    """``out.png``: the first frame there, later ones as ``out_000001.png``, ... (see
    :func:`numbered_image_path`). Unless ``overwrite``, a name that already exists is a :class:`SinkError`
    when its frame comes (nothing is replaced); ``deblurrt run`` checks these names before the run starts."""

    def __init__(self, path: str | Path, *, overwrite: bool = False):
        super().__init__(str(path))
        self.path = Path(path)
        self.overwrite = overwrite
        _make_parent(self.path)

    def _write(self, image: np.ndarray, name: str | None) -> None:
        path = numbered_image_path(self.path, self.written)
        if not self.overwrite and (path.exists() or path.is_symlink()):
            raise SinkError(f"{path} already exists ({self.path} writes its frame {self.written + 1} there). Fix: "
                            "choose another OUTPUT name, or add --overwrite to replace it")
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


def open_sink(uri: str | None, *, fps: float | None = None, headless: bool = False,
              overwrite: bool = False) -> Sink:
    """Open a sink from a URI (see the module docstring); ``headless`` forbids ``display://``; ``overwrite``
    lets an image file sink replace existing ``out.png`` / ``out_NNNNNN.png`` files."""
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
    return ImageFileSink(path, overwrite=overwrite)


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
