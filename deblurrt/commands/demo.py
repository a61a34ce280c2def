"""The default job, on any machine and with no files: a shaky virtual camera -> the model -> a video.

A photo shipped in the repository (assets/coffee.png, CC0; see assets/README.md) is filmed by a virtual
camera that shakes during every exposure (synthetic://, with the sharp truth of each frame). The photo is
600x400: the camera upscales it (bicubic, aspect kept) to cover the frame plus the shake margin and says so.
Where the photo is absent (an install without the repository) a generated scene is filmed instead, and the
demo says so; --photo films another picture, --procedural the generated scene. Each frame goes through the
model exactly as in 'deblurrt run'.

Written under --out-dir (default runs/demo/):
  demo.mp4                    blurry | deblurred side by side, with FPS, latency and live PSNR in/out drawn on it
  stats.json                  FPS, per-stage latency (p50/p90/p99), PSNR in/out vs the truth, what ran
  frame_0010.png, ...         a few side-by-side frames as PNG (--png-frames, default 10,60,110)
At the end a summary block on stdout: FPS, per-stage latency and the live PSNR of input vs output.

The model: --model, else the default model shipped in the repository, weights/unet_nano_prior.onnx
(DEBLURRT_DEMO_MODEL, then DEBLURRT_DEFAULT_MODEL override it). Until those weights exist, the demo says so
and, when torch and onnx are installed, exports unet_nano_prior with RANDOM weights into a temporary folder
so that the whole chain still runs: its output is NOT deblurred (the video, the PNGs and stdout carry a
banner saying so). Without torch/onnx it stops and says what to install.

The virtual camera runs at its frame rate (30 fps), like a real one: it keeps only its newest frame, and a
frame the model could not take in time is dropped and counted. So the FPS shown is what the machine keeps
up with, and the latency is a camera's. On the video's overlay and in the summary:
  FPS            frames written per second (at most the camera's 30)
  latency / e2e  from the moment the camera delivered a frame to the moment it was written: every stage's
                 work plus the wait for a free stage (at most about one frame per stage, newest-frame only)
  infer          the model alone for one frame (what 'deblurrt bench' measures)
  capture, pre, post, write   rendering the frame, converting it for the model, back to 8 bits, encoding it
--no-pace reads the camera as fast as it renders instead (every frame, none dropped, a fixed frame count):
its end-to-end latency then includes the time each frame waits behind the earlier ones, not a camera's.

Headless by default; --display also shows a window where OpenCV has a GUI ('make gui') and a display.
demo.mp4, stats.json and the PNG frames of an earlier demo in the same --out-dir are replaced (it is the
demo's own folder); the files it writes are checked before the model is loaded, and may not be the photo
or the model.

examples:
  deblurrt demo                                   120 frames at 640x360 -> runs/demo/ (demo.mp4, stats.json, PNGs)
  deblurrt demo --model unet_small_prior --frames 300 --severity severe   a shipped model by name
  deblurrt demo --photo street.jpg --size 1280x720 --out-dir runs/street
  deblurrt demo --procedural --out-dir /tmp/demo  a generated scene instead of the photo
  deblurrt demo --model m.engine --display        TensorRT, and a window
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from deblurrt.argtypes import frame_size, positive_int
from deblurrt.commands.run import DEFAULT_MODEL, lookup_model, repository_root
from deblurrt.commands.run import default_model_path as _run_default_model
from deblurrt.errors import DeblurrtError

#: the scene filmed by default, relative to the repository root (CC0, see assets/README.md)
DEFAULT_PHOTO = "assets/coffee.png"
DEFAULT_OUT_DIR = "runs/demo"
DEFAULT_PNG_FRAMES = "10,60,110"
FALLBACK_ARCH = "unet_nano_prior"
BANNER = "UNTRAINED weights: output is not deblurred"






def _frame_list(text: str) -> list[int]:
    """``10,60,110`` -> ``[10, 60, 110]``; ``none`` or empty -> ``[]``."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frame numbers such as 10,60,110, received {text!r}") from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"frame numbers start at 0, received {text!r}")
    return values


