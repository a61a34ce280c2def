"""Measurements behind the adaptive runtime's README section (issue 14), each part a Markdown table.

  skip      --skip-sharp on a mostly-sharp synthetic stream with blurry bursts (every frame labelled, sharp
            truth): model runs, inference time saved, PSNR vs the truth (all / blurry / sharp frames) against
            always-on, with and without the fade-out (--skip-blend).
  flicker   the warping error of inputs and outputs (deblurrt.runtime.flicker) for each model on the shared
            real videos, without and with the temporal blend (--temporal).
  temporal  the temporal blend on synthetic shaky streams with truth: PSNR and flicker, off vs on.

The pipeline runs in-process exactly as `deblurrt run` does (Pipeline + the runtime's adapters). Times are
ratios within one run of this script: absolute milliseconds depend on the machine and its load.

usage: python scripts/adaptive_report.py skip flicker temporal [--models unet_nano_prior unet_small_prior]
       [--data ../shared/data] [--frames 240] [--video-frames 60] [--threads 2] [--md out.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from deblurrt.metrics import psnr
from deblurrt.runtime.backends import open_backend
from deblurrt.runtime.flicker import FlickerMeter
from deblurrt.runtime.pipeline import Pipeline, PipelineOptions
from deblurrt.runtime.sinks import NullSink
from deblurrt.runtime.sources import open_source

REPO = Path(__file__).resolve().parents[1]


class Scored(NullSink):
    """Keeps per-frame PSNR vs the truth (the pipeline's sink sees the written frame only, so the source's
    frames are looked up by index)."""

    def __init__(self, source):
        super().__init__("scored")
        self.source, self.index, self.rows = source, 0, []
        self.meter = FlickerMeter()
        self.truth_meter = FlickerMeter()

    def _write(self, image, name):
        blurry, truth = self.source.camera.render(self.index)
        self.rows.append((self.source.options.is_blurry(self.index), psnr(image[..., ::-1], truth[..., ::-1]),
                          psnr(blurry[..., ::-1], truth[..., ::-1])))
        self.meter.add(blurry, image)
        self.truth_meter.add(blurry, truth)
        self.index += 1


def run_stream(model: Path, uri: str, threads: int | None, **options) -> dict:
    """One pipeline run over a synthetic stream; per-frame PSNR split by label, model calls and times."""
    backend = open_backend(model, **({"threads": threads} if threads else {}))
    calls = {"n": 0, "s": 0.0}
    infer = backend.infer

    def counted(batch):
        start = time.perf_counter()
        try:
            return infer(batch)
        finally:
            calls["n"] += 1
            calls["s"] += time.perf_counter() - start

    backend.infer = counted  # type: ignore[method-assign]
    try:
        source = open_source(uri)
        sink = Scored(source)
        stats = Pipeline(source, backend, sink, PipelineOptions(status=None, handle_signals=False, **options)).run()
    finally:
        backend.close()
    rows = np.array(sink.rows, dtype=np.float64)
    labels = rows[:, 0].astype(bool)
    return {"frames": len(rows), "calls": calls["n"], "infer_s": calls["s"], "wall_s": stats["duration_s"],
            "fps": stats["fps"], "skipped": stats["skipped_sharp"],
            "psnr_all": stream_psnr(rows[:, 1]), "psnr_blurry": stream_psnr(rows[labels, 1]),
            "psnr_sharp": stream_psnr(rows[~labels, 1]), "exact_sharp": float(np.mean(np.isinf(rows[~labels, 1])))
            if (~labels).any() else 0.0, "input_psnr_all": stream_psnr(rows[:, 2]),
            "input_psnr_blurry": stream_psnr(rows[labels, 2]),
            "psnr_mean": float(np.mean(rows[np.isfinite(rows[:, 1]), 1])),
            "flicker": sink.meter.result(), "truth_flicker": sink.truth_meter.result()}


def stream_psnr(values: np.ndarray) -> float:
    """The PSNR of the frames' mean squared error (a stream PSNR: bit-exact frames count as error 0, so they
    need no cap), from per-frame PSNRs."""
    if values.size == 0:
        return float("nan")
    finite = np.where(np.isinf(values), 0.0, values)  # (inf: bit-exact; replaced before the power)
    mse = np.where(np.isinf(values), 0.0, 255.0 ** 2 / 10 ** (finite / 10))
    mean = float(mse.mean())
    return float("inf") if mean == 0 else 10 * np.log10(255.0 ** 2 / mean)


def cpu_costs(model: Path, threads: int | None, size=(640, 360), repeats: int = 8) -> tuple[float, float]:
    """CPU milliseconds (all threads of this process) per model inference and per blur score of a frame, in
    a quiet loop: what --skip-sharp saves and spends, independent of how busy the machine is."""
    from deblurrt.runtime.adaptive import adapter_for
    from deblurrt.runtime.blurscore import BlurScorer
    from deblurrt.runtime.synthetic import SyntheticCamera, parse_synthetic_uri

    frame = SyntheticCamera(parse_synthetic_uri(f"synthetic://?size={size[0]}x{size[1]}")).render(0)[0]
    backend = open_backend(model, **({"threads": threads} if threads else {}))
    try:
        adapter = adapter_for(backend)
        prepared = adapter.prepare(frame)
        backend.infer(prepared.batch)  # warm-up
        start = time.process_time()
        for _ in range(repeats):
            backend.infer(prepared.batch)
        infer_ms = (time.process_time() - start) * 1e3 / repeats
    finally:
        backend.close()
    scorer = BlurScorer()
    start = time.process_time()
    for _ in range(repeats * 4):
        scorer.level(frame)
    return infer_ms, (time.process_time() - start) * 1e3 / (repeats * 4)


def part_skip(args) -> str:
    photo = _photo(args)
    uri = (f"synthetic://{photo or ''}?size=640x360&frames={args.frames}&bursts=0.25&burst=12&live=0"
           f"&severity={args.severity}")
    lines = [f"--skip-sharp on `{uri.replace(str(photo), photo.name) if photo else uri}` (25% of frames in blurry "
             "bursts of 12); PSNR vs the sharp truth in dB, of the mean squared error over the frames (a sharp "
             "frame passed through is exact: error 0)", "",
             "| model | mode | model runs | skipped | CPU saved | PSNR all | "
             "PSNR blurry frames | PSNR sharp frames | sharp frames exact |", "|---|---|---|---|---|---|---|---|---|"]
    costs = {}
    for model in args.models:
        infer_ms, score_ms = costs[model.stem] = cpu_costs(model, args.threads)
        base = None
        for label, options in (("always-on", {}), ("--skip-sharp --skip-blend 0", {"skip_threshold": args.threshold,
                                                                                  "skip_blend": 0}),
                               ("--skip-sharp (blend 3)", {"skip_threshold": args.threshold, "skip_blend": 3})):
            result = run_stream(model, uri, args.threads, **options)
            base = base or result
            # CPU per frame: the model where it ran, plus the blur score on every frame when gating
            spent = result["calls"] * infer_ms + (result["frames"] * score_ms if options else 0.0)
            saved = 1.0 - spent / (result["frames"] * infer_ms)
            lines.append(f"| {model.stem} | {label} | {result['calls']}/{result['frames']} | {result['skipped']} | "
                         f"{saved:.0%} | {result['psnr_all']:.2f} | "
                         f"{result['psnr_blurry']:.2f} | {result['psnr_sharp']:.2f} | {result['exact_sharp']:.0%} |")
            print(lines[-1], file=sys.stderr, flush=True)
        lines.append(f"| input | no model | | | | {base['input_psnr_all']:.2f} | {base['input_psnr_blurry']:.2f} "
                     "| inf | 100% |")
    lines.append("")
    lines += [f"CPU per 640x360 frame (process time, all threads, quiet loop): {name} inference {i:.1f} ms, blur "
              f"score {s:.2f} ms" for name, (i, s) in costs.items()]
    return "\n".join(lines) + "\n"


def part_flicker(args) -> str:
    from deblurrt.runtime.video_eval import evaluate_video

    videos = [p for p in (args.data / "real" / "video_car" / "car_blur_1280x720.mp4",
                          args.data / "real" / "vtest_static_camera.avi") if p.is_file()]
    lines = [f"warping error (8-bit levels, mean over flow-consistent pixels at 480 px wide), first "
             f"{args.video_frames} frames", "",
             "| video | model | temporal | flicker input | flicker output | output / input | consistent px | "
             "sharpness ratio |", "|---|---|---|---|---|---|---|---|"]
    for video in videos:
        for model in args.models:
            backend = open_backend(model, **({"threads": args.threads} if args.threads else {}))
            try:
                for temporal in (0.0, args.temporal):
                    report = evaluate_video(backend, video, limit=args.video_frames, temporal=temporal)
                    f = report["flicker"]
                    lines.append(f"| {video.name} | {model.stem} | {temporal:g} | {f['input']:.3f} | "
                                 f"{f['output']:.3f} | x{f['ratio']:.3f} | {f['valid']:.0%} | "
                                 f"x{report['sharpness']['ratio']:.3f} |")
                    print(lines[-1], file=sys.stderr, flush=True)
            finally:
                backend.close()
    return "\n".join(lines) + "\n"


def part_temporal(args) -> str:
    photo = _photo(args)
    lines = ["temporal blend on synthetic shaky streams (every frame blurry, truth known): PSNR vs truth and "
             "flicker (the truth's own flicker is the floor: 8-bit rendering and the flow's errors)", "",
             "| stream | model | temporal | PSNR | flicker input | flicker output | flicker of the truth |",
             "|---|---|---|---|---|---|---|"]
    for severity in ("mild", "moderate"):
        uri = f"synthetic://{photo or ''}?size=640x360&frames={args.frames // 2}&severity={severity}&live=0"
        for model in args.models:
            for temporal in (0.0, args.temporal):
                result = run_stream(model, uri, args.threads, temporal=temporal)
                f = result["flicker"]
                lines.append(f"| {severity} | {model.stem} | {temporal:g} | {result['psnr_mean']:.2f} | "
                             f"{f['input']:.3f} | {f['output']:.3f} | {result['truth_flicker']['output']:.3f} |")
                print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines) + "\n"


def _photo(args) -> Path | None:
    photos = sorted((args.data / "photos").glob("*.jpg")) if (args.data / "photos").is_dir() else []
    return photos[args.photo_index % len(photos)] if photos else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="+", choices=("skip", "flicker", "temporal"))
    parser.add_argument("--models", nargs="+", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--photo-index", type=int, default=0)
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--video-frames", type=int, default=60)
    parser.add_argument("--severity", default="moderate")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--temporal", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--md", type=Path, default=None)
    args = parser.parse_args()
    if args.threshold is None:
        from deblurrt.runtime.blurscore import DEFAULT_THRESHOLD

        args.threshold = DEFAULT_THRESHOLD
    args.models = args.models or sorted((REPO / "weights").glob("*.onnx"))
    parts = {"skip": part_skip, "flicker": part_flicker, "temporal": part_temporal}
    text = "\n".join(parts[name](args) for name in args.parts)
    print(text)
    if args.md:
        args.md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
