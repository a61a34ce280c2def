"""``deblurrt eval MODEL --data clip.mp4``: a video without sharp truth, scored frame by frame without reference
(:func:`~deblurrt.runtime.evaluate.sharpness`) and over time (:mod:`deblurrt.runtime.flicker`: the warping
error of consecutive inputs and outputs). Frames go through the same frame code as ``deblurrt run``
(optionally at a reduced processing scale and with the temporal blend), so the figures are what ``run`` writes.

The report is :func:`~deblurrt.runtime.evaluate.summarize`'s (``layout`` = ``"video"``, ``reference`` =
``"none"``, one ``per_image`` row per frame named ``frame_000001``) plus ``flicker`` (``input``, ``output``,
``ratio``, ``pairs``, ``valid``), ``scale`` and ``temporal``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deblurrt.runtime.adaptive import adapter_for
from deblurrt.runtime.evaluate import ImageResult, sharpness, summarize
from deblurrt.runtime.flicker import FlickerMeter, TemporalBlend

__all__ = ["VIDEO_SUFFIXES", "evaluate_video", "is_video_file"]

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")


def is_video_file(path: str | os.PathLike) -> bool:
    """True for an existing file with a video suffix."""
    path = Path(path)
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def evaluate_video(backend: Any, path: str | os.PathLike, *, limit: int | None = None, scale: float = 1.0,
                   temporal: float = 0.0, on_frame: Callable[[ImageResult], None] | None = None) -> dict[str, Any]:
    """Run every frame of a video (the first ``limit``) through ``backend`` and report no-reference sharpness
    and flicker of inputs and outputs (see the module docstring)."""
    from deblurrt.runtime.sources import VideoFileSource

    adapter = adapter_for(backend, scale)
    blend = TemporalBlend(temporal) if temporal > 0 else None
    meter = FlickerMeter()
    results: list[ImageResult] = []
    source = VideoFileSource(path)
    try:
        warmed = False
        while (limit is None or len(results) < limit) and (frame := source.read()) is not None:
            image = frame.image
            prepared = adapter.prepare(image)
            if not warmed:  # the first inference allocates and plans: not latency
                adapter.run(backend.infer, prepared)
                warmed = True
            start = time.perf_counter()
            output = adapter.run(backend.infer, prepared)
            latency = (time.perf_counter() - start) * 1e3
            restored = adapter.finish(output, prepared)[0]
            if blend is not None:
                restored = blend(image, restored)
            meter.add(image, restored)
            sharp_in, sharp_out = sharpness(image), sharpness(restored)
            result = ImageResult(f"frame_{frame.index + 1:06d}", image.shape[1], image.shape[0], None, None, None,
                                 None, latency, input_sharpness=sharp_in["gradient"],
                                 output_sharpness=sharp_out["gradient"], input_laplacian_var=sharp_in["laplacian_var"],
                                 output_laplacian_var=sharp_out["laplacian_var"])
            results.append(result)
            if on_frame is not None:
                on_frame(result)
    finally:
        source.close()
    report = summarize(results, backend=backend, data=path, layout="video")
    report.update({"flicker": meter.result(), "scale": scale, "temporal": temporal or None,
                   "corrupt_frames": source.corrupt})
    return report
