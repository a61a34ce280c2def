"""Benchmark deblurring models: model-only latency percentiles and FPS, end-to-end pipeline speed, reports.

MODEL is a registered name (exported on the fly to ONNX in a cache folder, with random weights: the latency
is real, the output is not deblurred), 'zoo' for every registered model, or a file: .onnx (ONNX Runtime),
.engine/.plan with its .engine.json sidecar (TensorRT), .safetensors (PyTorch).

Model-only: a fixed random frame, padded to the model's multiple as the runtime does; warm-up; then every
case (model x backend x precision) is timed round-robin in rounds, so all share the machine's drift, and each
is reported relative to the first one. Each timed iteration ends with a synchronisation (ONNX Runtime and
torch return host arrays; TensorRT syncs its stream, with device-resident buffers, and reports H2D, compute
and D2H separately, with and without CUDA graphs). Latency min/mean/p50/p90/p99/max, FPS = 1000 / mean.

Compute efficiency: GMACs per frame x FPS = achieved GMAC/s, next to this machine's measured peak (numpy
GEMM and an ONNX Runtime dense 3x3 conv, about a second each; --no-peak skips them).

End to end (--e2e SOURCE): the real 'deblurrt run' pipeline (capture -> pre -> infer -> post -> null sink) on
a file, camera or synthetic:// source: per-stage latency, delivered FPS, dropped frames, and the ratios to
model-only. synthetic:// without size= runs at every --size. synthetic:// runs unpaced here (live=0: every
frame as fast as it renders, a throughput test) unless the URI says live=1; unpaced, as with any file
source, the end-to-end latency includes the time frames wait behind earlier ones. For a camera's latency
give a camera or 'synthetic://?live=1' (paced at its fps, newest frame, drops counted).

Outputs (--json, --md, --plot and OUT.quality.png) are checked before any benchmark runs; existing files are
refused unless --overwrite is given.

Every report carries the environment: CPU and cores, load average, GPU and clocks (nvidia-smi), Jetson power
mode (nvpmodel -q), library versions, threads, precision, resolution, date.

examples:
  deblurrt bench --model unet_nano unet_nano_prior --size 640x360 --seconds 5 --md bench.md
  deblurrt bench --model unet_nano_prior --precision fp32 fp16 int8 --json out.json --plot lat.png
  deblurrt bench --models zoo --size 640x360,1280x720 --seconds 2 --json zoo.json
  deblurrt bench --model unet_nano_prior --e2e 'synthetic://?severity=moderate' --e2e-frames 200
  deblurrt bench --model m.engine --backend trt --size 1280x720        (TensorRT, GPU machine)
  deblurrt bench --model unet_nano unet_nano_prior --quality a.json b.json --plot lat.png
      (quality-vs-latency chart written to lat.quality.png)
  deblurrt bench --target-fps 30 --size 1280x720      the table behind 'deblurrt run --target-fps 30'

Exit codes: 0 done; 1 nothing could be benchmarked (every case skipped, reasons printed); 2 a usage error
(unknown model: the closest names are listed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from deblurrt.argtypes import frame_sizes, non_negative_int, positive_float, positive_int
from deblurrt.errors import DeblurrtError

BACKEND_CHOICES = ("ort", "trt", "torch", "onnxruntime", "tensorrt", "pytorch")










def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt bench``."""
    parser.add_argument("--model", "--models", dest="models", nargs="+", action="extend", default=None,
                        metavar="M", help="registered name(s), 'zoo', or .onnx/.engine/.safetensors file(s); the "
                        "first is the reference of the 'vs first' column")
    parser.add_argument("--backend", nargs="+", action="extend", choices=BACKEND_CHOICES, default=None,
                        metavar="B", help="ort, trt, torch (several allowed; default: ort for names, the file's "
                        "own backend for files)")
    parser.add_argument("--precision", nargs="+", action="extend", choices=("fp32", "fp16", "int8"), default=None,
                        metavar="P", help="fp32, fp16, int8 for registered names (default fp32); files run at "
                        "their own precision")
    parser.add_argument("--size", type=frame_sizes, action="extend", default=None, metavar="WxH[,WxH]",
                        help="frame sizes, e.g. 640x360,1280x720,1920x1080 (default 640x360)")
    parser.add_argument("--warmup", type=non_negative_int, default=10, metavar="N",
                        help="warm-up iterations per case and size (default 10)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--iters", type=positive_int, default=None, metavar="N",
                        help="at least N timed iterations per case and size")
    budget.add_argument("--seconds", type=positive_float, default=None, metavar="S",
                        help="about S timed seconds per case and size (default 3)")
    parser.add_argument("--rounds", type=positive_int, default=5, metavar="R",
                        help="interleaved rounds the budget is split into (default 5)")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="inference threads for ONNX Runtime / torch (default: all usable cores)")
    parser.add_argument("--providers", default=None, metavar="LIST",
                        help="ONNX Runtime providers in order, e.g. cuda,cpu (default: cuda if available, then cpu)")
    parser.add_argument("--e2e", default=None, metavar="SOURCE",
                        help="also run the 'deblurrt run' pipeline on SOURCE (a video, camera, folder or "
                        "synthetic://) and report it against model-only")
    parser.add_argument("--e2e-frames", type=positive_int, default=100, metavar="N",
                        help="frames per end-to-end run (default 100)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the full report as JSON")
    parser.add_argument("--md", type=Path, default=None, metavar="OUT", help="write the Markdown tables")
    parser.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                        help="latency distribution plot (and OUT.quality.png with --quality)")
    parser.add_argument("--plot-kind", choices=("box", "violin"), default="box", help="latency plot style")
    parser.add_argument("--quality", nargs="+", type=Path, default=None, metavar="FILE",
                        help="'deblurrt eval --json' outputs: PSNR/SSIM columns and a quality-vs-latency chart")
    parser.add_argument("--no-peak", action="store_true", help="skip the GEMM / conv peak micro-benchmarks")
    parser.add_argument("--peak-seconds", type=positive_float, default=1.0, metavar="S",
                        help="seconds per peak micro-benchmark (default 1)")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="where registered models are exported (default $DEBLURRT_BENCH_CACHE or "
                        "~/.cache/deblurrt/bench)")
    parser.add_argument("--no-samples", action="store_true", help="leave raw latency samples out of the JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace existing --json/--md/--plot files")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    from deblurrt.commands._adaptive import add_target_arguments

    add_target_arguments(parser.add_argument_group("--target-fps: the table behind 'run --target-fps N' (every "
                                                   "candidate measured; --model files or the shipped models)"))


