"""The default job, on any machine and with no files: a shaky virtual camera -> the model -> a video.

A procedural scene (or --photo) is filmed by a virtual camera that shakes during every exposure
(synthetic://, with the sharp truth of each frame). Each frame goes through the model exactly as in
'deblurrt run', and the video shows blurry | deblurred side by side with FPS, latency and the live PSNR of
input and output against the truth. The statistics (FPS, per-stage latency, PSNR in/out) go to a JSON file
next to the video.

The model: --model, else the shipped default weights/unet_nano_prior.onnx of this repository. Until those
weights exist, the demo says so and, when torch and onnx are installed, exports unet_nano_prior with RANDOM
weights into a temporary folder so that the whole chain still runs: its output is NOT deblurred (the
video and stdout carry a banner saying so). Without torch/onnx it stops and says what to install.

Headless by default (writes the video); --display also shows a window where OpenCV has a GUI and a display.

examples:
  deblurrt demo                                   120 frames at 640x360 -> demo.mp4 + demo.json
  deblurrt demo --model unet_nano_prior.onnx --frames 300 --severity severe
  deblurrt demo --photo street.jpg --size 1280x720 --output street.mp4
  deblurrt demo --model m.engine --display        TensorRT, and a window
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from deblurrt.errors import DeblurrtError

DEFAULT_MODEL = "weights/unet_nano_prior.onnx"
FALLBACK_ARCH = "unet_nano_prior"
BANNER = "UNTRAINED weights: output is not deblurred"


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x360, received {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"sizes must be at least 16x16, received {text!r}")
    return width, height


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def default_model_path() -> Path:
    """The shipped default model: ``weights/unet_nano_prior.onnx`` at the repository root (the folder that
    holds the ``deblurrt`` package). ``DEBLURRT_DEMO_MODEL`` overrides it (tests; installs elsewhere)."""
    override = os.environ.get("DEBLURRT_DEMO_MODEL")
    if override:
        return Path(override).expanduser()
    import deblurrt

    return Path(deblurrt.__file__).resolve().parent.parent / DEFAULT_MODEL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt demo``."""
    parser.add_argument("--model", default=None, metavar="PATH",
                        help=f"model (.onnx, .engine, .safetensors); default: {DEFAULT_MODEL} of the repository")
    parser.add_argument("--output", default="demo.mp4", metavar="VIDEO", help="video to write (default demo.mp4)")
    parser.add_argument("--stats-json", default=None, metavar="FILE",
                        help="statistics file (default: the video's name with .json)")
    parser.add_argument("--frames", type=_positive, default=120, metavar="N", help="frames (default 120)")
    parser.add_argument("--size", type=_size, default=(640, 360), metavar="WxH", help="frame size (default 640x360)")
    parser.add_argument("--photo", default=None, metavar="PATH", help="film this photo instead of a generated scene")
    parser.add_argument("--severity", choices=["mild", "moderate", "severe"], default="moderate",
                        help="camera shake (default moderate)")
    parser.add_argument("--seed", type=int, default=0, help="scene and shake seed (default 0)")
    parser.add_argument("--backend", choices=["ort", "trt", "torch"], default=None,
                        help="force a backend (default: from the model's suffix)")
    parser.add_argument("--threads", type=_positive, default=None, metavar="N",
                        help="inference threads (ONNX Runtime / torch); default: all cores")
    parser.add_argument("--display", action="store_true", help="also show a window (where OpenCV can)")
    parser.add_argument("--quiet", action="store_true", help="no status line")


def _untrained_model(folder: Path) -> Path:
    """Export ``unet_nano_prior`` with random weights to ``folder``; DeblurrtError when torch/onnx are missing."""
    try:
        import onnx  # noqa: F401 - only checking that the exporter's dependency is there
        import torch

        from deblurrt.export.onnx_export import export_onnx
        from deblurrt.train.models import create_model
    except ImportError as error:
        raise DeblurrtError(
            f"no model to run: the default weights are not shipped yet ({default_model_path()} is missing) and "
            f"the random-weights fallback needs torch and onnx ({error}). Fix: give an exported model "
            "(deblurrt demo --model unet_nano_prior.onnx), or pip install 'deblurrt[train,export]'") from error
    torch.manual_seed(0)  # the same untrained network every time: reproducible demo videos
    return export_onnx(create_model(FALLBACK_ARCH).eval(), folder / f"{FALLBACK_ARCH}_untrained.onnx",
                       sample_shape=(64, 96))


