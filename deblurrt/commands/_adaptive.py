"""The adaptive-runtime options shared by ``run``, ``demo`` and ``bench`` (not a command of its own):
``--target-fps``, ``--scale``, ``--skip-sharp``, ``--temporal``, ``--flicker``, and the calibration that
turns a target into a model and a scale (:mod:`deblurrt.runtime.adaptive`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from deblurrt.argtypes import non_negative_int, positive_float
from deblurrt.errors import DeblurrtError


def scale_value(text: str) -> float:
    """A processing scale in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a scale in (0, 1] such as 0.5, received {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a scale in (0, 1] such as 0.5, received {text!r}")
    return value


def scale_list(text: str) -> list[float]:
    """``1,0.75,0.5`` -> ``[1.0, 0.75, 0.5]`` (each in (0, 1])."""
    values = [scale_value(item.strip()) for item in text.split(",") if item.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected scales such as 1,0.75,0.5")
    return sorted(set(values), reverse=True)


def strength(text: str) -> float:
    """A blend strength in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a strength in [0, 1) such as 0.5, received {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a strength in [0, 1) such as 0.5, received {text!r}")
    return value


#: ``--skip-threshold`` is compared with a frame's detail score (``G(half) / G(full)``, see
#: :mod:`deblurrt.runtime.blurscore`) minus the lowest score of the recent frames; the score lies in about
#: [0, 2] (2: a featureless ramp, as blurry as it gets), so a threshold outside (0, 2) gates nothing: <= 0
#: calls every frame blurry, >= 2 none
SKIP_THRESHOLD_RANGE = (0.0, 2.0)


def skip_threshold(text: str) -> float:
    """``--skip-threshold``: a level in (0, 2) (see :data:`SKIP_THRESHOLD_RANGE`)."""
    from deblurrt.runtime.blurscore import DEFAULT_THRESHOLD

    low, high = SKIP_THRESHOLD_RANGE
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low < value < high:  # NaN fails this too
        raise argparse.ArgumentTypeError(
            f"expected a threshold in ({low:g}, {high:g}) such as 0.1, received {text!r}: it is how far a frame's "
            f"blur score may rise above the sharpest of the last 30 frames before it counts as blurry (<= {low:g} "
            f"would deblur every frame, >= {high:g} none). Fix: give a value between {low:g} and {high:g} (default "
            f"{DEFAULT_THRESHOLD}): lower deblurs more frames, higher passes more through")
    return value


def add_target_arguments(parser: argparse.ArgumentParser | Any) -> None:
    """``--target-fps``, ``--scales``, ``--recalibrate`` (run, demo, bench)."""
    parser.add_argument("--target-fps", type=positive_float, default=None, metavar="N",
                        help="pick the best shipped model (by weights/validation.json; only --model's when given) "
                        "and the largest processing scale that sustain N fps here: a short calibration, cached")
    parser.add_argument("--scales", type=scale_list, default=None, metavar="S,S",
                        help="processing scales --target-fps tries (default 1,0.75,0.5,0.25)")
    parser.add_argument("--recalibrate", action="store_true",
                        help="measure again instead of using the cached calibration (~/.cache/deblurrt/target_fps.json)")


def add_adaptive_arguments(parser: argparse.ArgumentParser, *, flicker: bool = True) -> None:
    """Every adaptive option of ``run`` (``demo`` leaves out ``--flicker``)."""
    from deblurrt.runtime.blurscore import DEFAULT_THRESHOLD

    group = parser.add_argument_group("adaptive runtime")
    add_target_arguments(group)
    group.add_argument("--scale", type=scale_value, default=None, metavar="S",
                       help="process at S of the frame size (0.5: a quarter of the pixels) and add the upscaled "
                       "residual to the full frame (default 1; --target-fps chooses it)")
    group.add_argument("--skip-sharp", action="store_true",
                       help="pass frames judged sharp straight through (no inference); the stats count them")
    group.add_argument("--skip-threshold", type=skip_threshold, default=DEFAULT_THRESHOLD, metavar="T",
                       help="with --skip-sharp, a frame is deblurred when its blur score (detail: gradient of the "
                       "half-size frame over that of the frame, about 1 for a sharp photo, up to 2 blurry) exceeds "
                       "the lowest score of the last 30 frames by T or more, else it passes through; T in (0, 2), "
                       f"default {DEFAULT_THRESHOLD} (lower: more frames deblurred)")
    group.add_argument("--skip-blend", type=non_negative_int, default=3, metavar="K",
                       help="after a blurry stretch, fade back to the input over K frames (default 3; 0: switch at once)")
    group.add_argument("--temporal", type=strength, default=0.0, metavar="S",
                       help="blend the model's correction with the previous frame's along the optical flow, "
                       "strength S in [0, 1) (default 0: off)")
    if flicker:
        group.add_argument("--flicker", choices=("auto", "on", "off"), default="auto",
                           help="measure temporal flicker (warping error of inputs and outputs) into the stats: "
                           "auto = for video files")


@dataclass
class Plan:
    """What the adaptive options decided: the model file, the processing scale, and the stats to add."""

    model: str
    scale: float
    extra_stats: dict[str, Any]
    message: str | None = None


def weights_dir() -> Path:
    """The repository's ``weights/`` (shipped models and ``validation.json``)."""
    from deblurrt.commands.run import repository_root

    return repository_root() / "weights"


def candidate_models(model: str | None) -> list[str]:
    """``--model`` alone when given (only its scale is chosen), else every shipped ``weights/*.onnx``."""
    from deblurrt.commands.run import lookup_model, shipped_models

    if model is not None:
        return [lookup_model(model)]
    shipped = [str(path) for path in shipped_models().values()]
    if not shipped:
        raise DeblurrtError(f"--target-fps chooses among the models shipped in {weights_dir()}, and there are none. "
                            "Fix: give --model PATH (its processing scale is then chosen)")
    return shipped


def calibrate(models: list[str], frame: np.ndarray, target_fps: float, *, backend: str | None,
              options: dict[str, Any], scales: list[float] | None, recalibrate: bool, exhaustive: bool = False,
              status: TextIO | None = sys.stderr, command: str = "run") -> tuple[Any, list[Any]]:
    """Measure (or read from the cache) the candidates and choose; prints progress and the choice to
    ``status``. Returns ``(choice, candidates)``."""
    from deblurrt.runtime.adaptive import (
        SCALES,
        CalibrationCache,
        candidates_for,
        choose,
        file_sha256,
        load_validation_table,
        measure_candidate,
    )
    from deblurrt.runtime.backends import backend_for_path, open_backend

    hashes = {path: file_sha256(path) for path in models}
    table = load_validation_table(weights_dir() / "validation.json")
    candidates = candidates_for(models, table, scales or SCALES, hashes=hashes)
    cache = CalibrationCache()
    height, width = frame.shape[:2]
    opened: dict[str, Any] = {}
    counter = {"n": 0}

    def say(text: str) -> None:
        if status is not None:
            print(f"deblurrt {command}: {text}", file=status, flush=True)

    def measure(candidate):
        counter["n"] += 1
        setup = {"backend": backend or backend_for_path(candidate.path),
                 "options": {k: v for k, v in sorted(options.items()) if v is not None}}
        key = cache.key(setup, hashes[candidate.path], (width, height), candidate.scale)
        cached = None if recalibrate else cache.get(key)
        if cached is not None:
            say(f"calibration [{counter['n']}/{len(candidates)}] {candidate.label}: {cached.fps:.1f} fps (cached)")
            return cached
        if candidate.path not in opened:
            opened[candidate.path] = open_backend(candidate.path, backend, **options)
        measurement = measure_candidate(opened[candidate.path], candidate.scale, frame)
        cache.put(key, measurement, {"model": candidate.model, "size": [width, height], "scale": candidate.scale,
                                     "setup": setup})
        say(f"calibration [{counter['n']}/{len(candidates)}] {candidate.label} "
            f"({measurement.processing_size[0]}x{measurement.processing_size[1]}): {measurement.fps:.1f} fps "
            f"({measurement.mean_ms:.1f} ms/frame)")
        return measurement

    say(f"calibrating for --target-fps {target_fps:g} on {width}x{height} frames: {len(candidates)} candidates "
        f"(model x scale), best first; measurements cached in {cache.path}")
    try:
        choice = choose(candidates, measure, target_fps, exhaustive=exhaustive)
    finally:
        for opened_backend in opened.values():
            opened_backend.close()
    # the choice is printed even with --quiet: it decides what runs
    print(f"deblurrt {command}: {choice.message}", file=status or sys.stderr, flush=True)
    return choice, candidates


def plan(args: argparse.Namespace, model: str, model_given: str | None, frame_of: Any, *, backend: str | None,
         options: dict[str, Any], status: TextIO | None, command: str = "run") -> Plan:
    """Resolve ``--target-fps`` / ``--scale`` into a model and a scale. ``model`` is the resolved model (used
    as it is without a target), ``model_given`` what ``--model`` said (None: choose among the shipped models).
    ``frame_of()`` gives a frame of the input's size; it is called only when calibrating."""
    target = getattr(args, "target_fps", None)
    if target is None:
        return Plan(model, args.scale or 1.0, {"target_fps": None, "chosen": None})
    if args.scale is not None:
        raise DeblurrtError("--scale and --target-fps both set the processing scale. Fix: drop --scale (the "
                            "calibration chooses it) or drop --target-fps")
    models = candidate_models(model_given)
    choice, _ = calibrate(models, frame_of(), target, backend=backend, options=options, scales=args.scales,
                          recalibrate=args.recalibrate, status=status, command=command)
    return Plan(choice.candidate.path, choice.candidate.scale, {"target_fps": target, "chosen": choice.stats()},
                choice.message)


def sample_frame(source: Any, timeout: float = 10.0) -> np.ndarray:
    """A frame of the source's size for calibration, without consuming a file source's frames: the first
    image of a folder, the first frame of a video (a second reader), frame 0 of synthetic://; a live source
    gives its next frame (lost to the stream, which drops frames anyway)."""
    import cv2

    from deblurrt.runtime.sources import ImageFilesSource, SyntheticSource, VideoFileSource, normalize_image

    if isinstance(source, SyntheticSource):
        return source.camera.render(0)[0]
    if isinstance(source, ImageFilesSource):
        for path in source.paths:
            image = normalize_image(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
            if image is not None:
                return image
    if isinstance(source, VideoFileSource):
        capture = cv2.VideoCapture(str(source.path), cv2.CAP_FFMPEG)
        try:
            ok, image = capture.read()
        finally:
            capture.release()
        image = normalize_image(image) if ok else None
        if image is not None:
            return image
    if source.live:
        frame = source.read(timeout=timeout)
        if frame is not None:
            return frame.image
    raise DeblurrtError(f"--target-fps needs one frame of {source.uri} to calibrate on, and none could be read. "
                        "Fix: check the input plays, or drop --target-fps and pick --model/--scale yourself")


def pipeline_options(args: argparse.Namespace, source: Any, adaptive: Plan) -> dict[str, Any]:
    """The :class:`~deblurrt.runtime.pipeline.PipelineOptions` fields of the adaptive options."""
    from deblurrt.runtime.sources import VideoFileSource

    mode = getattr(args, "flicker", "off")
    flicker = mode == "on" or (mode == "auto" and isinstance(source, VideoFileSource))
    return {"scale": adaptive.scale, "skip_threshold": args.skip_threshold if args.skip_sharp else None,
            "skip_blend": args.skip_blend, "temporal": args.temporal, "flicker": flicker,
            "extra_stats": adaptive.extra_stats}


def bench_target(args: argparse.Namespace) -> int:
    """``deblurrt bench --target-fps N``: measure every candidate (model x scale) at each ``--size`` and print
    the table behind the choice ``run --target-fps N`` would make (measurements go to the shared cache)."""
    from deblurrt.commands.run import lookup_model
    from deblurrt.runtime.adaptive import format_table
    from deblurrt.runtime.backends import normalize_backend
    from deblurrt.runtime.synthetic import SyntheticCamera, parse_synthetic_uri

    backends = args.backend or []
    if len(set(backends)) > 1:
        raise DeblurrtError(f"--target-fps calibrates one backend, received {', '.join(backends)}. Fix: give one "
                            "--backend")
    backend = normalize_backend(backends[0]) if backends else None
    models = [lookup_model(m) for m in args.models] if args.models else candidate_models(None)
    missing = [m for m in models if not Path(m).is_file()]
    if missing:
        raise DeblurrtError(f"--target-fps measures model files, and {', '.join(missing)} is not one. Fix: give "
                            ".onnx/.engine files or shipped names (registered names with random weights say nothing "
                            "about quality)")
    options = {"threads": args.threads, "providers": args.providers}
    if backend == "tensorrt" or all(m.lower().endswith((".engine", ".plan", ".trt")) for m in models):
        options = {}
    options = {k: v for k, v in options.items() if v is not None}
    status = None if args.quiet else sys.stderr
    tables = []
    for height, width in args.size or [(360, 640)]:
        frame = SyntheticCamera(parse_synthetic_uri(f"synthetic://?size={width}x{height}")).render(0)[0]
        choice, candidates = calibrate(models, frame, args.target_fps, backend=backend, options=options,
                                       scales=args.scales, recalibrate=args.recalibrate, exhaustive=True,
                                       status=status, command="bench")
        tables.append(f"### --target-fps {args.target_fps:g} at {width}x{height}\n\n"
                      f"{format_table(choice, candidates)}\n{choice.message}\n")
    text = "\n".join(tables)
    print(text, end="")
    if args.md is not None:
        Path(args.md).write_text(text)
        print(f"deblurrt bench: wrote {args.md}", file=sys.stderr)
    return 0


def eval_video(args: argparse.Namespace, backend: Any) -> int:
    """``deblurrt eval MODEL --data clip.mp4``: no-reference sharpness and flicker per frame (see
    :mod:`deblurrt.runtime.video_eval`); prints the table and a summary, writes ``--json``."""
    from tqdm import tqdm

    from deblurrt.runtime.evaluate import format_table
    from deblurrt.runtime.pipeline import write_json_atomic
    from deblurrt.runtime.video_eval import evaluate_video

    if args.save:
        raise DeblurrtError("--save writes images of image inputs; for a video use 'deblurrt run clip.mp4 out.mp4 "
                            "--model M' (same frame code)")
    if not args.quiet:
        print(f"deblurrt eval: video {args.data}, no sharp reference: sharpness and flicker, with "
              f"{backend.describe()}", file=sys.stderr, flush=True)
    with tqdm(unit="frame", file=sys.stderr, disable=True if args.quiet else None, dynamic_ncols=True) as bar:
        report = evaluate_video(backend, args.data, limit=args.limit, scale=args.scale, temporal=args.temporal,
                                on_frame=lambda _result: bar.update(1))
    if args.json:
        write_json_atomic(args.json, report)
    if not args.quiet:
        print(format_table(report))
    flicker = report["flicker"]
    flicker_text = ("flicker n/a (fewer than 2 frames)" if flicker is None else
                    f"flicker (warping error, 8-bit levels) input {flicker['input']:.3f} -> output "
                    f"{flicker['output']:.3f} (x{flicker['ratio'] or float('nan'):.3f}, {flicker['pairs']} pairs, "
                    f"{flicker['valid']:.0%} of pixels flow-consistent)")
    sharp = report["sharpness"]
    print(f"deblurrt eval: {report['n']} frames, no sharp reference; sharpness {sharp['input'] or 0:.2f} -> "
          f"{sharp['output'] or 0:.2f} (x{sharp['ratio'] or float('nan'):.3f}); {flicker_text}"
          + (f"; report {args.json}" if args.json else ""))
    return 0