def check_outputs(args: argparse.Namespace, quality_plot: Path | None) -> None:
    """Refuse, before any benchmark runs, report files that exist (without --overwrite), cannot be written,
    or are one of the inputs (a model file, an eval JSON given to --quality) or each other."""
    from deblurrt.outputs import check_output_file

    inputs = [Path(m) for m in args.models if Path(m).suffix] + list(args.quality or [])
    earlier: list[Path] = []
    for option, path in (("--json", args.json), ("--md", args.md), ("--plot", args.plot),
                         ("--plot (quality chart)", quality_plot)):
        if path is None:
            continue
        check_output_file(path, option=option, overwrite=args.overwrite, inputs=inputs, protected=earlier)
        earlier.append(path)


def run(args: argparse.Namespace) -> int:
    """Resolve models, benchmark, write the reports, print the Markdown table."""
    from deblurrt.bench.environment import usable_cores
    from deblurrt.bench.harness import Settings, run_benchmark, stderr_log
    from deblurrt.bench.models import resolve_models
    from deblurrt.bench.report import (
        attach_quality,
        load_quality,
        markdown,
        plot_latency,
        plot_quality,
        quality_plot_path,
        write_json,
        write_markdown,
    )
    from deblurrt.runtime.backends import normalize_backend

    logging.basicConfig(level=logging.WARNING, format="deblurrt bench: %(levelname)s: %(message)s")
    if args.target_fps is not None:
        from deblurrt.commands._adaptive import bench_target

        return bench_target(args)
    if not args.models:
        raise DeblurrtError("bench needs --model M (a registered name, 'zoo', or a model file), or --target-fps N")
    refs = resolve_models(args.models)  # unknown names fail here, before any slow work
    quality = load_quality(args.quality) if args.quality else None
    if quality and args.plot is None:
        raise DeblurrtError("--quality draws a quality-vs-latency chart next to the latency plot. Fix: add "
                            "--plot OUT.png")
    check_outputs(args, quality_plot_path(args.plot) if quality else None)
    backends = list(dict.fromkeys(normalize_backend(b) for b in args.backend)) if args.backend else None
    usable = usable_cores()
    settings = Settings(
        sizes=args.size or [(360, 640)], warmup=args.warmup, iters=args.iters,
        seconds=None if args.iters else (args.seconds or 3.0), rounds=args.rounds,
        threads=args.threads or usable, providers=args.providers, cache_dir=args.cache_dir,
        peak_seconds=None if args.no_peak else args.peak_seconds, e2e=args.e2e, e2e_frames=args.e2e_frames,
        keep_samples=True, log=(lambda _m: None) if args.quiet else stderr_log)
    report = run_benchmark(refs, backends, list(dict.fromkeys(args.precision or ["fp32"])), settings)
    if quality:
        attach_quality(report, quality)
    written = []
    if args.plot is not None and report["results"]:
        written.append(plot_latency(report, args.plot, args.plot_kind))
        if quality:
            written.append(plot_quality(report, quality_plot_path(args.plot)))
    if args.md is not None:
        written.append(write_markdown(report, args.md))
    if args.json is not None:
        if args.no_samples:
            for row in report["results"]:
                row.pop("samples_ms", None)
        written.append(write_json(report, args.json))
    print(markdown(report), end="")
    for path in written:
        print(f"deblurrt bench: wrote {path}", file=sys.stderr)
    if not report["results"]:
        print("deblurrt bench: nothing could be benchmarked (see 'Skipped' above)", file=sys.stderr)
        return 1
    return 0
