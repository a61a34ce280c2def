"""Deblur a camera, stream, video or image folder in real time and show or save the result.

INPUT is a URI (the same forms as jetson-inference):
  0, 1, /dev/video0        USB/V4L2 camera (newest frame only: frames the model cannot keep up with are dropped)
  csi://0                  Jetson CSI camera (needs OpenCV with GStreamer: JetPack's, not pip's)
  rtsp://user:pw@host/path network stream (rtsp, rtsps, rtmp, http(s), udp, srt); reconnects when it drops;
                           credentials never appear in logs
  'v4l2src ! ... ! appsink'  a raw GStreamer pipeline
  clip.mp4                 a video file (every frame, in order)
  frames/  'frames/*.png'  an image folder or glob (natural order; names are kept in a folder output)
  synthetic://[photo]?size=640x360&fps=30&severity=mild|moderate|severe&seed=0&frames=N&live=1
                           a shaky virtual camera with sharp truth: the stats report live PSNR in/out;
                           paced at fps like a real camera (newest frame, drops counted); live=0 gives
                           every frame as fast as it renders
                           (&bursts=0.25&burst=12: mostly sharp with blurry bursts)

OUTPUT: out.mp4 (mp4v), out.avi (MJPG), out/ (images), out.png, display://0 (a window; q quits), none,
        rtsp://server:8554/name (publish H.264 via GStreamer), or an 'appsrc ! ...' GStreamer pipeline.
        out.png holds the first frame; more frames go to out_000001.png, out_000002.png, ... next to it.
        out/ keeps the input images' names (other inputs: 000000.png, ...). A video's width and height must
        be even (its encoder's rule): an odd-sized frame is cropped by one pixel, with a warning; write
        images to keep every pixel.
Omitted: a window, or nothing with --headless. A window needs OpenCV with a GUI, which 'make setup' does
not install (it installs opencv-python-headless): run 'make gui' once (swaps in opencv-python), or write
to a file.

Outputs are never overwritten by surprise: an existing OUTPUT file (for out.png also any out_NNNNNN.png),
a non-empty OUTPUT folder or an existing --stats-json file is refused unless --overwrite is given (then files
with the same names are replaced, others in the folder are kept). Always refused: an OUTPUT that is the INPUT
(also through a symlink or ./ form) or a folder holding it; a --stats-json the run writes a frame to (an image
name inside the OUTPUT folder, or out_NNNNNN.png next to out.png); two input images of the same name into
one OUTPUT folder. Every output location is checked before the model is loaded.

A video is written under a temporary name in its folder (.NAME.tmpPID.mp4; the status line names it) and
renamed when it is complete, also when Ctrl-C or SIGTERM stops the run early, so an existing file replaced
with --overwrite survives a failed run. A run killed outright (SIGKILL, out of memory, a crash) cannot rename:
its frames stay in that hidden .NAME.tmpPID.SUFFIX file next to OUTPUT (an .avi plays what reached the disk;
an .mp4 does not, its index is written last). An OUTPUT that is a symlink is written through to its target
(the link stays). A failed write (disk full, file-size limit) stops the run with an error and removes the
temporary file (where nothing was at OUTPUT before, the frames that still play are kept there); the stats say
how many frames the output really holds (a video is read back when closed). A run that reads no frame at all
fails. Corrupt frames and a file that ends before the frame count it announces are reported on stderr and in
the stats (input.ended_early, input.missing_frames, corrupt); --strict makes them an error.

Exit codes: 0 done; 1 --strict and the input had corrupt frames or ended early (the output holds the rest);
2 bad input or output, no frame read, or a failed write; 128+N stopped by signal N (Ctrl-C: 130).

--model: an exported .onnx (ONNX Runtime), a TensorRT .engine/.plan with its .engine.json sidecar, or a
training .safetensors checkpoint (PyTorch, for reference). Omitted: the default model shipped in the
repository, weights/unet_nano_prior.onnx (next to the deblurrt package folder; the environment variable
DEBLURRT_DEFAULT_MODEL names another file). Where that file is absent (not trained yet, or an install
without the repository) 'run' stops and asks for --model.

A status line goes to stderr about once a second (frames, drops, FPS, per-stage latency). Ctrl-C or SIGTERM
stops capturing, finishes the frames in flight and closes the output, so the video is playable; a second
Ctrl-C aborts. --stats-json is written at the end of every run, interrupted ones too.

Latency (status line, --overlay, --stats-json): capture, pre, infer, post and write are each stage's own
work per frame; end to end (e2e) runs from the frame's capture to its write, queueing included. From a
camera (or the paced synthetic://) that is the delay a viewer sees; from a file, which is read as fast as
possible, frames wait behind earlier ones and e2e measures that backlog, not a camera's latency.

examples:
  deblurrt run clip.mp4 sharp.mp4                          the default model (weights/unet_nano_prior.onnx)
  deblurrt run clip.mp4 sharp.mp4 --model unet_small_prior     a shipped model by name (weights/*.onnx)
  deblurrt run clip.mp4 compare.mp4 --model m.onnx --side-by-side --overlay --stats-json stats.json
  deblurrt run 0 --model m.onnx                            USB camera to a window
  deblurrt run /dev/video1 out.avi --model m.onnx --max-frames 300
  deblurrt run csi://0 display://0 --model m.engine        Jetson CSI camera, TensorRT engine
  deblurrt run 'rtsp://user:pass@192.168.1.20:554/stream1' out.mp4 --model m.engine --cuda-graph
  deblurrt run frames/ deblurred/ --model m.onnx           image folder -> image folder, same names
  deblurrt run 'synthetic://?size=640x360&severity=severe&frames=300' --headless --model m.onnx --stats-json s.json
  deblurrt run big_4k.mp4 out.mp4 --model m.onnx --tile 512x512      frames larger than the model allows
  deblurrt run clip.mp4 none --model ckpt.safetensors --backend torch --max-frames 20   PyTorch reference

adaptive runtime:
  deblurrt run clip.mp4 out.mp4 --target-fps 30            best shipped model and scale that sustain 30 fps
                                                           here (calibrated once, cached); stats: chosen
  deblurrt run 0 --skip-sharp --overlay                    sharp frames pass through; the overlay shows the
                                                           blur score; stats: skipped_sharp
  deblurrt run clip.mp4 out.mp4 --scale 0.5 --temporal 0.5 half-resolution correction, temporal blend
  A video file's stats carry flicker {input, output}: the warping error of consecutive frames.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from deblurrt.argtypes import frame_size, positive_int
from deblurrt.errors import DeblurrtError

#: the default model, relative to the repository root (the folder holding the ``deblurrt`` package)
DEFAULT_MODEL = "weights/unet_nano_prior.onnx"


def repository_root() -> Path:
    """The folder that holds the ``deblurrt`` package: the repository checkout for an editable install (a
    wheel install gives site-packages, where ``weights/`` and ``assets/`` do not exist)."""
    import deblurrt

    return Path(deblurrt.__file__).resolve().parents[1]


def default_model_path() -> Path:
    """The shipped default model, ``weights/unet_nano_prior.onnx`` of the repository; the environment variable
    ``DEBLURRT_DEFAULT_MODEL`` overrides it. The file may not exist (not trained yet, or no repository)."""
    override = os.environ.get("DEBLURRT_DEFAULT_MODEL")
    if override:
        return Path(override).expanduser()
    return repository_root() / DEFAULT_MODEL


def shipped_models() -> dict[str, Path]:
    """The trained models shipped in the repository's ``weights/``: registry name -> ONNX file."""
    folder = repository_root() / "weights"
    return {path.stem: path for path in sorted(folder.glob("*.onnx"))} if folder.is_dir() else {}


