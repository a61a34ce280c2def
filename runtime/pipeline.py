"""The streaming pipeline: capture -> pre-process -> infer -> post-process -> write, overlapped.

Each stage runs in its own thread joined by small bounded queues, so decoding frame n+2, converting n+1 and
inferring n happen at the same time (numpy, OpenCV and the inference libraries release the GIL). The write
stage runs in the calling (main) thread, which also prints a status line to stderr about once a second and
receives Ctrl-C / SIGTERM.

Stopping: the first SIGINT/SIGTERM (or ``q`` in a window, or ``max_frames``) stops capturing; the frames
already captured still go through and are written, then the sink is closed, which finalises the video. A
second signal aborts without draining (the sink is still closed). The statistics (``stats_json``) are written
at the end of every run: finished, interrupted or failed.

Live sources use queues of one frame, so a frame waits at most one slot per stage (latency over
completeness: the source drops what the pipeline cannot take); file sources use deeper queues and lose
nothing.

Latency is measured per stage and end to end, reported as p50/p90/p99/mean over the last 10 000 frames:

  capture      reading one frame: decoding a file, a camera's read call, rendering a synthetic:// frame
  pre          converting the frame to the model's input (colour, scale, padding to the model's multiple)
  infer        the model alone (what 'deblurrt bench' measures model-only)
  post         converting the output back to an 8-bit frame (and PSNR against the truth, synthetic://)
  write        encoding/writing the frame to the output (video, images, window)
  end_to_end   from the moment the frame was captured to the moment it was written: the work of every stage
               PLUS the time the frame waited in the queues between them.

For a live source (a camera, synthetic:// paced at its fps) queues hold one frame and the source keeps only
the newest, so end_to_end is what a viewer sees: the camera-to-screen delay (less the sensor's exposure and
transport, which happen before capture). For a file source (a video, a folder, synthetic://?live=0) frames
are read as fast as possible and wait behind the earlier ones, so end_to_end grows with the backlog: it
measures queueing, not a camera's latency; compare throughput (FPS) there instead.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from deblurrt import __version__
from deblurrt.errors import DeblurrtError
from deblurrt.outputs import write_json_atomic
from deblurrt.runtime.backends.base import Backend
from deblurrt.runtime.blurscore import GateDecision, PassThroughGate, blend
from deblurrt.runtime.prepost import FrameAdapter, Prepared
from deblurrt.runtime.sinks import Sink, compose_view
from deblurrt.runtime.sources import Frame, Source

log = logging.getLogger("deblurrt.runtime")

STAGES = ("capture", "pre", "infer", "post", "write", "end_to_end")
_END = object()  # end-of-stream marker passed down the queues


class StageTimer:
    """Latency samples of one stage (milliseconds), thread-safe, keeping the last ``window`` for percentiles."""

    def __init__(self, window: int = 10_000):
        self._samples: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()
        self.count = 0
        self.total = 0.0

    def add(self, ms: float) -> None:
        """Record one sample."""
        with self._lock:
            self._samples.append(ms)
            self.count += 1
            self.total += ms

    def summary(self) -> dict[str, float | int | None]:
        """``{"p50", "p90", "p99", "mean", "max", "count"}`` in ms (None without samples)."""
        with self._lock:
            samples = np.array(self._samples, dtype=np.float64)
            count, total = self.count, self.total
        if samples.size == 0:
            return {"p50": None, "p90": None, "p99": None, "mean": None, "max": None, "count": 0}
        p50, p90, p99 = np.percentile(samples, [50, 90, 99])
        return {"p50": round(float(p50), 3), "p90": round(float(p90), 3), "p99": round(float(p99), 3),
                "mean": round(total / count, 3), "max": round(float(samples.max()), 3), "count": count}

    def recent_p50(self, last: int = 60) -> float | None:
        """Median of the last ``last`` samples (for the status line)."""
        with self._lock:
            recent = list(self._samples)[-last:]
        return float(np.median(recent)) if recent else None


@dataclass
class _Item:
    frame: Frame
    prepared: Prepared | None = None
    output: Any = None
    image: np.ndarray | None = None
    psnr_in: float | None = None
    psnr_out: float | None = None
    decision: GateDecision | None = None  # --skip-sharp's verdict on this frame


@dataclass
class PipelineOptions:
    """How a run behaves.

    Attributes:
        max_frames: stop capturing after this many frames (None: until the source ends or a signal).
        side_by_side: write ``input | output``.
        overlay: draw FPS and latency on the written frames.
        stats_json: write the statistics here at the end of every run.
        status: where the ~1/s status line goes (None: nowhere).
        status_interval: seconds between status lines.
        tile, overlap: force tiled inference (see :class:`~deblurrt.runtime.prepost.FrameAdapter`).
        queue_size: frames per queue (None: 1 for live sources, 4 for files).
        handle_signals: install SIGINT/SIGTERM handlers while running (main thread only).
        scale: process frames at this share of their size and add the upscaled residual (see
            :mod:`deblurrt.runtime.adaptive`); 1 = full resolution.
        skip_threshold: ``--skip-sharp``: frames whose blur score is below it pass through without
            inference (:mod:`deblurrt.runtime.blurscore`); None = every frame is deblurred.
        skip_blend: fade back to the input over this many frames after a blurry stretch.
        temporal: blend the model's residual with the previous one along the flow at this strength
            (:class:`~deblurrt.runtime.flicker.TemporalBlend`); 0 = off.
        flicker: measure the warping error of inputs and outputs (:mod:`deblurrt.runtime.flicker`) in a
            side thread; ``stats["flicker"]``.
        extra_stats: merged into the statistics (e.g. ``target_fps`` and ``chosen`` from a calibration).
    """

    max_frames: int | None = None
    side_by_side: bool = False
    overlay: bool = False
    stats_json: str | Path | None = None
    status: TextIO | None = field(default_factory=lambda: sys.stderr)
    status_interval: float = 1.0
    tile: tuple[int, int] | None = None
    overlap: int = 32
    queue_size: int | None = None
    handle_signals: bool = True
    scale: float = 1.0
    skip_threshold: float | None = None
    skip_blend: int = 0
    temporal: float = 0.0
    flicker: bool = False
    extra_stats: dict[str, Any] | None = None


class Pipeline:
    """Run ``source`` through ``backend`` into ``sink``; :meth:`run` returns the statistics dict.

    The pipeline does not own its parts: the caller opens and closes source, backend and sink, except that
    :meth:`run` always closes the sink (finalising the output) before returning.
    """

    def __init__(self, source: Source, backend: Backend, sink: Sink, options: PipelineOptions | None = None):
        self.source, self.backend, self.sink = source, backend, sink
        self.options = options or PipelineOptions()
        self.adapter = FrameAdapter.for_backend(backend, tile=self.options.tile, overlap=self.options.overlap)
        self.timers = {name: StageTimer() for name in STAGES}
        size = self.options.queue_size or (1 if source.live else 4)
        self._queues = [queue.Queue(maxsize=size) for _ in range(4)]
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._errors: list[BaseException] = []
        self.stopped_by: str | None = None
        self.frames_in = 0
        self.frames_out = 0
        self._psnr_in: list[float] = []
        self._psnr_out: list[float] = []
        self._start = 0.0
        self._last_out = 0.0
        self._frame_size: tuple[int, int] | None = None
        self._tiled = False
        self._init_adaptive()

    # ------------------------------------------------------------------------------------------ control
    def stop(self, reason: str = "stop") -> None:
        """Stop capturing; frames already captured are still processed and written."""
        if self.stopped_by is None:
            self.stopped_by = reason
        self._stop.set()
        self.source.stop()

    def abort(self, reason: str = "abort") -> None:
        """Stop now, dropping frames in flight (the sink is still closed properly)."""
        self.stop(reason)
        self._abort.set()

    def _put(self, q: queue.Queue, item: Any) -> bool:
        while not self._abort.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue) -> Any:
        while not self._abort.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def _fail(self, error: BaseException) -> None:
        # stop capturing but let frames past the failing stage reach the sink: they are already processed
        self._errors.append(error)
        self.stopped_by = "error"
        self.stop("error")

    # ------------------------------------------------------------------------------------------- stages
    def _capture(self) -> None:
        out = self._queues[0]
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    self.stopped_by = self.stopped_by or "end of input"
                    break
                self.timers["capture"].add(frame.capture_ms)
                self.frames_in += 1
                if not self._put(out, _Item(frame)):
                    return
                if self.options.max_frames is not None and self.frames_in >= self.options.max_frames:
                    self.stopped_by = self.stopped_by or "max frames"
                    break
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self._fail(error)
        finally:
            self._put(out, _END)

    def _stage(self, name: str, index: int, work) -> None:
        source, out = self._queues[index], self._queues[index + 1]
        try:
            while (item := self._get(source)) is not _END:
                start = time.perf_counter()
                work(item)
                self.timers[name].add((time.perf_counter() - start) * 1e3)
                if not self._put(out, item):
                    return
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self._fail(error)
        finally:
            self._put(out, _END)

    def _pre(self, item: _Item) -> None:
        if self._gate is not None:
            item.decision = self._gate.decide(item.frame.image)
            if not item.decision.run_model:
                return  # judged sharp: passes through, no inference
        item.prepared = self.adapter.prepare(item.frame.image)
        self._tiled = self._tiled or item.prepared.tiled

    def _infer(self, item: _Item) -> None:
        if item.prepared is not None:
            item.output = self.adapter.run(self.backend.infer, item.prepared)

    def _post(self, item: _Item) -> None:
        from deblurrt.metrics import psnr

        if item.prepared is None:
            item.image = item.frame.image
        else:
            item.image = self.adapter.finish(item.output, item.prepared)[0]
            if item.decision is not None:
                item.image = blend(item.frame.image, item.image, item.decision.alpha)
        if self._temporal is not None:
            item.image = self._temporal(item.frame.image, item.image)
        item.output = None
        if item.frame.truth is not None:
            item.psnr_in = psnr(item.frame.image, item.frame.truth)
            item.psnr_out = psnr(item.image, item.frame.truth)

    # --------------------------------------------------------------------------------------------- write
    def _overlay_lines(self, item: _Item | None = None) -> list[str]:
        lines = [f"{self._recent_fps():5.1f} FPS  latency {self.timers['end_to_end'].recent_p50() or 0:4.0f} ms  "
                 f"infer {self.timers['infer'].recent_p50() or 0:4.0f} ms"]
        if self._psnr_out:
            lines.append(f"PSNR in {np.mean(self._psnr_in[-30:]):.2f} dB  out {np.mean(self._psnr_out[-30:]):.2f} dB")
        if item is not None and item.decision is not None:
            verdict = "deblur" if item.decision.alpha >= 1.0 else ("fade" if item.decision.run_model else "pass")
            lines.append(f"blur {item.decision.level:+.2f} over recent (score {item.decision.score:.2f}): {verdict}  "
                         f"skipped {self._gate.skipped}")
        return lines

    def _recent_fps(self) -> float:
        window = self._out_times
        if len(window) < 2:
            return 0.0
        return (len(window) - 1) / max(window[-1] - window[0], 1e-9)

    def _write(self, item: _Item) -> None:
        start = time.perf_counter()
        frame = item.frame
        overlay = self._overlay_lines(item) if self.options.overlay else None
        view = compose_view(frame.image, item.image, side_by_side=self.options.side_by_side, overlay=overlay)
        self.sink.write(view, name=frame.name)
        now = time.perf_counter()
        self.timers["write"].add((now - start) * 1e3)
        self.timers["end_to_end"].add((now - frame.timestamp) * 1e3)
        self._frame_size = (item.image.shape[1], item.image.shape[0])
        if self._flicker is not None:
            self._flicker.submit(frame.image, item.image)
        self.frames_out += 1
        self._last_out = now
        self._out_times.append(now)
        if item.psnr_out is not None:
            self._psnr_in.append(item.psnr_in)
            self._psnr_out.append(item.psnr_out)
        if self.sink.stop_requested:
            self.stop("window closed")

    def _status_line(self) -> str:
        counters = self.source.counters()
        parts = [f"frames {self.frames_in} in / {self.frames_out} out", f"{counters['dropped']} dropped"]
        if counters["corrupt"]:
            parts.append(f"{counters['corrupt']} corrupt")
        if counters.get("missing"):
            parts.append(f"ended early, {counters['missing']} missing")
        if counters["reconnects"]:
            parts.append(f"{counters['reconnects']} reconnects")
        parts.append(f"{self._recent_fps():.1f} FPS")
        stage_text = " ".join(f"{name} {self.timers[name].recent_p50() or 0:.1f}"
                              for name in ("capture", "pre", "infer", "post", "write"))
        parts.append(f"{stage_text} ms")
        parts.append(f"e2e {self.timers['end_to_end'].recent_p50() or 0:.0f} ms")
        if self._psnr_out:
            parts.append(f"PSNR in {np.mean(self._psnr_in[-30:]):.2f} out {np.mean(self._psnr_out[-30:]):.2f} dB")
        return "deblurrt run: " + " | ".join(parts)

    # ----------------------------------------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        """Run until the source ends, ``max_frames``, a window's ``q`` or a signal; return the statistics.

        Re-raises a stage's exception after closing the sink and writing the statistics.
        """
        self._out_times: deque[float] = deque(maxlen=30)
        previous: dict[int, Any] = {}
        if self.options.handle_signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self._on_signal)
        self._start = time.perf_counter()
        threads = [threading.Thread(target=self._capture, name="deblurrt-capture", daemon=True)]
        for index, (name, work) in enumerate((("pre", self._pre), ("infer", self._infer), ("post", self._post))):
            threads.append(threading.Thread(target=self._stage, args=(name, index, work), name=f"deblurrt-{name}",
                                            daemon=True))
        for thread in threads:
            thread.start()
        next_status = time.perf_counter() + self.options.status_interval
        try:
            final_queue = self._queues[3]
            while True:
                try:
                    item = final_queue.get(timeout=0.1)
                except queue.Empty:
                    item = None
                if item is _END or self._abort.is_set():
                    break
                if item is not None:
                    try:
                        self._write(item)
                    except BaseException as error:  # noqa: BLE001 - re-raised below
                        self._fail(error)
                        break
                if self.options.status is not None and time.perf_counter() >= next_status:
                    print(self._status_line(), file=self.options.status, flush=True)
                    next_status = time.perf_counter() + self.options.status_interval
        finally:
            self.abort(self.stopped_by or "end")  # releases any stage still blocked
            for thread in threads:
                thread.join(timeout=10.0)
            try:
                self.sink.close()  # finalises the output; a video sink then counts what the file holds
            except Exception as error:  # noqa: BLE001 - recorded in the stats, re-raised below
                self._errors.append(error)
                self.stopped_by = "error"
            finally:
                self._close_adaptive()
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
            stats = self.stats()
            if self.options.stats_json:
                try:
                    write_json_atomic(self.options.stats_json, stats,
                                      what=f"the statistics {self.options.stats_json}")
                except DeblurrtError as error:
                    self._errors.append(error)
            if self.options.status is not None:
                print(self._status_line(), file=self.options.status, flush=True)
                print(f"deblurrt run: {stats['sink']['written']} frames written to {self.sink.uri}, "
                      f"{stats['fps']:.2f} FPS end to end, stopped by {self.stopped_by}", file=self.options.status,
                      flush=True)
        if self._errors:
            raise self._errors[0]
        return stats

    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self._stop.is_set():
            self.abort(self.stopped_by or name)
            return
        self.stop(name)
        if self.options.status is not None:
            print(f"deblurrt run: {name} received, finishing the frames in flight (again to abort)",
                  file=self.options.status, flush=True)

    def stats(self) -> dict[str, Any]:
        """The run's statistics (what ``--stats-json`` writes)."""
        counters = self.source.counters()
        duration = (self._last_out or time.perf_counter()) - self._start if self._start else 0.0
        fps = self.frames_out / duration if duration > 0 and self.frames_out else 0.0
        infer_mean = self.timers["infer"].summary()["mean"]
        psnr = None
        if self._psnr_out:
            finite_in = [v for v in self._psnr_in if math.isfinite(v)]
            finite_out = [v for v in self._psnr_out if math.isfinite(v)]
            mean_in = float(np.mean(finite_in)) if finite_in else None
            mean_out = float(np.mean(finite_out)) if finite_out else None
            psnr = {"input": _round(mean_in), "output": _round(mean_out),
                    "gain": _round(mean_out - mean_in) if mean_in is not None and mean_out is not None else None,
                    "frames": len(self._psnr_out)}
        info = self.backend.info
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": counters["dropped"],
            "corrupt": counters["corrupt"],
            "reconnects": counters["reconnects"],
            "input": {"expected_frames": getattr(self.source, "expected", None),
                      "ended_early": bool(getattr(self.source, "ended_early", False)),
                      "missing_frames": counters.get("missing", 0)},
            "fps": round(fps, 3),
            "model_fps": round(1000.0 / infer_mean, 3) if infer_mean else None,
            "duration_s": round(duration, 3),
            "interrupted": self.stopped_by not in ("end of input", "max frames", None),
            "stopped_by": self.stopped_by,
            "error": f"{type(self._errors[0]).__name__}: {self._errors[0]}" if self._errors else None,
            "latency_ms": {name: self.timers[name].summary() for name in STAGES},
            "psnr_db": psnr,
            "source": {"uri": self.source.uri, "live": self.source.live, "fps": self.source.fps},
            # written: what the output really holds (a video file is read back once closed)
            "sink": {"uri": str(self.sink.uri), "written": self.sink.written},
            "frame_size": list(self._frame_size) if self._frame_size else None,
            "tiled": self._tiled,
            "model": {"name": info.name, "precision": info.precision, "pad_multiple": info.pad_multiple,
                      "backend": self.backend.name, "path": str(self.backend.path)},
            "backend": self.backend.describe(),
            "versions": {"deblurrt": __version__, "numpy": np.__version__, "opencv": _cv2_version(),
                         "python": sys.version.split()[0]},
            "cpu_count": os.cpu_count(),
            **self._adaptive_stats(),
        }

    # ------------------------------------------------------------------- adaptive runtime (issue 14)
    def _init_adaptive(self) -> None:
        """Reduced-resolution processing, the sharp-frame gate, the temporal blend and the flicker meter."""
        from deblurrt.runtime.adaptive import ScaledAdapter
        from deblurrt.runtime.flicker import FlickerWorker, TemporalBlend

        options = self.options
        if options.scale < 1.0:
            self.adapter = ScaledAdapter(self.adapter, options.scale)
        self._gate = (PassThroughGate(options.skip_threshold, options.skip_blend)
                      if options.skip_threshold is not None else None)
        self._temporal = TemporalBlend(options.temporal) if options.temporal > 0 else None
        # live sources drop pairs rather than hold up the writer; files measure every pair
        self._flicker = FlickerWorker(drop=self.source.live) if options.flicker else None
        self._flicker_result: dict[str, Any] | None = None

    def _close_adaptive(self) -> None:
        if self._flicker is not None:
            self._flicker_result = self._flicker.close()
            self._flicker = None

    def _adaptive_stats(self) -> dict[str, Any]:
        """``target_fps``, ``chosen`` (from ``extra_stats``), ``scale``, ``skipped_sharp``, ``flicker``."""
        extra = dict(self.options.extra_stats or {})
        gate = self._gate
        return {"target_fps": extra.pop("target_fps", None), "chosen": extra.pop("chosen", None),
                "scale": self.options.scale,
                "skipped_sharp": gate.skipped if gate is not None else 0,
                "skip_sharp": None if gate is None else {"threshold": gate.threshold, "blend_frames": gate.blend_frames,
                                                         "scored": gate.frames, "method": gate.scorer.config.method},
                "temporal": self.options.temporal or None,
                "flicker": self._flicker_result, **extra}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _cv2_version() -> str:
    import cv2

    return str(cv2.__version__)