def default_model_path() -> Path:
    """The shipped default model: ``weights/unet_nano_prior.onnx`` at the repository root (the folder that
    holds the ``deblurrt`` package). ``DEBLURRT_DEMO_MODEL`` overrides it, then ``DEBLURRT_DEFAULT_MODEL``
    (the override ``deblurrt run`` honours too)."""
    override = os.environ.get("DEBLURRT_DEMO_MODEL")
    if override:
        return Path(override).expanduser()
    return _run_default_model()


def default_photo_path() -> Path:
    """The photo filmed by default: ``assets/coffee.png`` of the repository (``DEBLURRT_DEMO_PHOTO``
    overrides it). It may be absent (a wheel install without the repository): the demo then films a
    generated scene."""
    override = os.environ.get("DEBLURRT_DEMO_PHOTO")
    if override:
        return Path(override).expanduser()
    return repository_root() / DEFAULT_PHOTO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt demo``."""
    parser.add_argument("--model", default=None, metavar="PATH",
                        help=f"model (.onnx, .engine, .safetensors); default: {DEFAULT_MODEL} of the repository")
    parser.add_argument("--out-dir", default=DEFAULT_OUT_DIR, metavar="DIR",
                        help=f"where demo.mp4, stats.json and the PNG frames go (default {DEFAULT_OUT_DIR}/)")
    parser.add_argument("--output", default=None, metavar="VIDEO",
                        help="the video's path (default: OUT_DIR/demo.mp4)")
    parser.add_argument("--stats-json", default=None, metavar="FILE",
                        help="the statistics file's path (default: OUT_DIR/stats.json)")
    parser.add_argument("--png-frames", type=_frame_list, default=DEFAULT_PNG_FRAMES, metavar="LIST",
                        help=f"frames saved as side-by-side PNGs in OUT_DIR (default {DEFAULT_PNG_FRAMES}; those "
                        "past --frames are skipped, and the last frame is saved when none fits; 'none': no PNG)")
    parser.add_argument("--frames", type=positive_int, default=120, metavar="N", help="frames (default 120)")
    parser.add_argument("--size", type=frame_size, default=(640, 360), metavar="WxH", help="frame size (default 640x360)")
    scene = parser.add_mutually_exclusive_group()
    scene.add_argument("--photo", default=None, metavar="PATH",
                       help=f"film this photo (default: {DEFAULT_PHOTO} of the repository, a CC0 photo)")
    scene.add_argument("--procedural", action="store_true", help="film a generated scene instead of a photo")
    parser.add_argument("--severity", choices=["mild", "moderate", "severe"], default="moderate",
                        help="camera shake (default moderate)")
    parser.add_argument("--seed", type=int, default=0, help="scene and shake seed (default 0)")
    parser.add_argument("--backend", choices=["ort", "trt", "torch"], default=None,
                        help="force a backend (default: from the model's suffix)")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="inference threads (ONNX Runtime / torch); default: all cores")
    parser.add_argument("--display", action="store_true", help="also show a window (where OpenCV can)")
    parser.add_argument("--no-pace", action="store_true",
                        help="read the virtual camera as fast as it renders (every frame, none dropped) instead of "
                        "at 30 fps like a camera; the latency then includes queueing")
    parser.add_argument("--quiet", action="store_true", help="no status line")
    from deblurrt.commands._adaptive import add_adaptive_arguments

    add_adaptive_arguments(parser, flicker=False)


def _check_outputs(args: argparse.Namespace, out_dir: Path, output: Path, stats_path: Path,
                   photo: Path | None) -> None:
    """Before the model is loaded: the video, the stats and the PNG folder can be written, and none of them
    is the photo, the model, or another of them. The demo's own earlier outputs are replaced."""
    from deblurrt.outputs import check_output_file, check_output_folder

    protected = [photo, args.model]
    check_output_folder(out_dir, option="--out-dir", overwrite=True, protected=protected)
    check_output_file(output, option="--output", overwrite=True, protected=protected)
    check_output_file(stats_path, option="--stats-json", overwrite=True, protected=[*protected, output])


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
            "(deblurrt demo --model path/to/model.onnx), or pip install 'deblurrt[train,export]'") from error
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