def lookup_model(model: str) -> str:
    """``--model`` as a path, or the name of a shipped model (``unet_small_prior`` -> its ``weights/`` ONNX).

    A bare name (no suffix, no folder) that is not a file is looked up among the shipped models; an unknown
    one is an error that lists them, rather than a backend failing on a path that does not exist."""
    path = Path(model).expanduser()
    shipped = shipped_models()
    if not path.exists() and path.parent == Path(".") and path.suffix.lower() == ".onnx" and path.stem in shipped:
        # "--model unet_nano_prior.onnx" from outside weights/: the shipped file is meant, but a path is
        # relative to the working folder, so say which form works instead of "does not exist"
        # worded for every caller (run/demo --model, eval/validate's MODEL): no option name in it
        raise DeblurrtError(f"model file {model} does not exist in the working folder {Path.cwd()}. Fix: give the "
                            f"shipped model's name, {path.stem} (it is {shipped[path.stem]}), or the file's path")
    if path.exists() or path.suffix or path.parent != Path("."):
        return model
    if model in shipped:
        return str(shipped[model])
    names = ", ".join(shipped) or "none in this install"
    raise DeblurrtError(f"model '{model}' is neither a file nor a shipped model. Fix: pass a model file "
                        f"(.onnx, .engine, .safetensors) or a shipped name ({names}).")