def _banner_sink(base: Any, lines: list[str]) -> Any:
    """A sink that draws a red warning box across the top of each frame before passing it on."""
    import cv2

    from deblurrt.runtime.sinks import Sink

    class BannerSink(Sink):
        def __init__(self) -> None:
            super().__init__(base.uri)

        def _write(self, image, name) -> None:
            image = image.copy()
            scale = max(0.45, image.shape[0] / 720.0)
            thickness = 1 if scale < 0.8 else 2
            height = int(28 * scale) * len(lines) + 8
            top = max(0, image.shape[0] // 2 - height // 2)  # mid-frame: the corners hold the other labels
            image[top:top + height] = (image[top:top + height] * 0.3).astype(image.dtype)
            image[top:top + height, :, 2] = 200
            for i, line in enumerate(lines):
                cv2.putText(image, line, (10, top + int(28 * scale) * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                            (255, 255, 255), thickness, cv2.LINE_AA)
            base.write(image, name=name)
            self.stop_requested = base.stop_requested

        def close(self) -> None:
            base.close()

    return BannerSink()


def _tee_sink(sinks: list[Any]) -> Any:
    """A sink writing every frame to several sinks (the video and a window)."""
    from deblurrt.runtime.sinks import Sink

    class TeeSink(Sink):
        def __init__(self) -> None:
            super().__init__(sinks[0].uri)

        def _write(self, image, name) -> None:
            for sink in sinks:
                sink.write(image, name=name)
            self.stop_requested = any(sink.stop_requested for sink in sinks)

        def close(self) -> None:
            for sink in sinks:
                sink.close()

    return TeeSink()


def run(args: argparse.Namespace) -> int:
    """Resolve the model (or the untrained fallback), film the virtual camera, write the video and stats."""
    import logging

    from deblurrt.runtime.backends import normalize_backend, open_backend
    from deblurrt.runtime.pipeline import Pipeline, PipelineOptions, write_json_atomic
    from deblurrt.runtime.sinks import SinkError, display_problem, open_sink
    from deblurrt.runtime.sources import open_source

    logging.basicConfig(level=logging.WARNING, format="deblurrt demo: %(levelname)s: %(message)s")
    output = Path(args.output).expanduser()
    if output.suffix.lower() not in (".mp4", ".m4v", ".mov", ".avi"):
        raise DeblurrtError(f"--output {output} must be a video (.mp4 or .avi)")
    if args.photo is not None and not Path(args.photo).is_file():
        raise DeblurrtError(f"--photo {args.photo} does not exist. Fix: give an image file, or omit --photo for "
                            "a generated scene")
    stats_path = Path(args.stats_json) if args.stats_json else output.with_suffix(".json")
    untrained = False
    with tempfile.TemporaryDirectory(prefix="deblurrt-demo-") as temporary:
        if args.model is not None:
            model = Path(args.model).expanduser()
            if not model.is_file():
                raise DeblurrtError(f"--model {model} does not exist. Fix: give an exported .onnx/.engine or a "
                                    ".safetensors checkpoint, or omit --model for the default")
        else:
            model = default_model_path()
            if not model.is_file():
                print(f"deblurrt demo: the default trained model {model} is not there (trained weights are not "
                      f"shipped yet); exporting {FALLBACK_ARCH} with RANDOM weights so the chain runs end to end",
                      flush=True)
                model = _untrained_model(Path(temporary))
                untrained = True
                print(f"deblurrt demo: *** {BANNER} (give --model PATH for a trained one) ***", flush=True)
        backend_name = normalize_backend(args.backend) if args.backend else None
        options = {"threads": args.threads} if args.threads else {}
        backend = open_backend(model, backend_name, **options)
        try:
            photo = str(Path(args.photo).resolve()) if args.photo else ""
            width, height = args.size
            uri = (f"synthetic://{photo}?size={width}x{height}&frames={args.frames}&severity={args.severity}"
                   f"&seed={args.seed}")
            source = open_source(uri)
            try:
                sink = open_sink(str(output), fps=source.fps)
                if args.display:
                    problem = display_problem()
                    if problem:
                        print(f"deblurrt demo: no window: {problem}; writing {output} only", file=sys.stderr)
                    else:
                        try:
                            sink = _tee_sink([sink, open_sink("display://0")])
                        except SinkError as error:
                            print(f"deblurrt demo: no window: {error}", file=sys.stderr)
                if untrained:
                    sink = _banner_sink(sink, [BANNER])
                status = None if args.quiet else sys.stderr
                print(f"deblurrt demo: {args.frames} frames of a shaky virtual camera ({width}x{height}, "
                      f"{args.severity}) through {backend.describe()} -> {output}", flush=True)
                pipeline = Pipeline(source, backend, sink, PipelineOptions(
                    max_frames=args.frames, side_by_side=True, overlay=True, stats_json=stats_path, status=status))
                stats = pipeline.run()
            finally:
                source.close()
        finally:
            backend.close()
    # the pipeline wrote its statistics; add what only the demo knows (untrained fallback, the camera URI)
    stats["demo"] = {"untrained": untrained, "model": str(args.model or default_model_path()), "source": uri}
    write_json_atomic(stats_path, stats)
    psnr = stats.get("psnr_db") or {}
    print(f"deblurrt demo: wrote {output} ({stats['frames_out']} frames, {2 * width}x{height} side by side) "
          f"and {stats_path}")
    print(f"deblurrt demo: PSNR vs the sharp truth: input {psnr.get('input')} dB -> output {psnr.get('output')} dB "
          f"(gain {psnr.get('gain')} dB); {stats['fps']:.1f} FPS end to end, model {stats['model_fps'] or 0:.1f} FPS")
    if untrained:
        print(f"deblurrt demo: *** {BANNER}: these numbers measure random weights ***")
    return 0