def _png_sink(folder: Path, indices: set[int], written: list[Path]) -> Any:
    """A sink saving the frames whose index (in write order) is in ``indices`` as ``frame_NNNN.png``."""
    from deblurrt.runtime.evaluate import write_png_atomic
    from deblurrt.runtime.sinks import Sink

    class PngFramesSink(Sink):
        def __init__(self) -> None:
            super().__init__(str(folder))
            self.index = 0

        def _write(self, image, name) -> None:
            if self.index in indices:
                path = folder / f"frame_{self.index:04d}.png"
                write_png_atomic(path, image)
                written.append(path)
            self.index += 1

    return PngFramesSink()


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


def _scene(args: argparse.Namespace) -> tuple[Path | None, str]:
    """The photo to film (None: the generated scene) and how to describe it."""
    if args.procedural:
        return None, "a generated (procedural) scene"
    if args.photo is not None:
        photo = Path(args.photo).expanduser()
        if not photo.is_file():
            raise DeblurrtError(f"--photo {args.photo} does not exist. Fix: give an image file, or omit --photo "
                                f"for the shipped photo ({DEFAULT_PHOTO})")
        return photo, f"the photo {photo}"
    photo = default_photo_path()
    if photo.is_file():
        return photo, f"the photo {photo} (CC0, shipped in the repository)"
    print(f"deblurrt demo: the shipped photo {photo} is not there (an install without the repository?); "
          "filming a generated (procedural) scene instead", flush=True)
    return None, "a generated (procedural) scene (the shipped photo is missing)"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _summary(stats: dict[str, Any], *, backend: str, model: str, untrained: bool, scene: str, uri_text: str,
             written: list[str], paced: bool = True, fps: float = 30.0) -> str:
    """The block printed at the end: FPS, per-stage latency, live PSNR in/out, what was written."""
    latency = stats["latency_ms"]
    psnr = stats.get("psnr_db") or {}
    stages = "  ".join(f"{name} {_ms(latency[name]['p50'])}" for name in ("capture", "pre", "infer", "post", "write"))

    def db(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} dB"

    gain = psnr.get("gain")
    lines = [
        "deblurrt demo: summary",
        f"  model     {model}",
        f"  backend   {backend}",
        f"  camera    {uri_text}",
        f"  scene     {scene}",
        f"  FPS       {stats['fps']:.1f} end to end ({stats['frames_out']} frames in {stats['duration_s']:.1f} s); "
        f"model alone {stats['model_fps'] or 0:.1f} FPS",
        f"  latency   {stages} ms (p50 per stage); end to end p50 {_ms(latency['end_to_end']['p50'])} ms, "
        f"p99 {_ms(latency['end_to_end']['p99'])} ms "
        + ("(camera -> written, a camera's latency)" if paced else "(queueing included: unpaced, --no-pace)"),
        f"  pacing    {'paced at ' + format(fps, 'g') + ' fps' if paced else 'unpaced (--no-pace)'}; "
        f"{stats['dropped']} frames dropped (the newest frame is kept when the model falls behind)",
        f"  PSNR vs the sharp truth (live, {psnr.get('frames', 0)} frames): input {db(psnr.get('input'))} -> "
        f"output {db(psnr.get('output'))}" + ("" if gain is None else f" (gain {gain:+.2f} dB)"),
        f"  wrote     {', '.join(written)}",
    ]
    if untrained:
        lines.append(f"  *** {BANNER}: these numbers measure RANDOM weights, not a trained model ***")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Resolve the model (or the untrained fallback) and the scene, film the virtual camera, write the
    video, the PNG frames and the stats, print the summary."""
    import logging

    from deblurrt.commands._adaptive import pipeline_options, plan
    from deblurrt.runtime.backends import normalize_backend, open_backend
    from deblurrt.runtime.pipeline import Pipeline, PipelineOptions, write_json_atomic
    from deblurrt.runtime.sinks import SinkError, display_problem, open_sink
    from deblurrt.runtime.sources import open_source

    logging.basicConfig(level=logging.WARNING, format="deblurrt demo: %(levelname)s: %(message)s")
    # the camera's "photo upscaled" note is printed below, with the scene, rather than as a warning
    logging.getLogger("deblurrt.runtime.synthetic").setLevel(logging.ERROR)
    out_dir = Path(args.out_dir).expanduser()
    output = Path(args.output).expanduser() if args.output else out_dir / "demo.mp4"
    if output.suffix.lower() not in (".mp4", ".m4v", ".mov", ".avi"):
        raise DeblurrtError(f"--output {output} must be a video (.mp4 or .avi)")
    stats_path = Path(args.stats_json).expanduser() if args.stats_json else out_dir / "stats.json"
    photo, scene = _scene(args)
    png_indices = [i for i in args.png_frames if i < args.frames]
    if args.png_frames and not png_indices:
        png_indices = [args.frames - 1]  # a short run: its last frame
    _check_outputs(args, out_dir, output, stats_path, photo)
    for folder in {out_dir, output.parent, stats_path.parent}:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DeblurrtError(f"cannot create {folder}: {error.strerror or error}. Fix: choose a writable "
                                "--out-dir") from error
    untrained = False
    written_png: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="deblurrt-demo-") as temporary:
        if args.model is not None:
            model = Path(lookup_model(args.model)).expanduser()
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
                print(f"deblurrt demo: *** running an UNTRAINED network ({BANNER}); give --model PATH for a "
                      "trained one ***", flush=True)
        backend_name = normalize_backend(args.backend) if args.backend else None
        options = {"threads": args.threads} if args.threads else {}
        width, height = args.size
        uri = (f"synthetic://{photo.resolve() if photo else ''}?size={width}x{height}&frames={args.frames}"
               f"&severity={args.severity}&seed={args.seed}&live={0 if args.no_pace else 1}")
        adaptive = plan(args, str(model), args.model, lambda: open_source(uri).camera.render(0)[0],
                        backend=backend_name, options=options, status=None if args.quiet else sys.stderr,
                        command="demo")
        model = Path(adaptive.model)
        backend = open_backend(model, backend_name, **options)
        try:
            source = open_source(uri)
            try:
                scale_note = getattr(getattr(source, "camera", None), "scale_note", None)
                print(f"deblurrt demo: filming {scene}", flush=True)
                if scale_note:
                    print(f"deblurrt demo: {scale_note}", flush=True)
                sinks = [open_sink(str(output), fps=source.fps)]
                if png_indices:
                    sinks.append(_png_sink(out_dir, set(png_indices), written_png))
                if args.display:
                    problem = display_problem()
                    if problem:
                        print(f"deblurrt demo: no window: {problem}; writing {output} only", file=sys.stderr)
                    else:
                        try:
                            sinks.append(open_sink("display://0"))
                        except SinkError as error:
                            print(f"deblurrt demo: no window: {error}", file=sys.stderr)
                sink = sinks[0] if len(sinks) == 1 else _tee_sink(sinks)
                if untrained:
                    sink = _banner_sink(sink, [BANNER])
                status = None if args.quiet else sys.stderr
                print(f"deblurrt demo: {args.frames} frames of a shaky virtual camera ({width}x{height}, "
                      f"{args.severity}) through {backend.describe()} -> {out_dir}/", flush=True)
                pipeline = Pipeline(source, backend, sink, PipelineOptions(
                    max_frames=args.frames, side_by_side=True, overlay=True, stats_json=stats_path, status=status,
                    **pipeline_options(args, source, adaptive)))
                stats = pipeline.run()
            finally:
                source.close()
            backend_text = backend.describe()
        finally:
            backend.close()
    # the pipeline wrote its statistics; add what only the demo knows (untrained fallback, scene, files)
    model_text = (f"{FALLBACK_ARCH}, UNTRAINED: random weights (the default {default_model_path()} is missing)"
                  if untrained else str(model))
    stats["demo"] = {"untrained": untrained, "model": str(args.model or default_model_path()), "source": uri,
                     "scene": str(photo) if photo else "procedural", "scene_note": scale_note,
                     "video": str(output), "png_frames": [str(p) for p in written_png]}
    write_json_atomic(stats_path, stats)
    written = [f"{output} ({stats['frames_out']} frames, {2 * width}x{height} side by side)", str(stats_path)]
    if written_png:
        written.append(f"{len(written_png)} PNG frames ({', '.join(p.name for p in written_png)}) in {out_dir}/")
    print(_summary(stats, backend=backend_text, model=model_text, untrained=untrained, scene=scene,
                   uri_text=f"synthetic:// {width}x{height}, {args.severity} shake, seed {args.seed}",
                   written=written, paced=not args.no_pace, fps=stats["source"]["fps"] or 30.0), flush=True)
    return 0