def resolve_model(model: str | None) -> str:
    """``--model`` as a path or shipped name, else the default model; :class:`DeblurrtError` (exit 2) when
    that is missing."""
    if model is not None:
        return lookup_model(model)
    default = default_model_path()
    if not default.is_file():
        raise DeblurrtError(
            f"no --model given and the default model {default} is not there (trained default weights are not "
            "shipped yet, or this install has no repository checkout). Fix: pass --model PATH (an exported "
            ".onnx, a TensorRT .engine with its .engine.json, or a .safetensors checkpoint), or set "
            "DEBLURRT_DEFAULT_MODEL to one")
    return str(default)






def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt run``."""
    parser.add_argument("input", metavar="INPUT", help="camera index, /dev/videoN, csi://N, rtsp://..., a video, "
                        "an image folder or glob, or synthetic://")
    parser.add_argument("output", metavar="OUTPUT", nargs="?", default=None,
                        help="out.mp4, out.avi, out/, out.png, display://0 or none (default: a window, or none "
                        "with --headless)")
    parser.add_argument("--model", default=None, metavar="PATH",
                        help="model file: .onnx, .engine/.plan (with .engine.json), or .safetensors, or the name "
                        "of a model shipped in weights/ (e.g. unet_small_prior) (default: "
                        f"{DEFAULT_MODEL} of the repository, or $DEBLURRT_DEFAULT_MODEL)")
    parser.add_argument("--backend", choices=["ort", "trt", "torch"], default=None,
                        help="force a backend (default: from the model's suffix)")
    parser.add_argument("--providers", default=None, metavar="LIST",
                        help="ONNX Runtime providers in order, e.g. trt,cuda,cpu (default: cuda if available, "
                        "then cpu); unavailable ones fall back with a warning")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="inference threads (ONNX Runtime intra-op / torch); default: all cores")
    parser.add_argument("--cuda-graph", action="store_true", help="TensorRT: replay the enqueue as a CUDA graph")
    parser.add_argument("--headless", action="store_true", help="never open a window")
    parser.add_argument("--side-by-side", action="store_true", help="write input | output")
    parser.add_argument("--overlay", action="store_true", help="draw FPS and latency on the output")
    parser.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="stop after N frames")
    parser.add_argument("--stats-json", default=None, metavar="FILE",
                        help="write frames, drops, FPS and p50/p90/p99 latency per stage at the end")
    parser.add_argument("--tile", type=frame_size, default=None, metavar="WxH",
                        help="infer in overlapping tiles of this size (automatic when a frame exceeds an engine)")
    parser.add_argument("--tile-overlap", type=int, default=32, metavar="PX", help="tile overlap (default 32)")
    parser.add_argument("--camera-size", type=frame_size, default=None, metavar="WxH",
                        help="ask a USB camera for this mode")
    parser.add_argument("--camera-fps", type=float, default=None, metavar="FPS", help="ask a camera for this rate")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing OUTPUT file (and out_NNNNNN.png next to out.png) / --stats-json "
                        "file, or write into a non-empty OUTPUT folder (same names replaced, others kept); never "
                        "allowed: OUTPUT = INPUT")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when the input had corrupt frames or ended before its announced length")
    parser.add_argument("--quiet", action="store_true", help="no status line (warnings and errors still print)")
    from deblurrt.commands._adaptive import add_adaptive_arguments

    add_adaptive_arguments(parser)


def input_paths(uri: str) -> list[Path]:
    """The local files or folders INPUT reads (a file, a folder, a glob's matches, a synthetic:// photo);
    empty for cameras and streams. Outputs must not be, or contain, any of them."""
    import glob

    from deblurrt.runtime.sources import STREAM_SCHEMES

    text = str(uri).strip()
    if text.startswith("synthetic://"):
        photo = text[len("synthetic://"):].partition("?")[0]
        return [Path(photo).expanduser()] if photo else []
    if (not text or text.isdigit() or text.startswith(("/dev/video", "csi://")) or "!" in text
            or text.lower().startswith(STREAM_SCHEMES)):
        return []
    text = text.removeprefix("file://")
    path = Path(text).expanduser()
    if path.exists():
        return [path]
    if any(ch in text for ch in "*?["):
        return [Path(match) for match in glob.glob(os.path.expanduser(text))]
    return []


def input_images(uri: str) -> list[Path]:
    """The image files INPUT reads when it is an image folder, a glob or one image (the selection
    :func:`~deblurrt.runtime.sources.open_source` makes); empty for videos, cameras, streams and synthetic://."""
    from deblurrt.runtime.sources import image_files

    text = str(uri).strip()
    if text.startswith("synthetic://") or not input_paths(text):  # input_paths sorts out cameras and streams
        return []
    return image_files(text.removeprefix("file://")) or []


def _check_folder_names(args: argparse.Namespace, output: str) -> None:
    """Refuse input images that would be written under the same name in the OUTPUT folder (``x1/a.png`` and
    ``x2/a.png`` from a glob): the second would replace the first."""
    from deblurrt.outputs import OutputError
    from deblurrt.runtime.sinks import folder_image_name

    sources: dict[str, list[Path]] = {}
    for index, path in enumerate(input_images(args.input)):
        sources.setdefault(folder_image_name(path.name, index), []).append(path)
    clashes = {name: paths for name, paths in sources.items() if len(paths) > 1}
    if clashes:
        name, paths = next(iter(clashes.items()))
        more = f" (and {len(clashes) - 1} more name(s))" if len(clashes) > 1 else ""
        raise OutputError(f"INPUT {args.input} has {len(paths)} images that would all be written as "
                          f"{Path(output) / name} ({', '.join(map(str, paths))}){more}: each would replace the one "
                          "before. Fix: rename them apart, narrow INPUT to one folder, or run each folder into its "
                          "own OUTPUT folder")


def _check_stats_not_a_frame(args: argparse.Namespace, output: str, kind: str) -> None:
    """Refuse a ``--stats-json`` that the run would also write a frame to (it would replace the frame, or the
    frame would replace it): an image name directly inside a folder OUTPUT, or ``STEM_NNNNNN.SUFFIX`` next to
    an image OUTPUT ``STEM.SUFFIX``. ``--overwrite`` does not allow it: both are this run's outputs."""
    from deblurrt.outputs import OutputError
    from deblurrt.runtime.sinks import is_numbered_image_name
    from deblurrt.runtime.sources import IMAGE_SUFFIXES

    stats = Path(os.path.expanduser(args.stats_json))
    target = Path(os.path.expanduser(output))
    stats_folder, output_folder = Path(os.path.realpath(stats.parent)), Path(os.path.realpath(target))
    if kind == "folder" and stats_folder == output_folder and stats.suffix.lower() in IMAGE_SUFFIXES:
        raise OutputError(f"--stats-json {stats} is an image name inside the OUTPUT folder {target}, where this run "
                          "writes its frames: a frame of that name and the statistics would replace each other. "
                          f"Fix: give --stats-json a .json name (e.g. {target / 'stats.json'}) or a path outside "
                          f"{target}")
    if (kind == "image" and stats_folder == Path(os.path.realpath(target.parent))
            and is_numbered_image_name(target, stats.name)):
        raise OutputError(f"--stats-json {stats} is a name this run writes a frame to: OUTPUT {target} holds the "
                          f"first frame and the next ones go to {target.stem}_000001{target.suffix}, ... Fix: give "
                          "--stats-json a .json name (e.g. stats.json)")


def check_outputs(args: argparse.Namespace, output: str) -> None:
    """Refuse, before any slow work, outputs that would destroy the input or an earlier output, or that
    cannot be written (see :mod:`deblurrt.outputs`): also the numbered ``out_NNNNNN.png`` files an image
    OUTPUT writes after its first frame, two input images that would get one name in a folder OUTPUT, and a
    ``--stats-json`` the run would also write a frame to."""
    from deblurrt.outputs import OutputError, check_output_file, check_output_folder
    from deblurrt.runtime.sinks import numbered_image_files, numbered_image_path, output_kind

    inputs = input_paths(args.input)
    kind = output_kind(output)
    if kind in ("video", "image"):
        check_output_file(output, option="OUTPUT", overwrite=args.overwrite, inputs=inputs, protected=[args.model])
    elif kind == "folder":
        check_output_folder(output, option="OUTPUT", overwrite=args.overwrite, inputs=inputs,
                            protected=[args.model])
        _check_folder_names(args, output)
    if kind == "image" and not args.overwrite:
        # one input image gives one frame; anything else may give more, written as OUT_000001.png, ...
        # (synthetic://photo.png renders many frames from its photo: input_images() leaves it out)
        single = len(input_images(args.input)) == 1
        target = Path(os.path.expanduser(output))
        existing = [] if single else numbered_image_files(target)
        if existing:
            shown = ", ".join(str(p) for p in existing[:3]) + (", ..." if len(existing) > 3 else "")
            raise OutputError(f"OUTPUT {output}: frames after the first are written as "
                              f"{numbered_image_path(target, 1).name}, {numbered_image_path(target, 2).name}, ..., "
                              f"and {len(existing)} such file(s) already exist ({shown}). Fix: choose another name, "
                              "or add --overwrite to replace them")
    if args.stats_json:
        earlier = output if kind in ("video", "image", "folder") else None
        check_output_file(args.stats_json, option="--stats-json", overwrite=args.overwrite, inputs=inputs,
                          protected=[args.model, earlier])
        _check_stats_not_a_frame(args, output, kind)


def input_problems(stats: dict) -> str | None:
    """What went wrong with the input (corrupt frames, a file that ended early), in words, or None."""
    problems = []
    source = stats.get("input") or {}
    if source.get("ended_early"):
        expected = source.get("expected_frames")
        problems.append(f"it ended early: {stats['frames_in']} of the {expected} frames it announces could be "
                        f"decoded, {source.get('missing_frames', 0)} are missing (a truncated or damaged file)")
    if stats.get("corrupt"):
        problems.append(f"{stats['corrupt']} corrupt frame(s) or unreadable file(s) were skipped")
    return "; ".join(problems) or None


def run(args: argparse.Namespace) -> int:
    """Open the model, source and sink, run the pipeline, report. Exit 128+signal when stopped by a signal."""
    from deblurrt.commands._adaptive import pipeline_options, plan, sample_frame
    from deblurrt.errors import IncompleteInputError
    from deblurrt.runtime.backends import normalize_backend, open_backend
    from deblurrt.runtime.pipeline import Pipeline, PipelineOptions
    from deblurrt.runtime.sinks import open_sink
    from deblurrt.runtime.sources import open_source, redact

    logging.basicConfig(level=logging.WARNING, format="deblurrt run: %(levelname)s: %(message)s")
    output = args.output
    if output is None:
        output = "none" if args.headless else "display://0"
    if args.tile_overlap < 0:
        raise DeblurrtError(f"--tile-overlap must be >= 0, received {args.tile_overlap}")
    model_given = args.model
    # --target-fps without --model chooses among the shipped ONNX models: no default model needed
    args.model = resolve_model(args.model) if args.target_fps is None or model_given else "shipped.onnx"
    check_outputs(args, output)
    backend_name = normalize_backend(args.backend) if args.backend else None
    options = {"threads": args.threads}
    if backend_name in (None, "onnxruntime") and args.model.lower().endswith(".onnx"):
        options["providers"] = args.providers
    elif args.providers:
        raise DeblurrtError("--providers applies to ONNX Runtime (.onnx models) only")
    if args.cuda_graph:
        options["cuda_graph"] = True
    options = {k: v for k, v in options.items() if v is not None}
    if backend_name == "tensorrt" or args.model.lower().endswith((".engine", ".plan", ".trt")):
        options.pop("threads", None)  # TensorRT has no thread setting

    source = open_source(args.input, size=args.camera_size, fps=args.camera_fps)
    try:
        status = None if args.quiet else sys.stderr
        adaptive = plan(args, args.model, model_given, lambda: sample_frame(source), backend=backend_name,
                        options=options, status=status)
        args.model = adaptive.model
        backend = open_backend(args.model, backend_name, **options)
        try:
            sink = open_sink(output, fps=source.fps, headless=args.headless, overwrite=args.overwrite)
            if status is not None:
                temporary = getattr(sink, "temporary", None)  # a video file: where it is until complete
                written_as = f" (written as {temporary} until complete)" if temporary else ""
                print(f"deblurrt run: {redact(args.input)} -> {output}{written_as} with {backend.describe()}",
                      file=status, flush=True)
            tile = (args.tile[1], args.tile[0]) if args.tile else None
            pipeline = Pipeline(source, backend, sink, PipelineOptions(
                max_frames=args.max_frames, side_by_side=args.side_by_side, overlay=args.overlay,
                stats_json=args.stats_json, status=status, tile=tile, overlap=args.tile_overlap,
                **pipeline_options(args, source, adaptive)))
            stats = pipeline.run()
        finally:
            backend.close()
    finally:
        source.close()
    if pipeline.stopped_by in ("SIGINT", "SIGTERM"):
        return 128 + int(getattr(signal, pipeline.stopped_by))
    problems = input_problems(stats)
    if stats["frames_out"] == 0 and pipeline.stopped_by == "end of input":
        detail = f": {problems}" if problems else ""
        raise DeblurrtError(f"no frame could be read from {redact(args.input)}{detail}; nothing was written. "
                            "Fix: check that the input plays or opens (ffprobe, an image viewer)")
    if problems:
        message = f"the input {redact(args.input)} had problems: {problems}"
        if args.strict:
            raise IncompleteInputError(f"{message}; the output holds the {stats['frames_out']} good frames "
                                       "(--strict makes this an error)")
        print(f"deblurrt run: warning: {message}", file=sys.stderr, flush=True)
    return 0
