"""Score a model on a test set of (blurry, sharp) pairs: PSNR/SSIM of the input and of the output, the gain.
With no sharp images it reports no-reference sharpness only.

MODEL is any format the runtime runs, through the same backend and the same frame code as 'deblurrt run'
(pad to the model's multiple, crop back, round to 8 bits), so the numbers are what the stream shows:
  model.onnx               ONNX Runtime (FP32, FP16 or INT8 exports)
  model.engine             TensorRT (with its model.engine.json sidecar)
  checkpoint.safetensors   PyTorch, the trained network itself (reference for export checks)

--data layouts:
  DIR/blur/<name> + DIR/sharp/<name>          a paired folder, matched by file name ('deblurrt data synth')
  DIR/test/<scene>/blur|sharp/*.png           GoPro_Large (or DIR/<scene>/blur|sharp)
  DIR --list RealBlur_J_test_list.txt         RealBlur: lines 'gt_path blur_path' relative to DIR
  DIR/blur/<name> (no sharp/), or DIR/*.png   blurry images only: no reference, so PSNR/SSIM are null and
                                              only no-reference sharpness is reported (see below)
  clip.mp4 (any video file)                   every frame (--limit: the first N), no reference: sharpness,
                                              and flicker = the warping error of consecutive inputs and
                                              outputs (optical flow on the inputs; key "flicker" in --json)

PSNR/SSIM are deblurrt.metrics (8-bit RGB, 11x11 Gaussian SSIM: the benchmarks' protocol); means are means of
per-image values. Latency is model-only (p50 per image, after one warm-up). --save writes each output as PNG
under its name, as soon as it is scored (an interrupted run keeps what it wrote).

Outputs: an existing --json file or a non-empty --save folder is refused unless --overwrite is given; a --save
folder that is, or contains, a folder of the input images is always refused (the outputs carry the inputs'
names). Both are checked before the model is loaded. Ctrl-C or SIGTERM stops after the current image and
still writes the report of the images measured so far ("interrupted": true, "total": images planned), then
exits 130; a failure mid-way writes that partial report too before it is reported.

No-reference sharpness (every layout; the only score without sharp images), on the 8-bit luma: the mean
Sobel gradient magnitude ("sharpness") and the variance of the Laplacian ("laplacian_var"), for input and
output, and their per-image ratio output/input (> 1: sharper edges than the input). Noise and ringing raise
them too: they say "sharper", not "correct".

--json keys: model, backend, n, psnr, ssim (output means vs sharp), input_psnr, input_ssim, gain_db,
reference ("sharp" or "none"), sharpness {input, output, ratio, laplacian_var {input, output, ratio}},
per_image [{name, psnr, ssim, input_psnr, input_ssim, gain_db, input_sharpness, output_sharpness,
sharpness_ratio, input_laplacian_var, output_laplacian_var, laplacian_var_ratio, latency_ms, ...}],
latency_ms, environment. Without sharp images every psnr/ssim value is null.

examples:
  deblurrt eval unet_nano_prior.onnx --data data/val
  deblurrt eval unet_nano_prior.onnx --data GoPro_Large --json gopro.json --limit 100
  deblurrt eval m.engine --data RealBlur --list RealBlur_J_test_list.txt --json realblur_j.json
  deblurrt eval runs/unet_nano_prior/last.safetensors --data data/val --backend torch
  deblurrt eval m.onnx --data data/val --save deblurred/     outputs as PNG, same names
  deblurrt eval m.onnx --data phone_photos/ --json nr.json   blurry photos only: sharpness in/out
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from deblurrt.argtypes import positive_int
from deblurrt.errors import DeblurrtError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt eval``."""
    parser.add_argument("model", metavar="MODEL", help="a shipped name (unet_nano_prior, unet_small_prior) or a "
                        "model file: .onnx, .engine/.plan, or .safetensors")
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="paired folder (blur/ + sharp/), GoPro root, RealBlur root with --list, or blurry images "
                        "only (blur/ alone or a flat folder: no-reference sharpness)")
    parser.add_argument("--list", default=None, metavar="FILE", help="RealBlur list file (gt_path blur_path)")
    parser.add_argument("--backend", choices=["ort", "trt", "torch"], default=None,
                        help="force a backend (default: from the model's suffix)")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="inference threads (ONNX Runtime intra-op / torch); default: all cores")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the report (means, per image, "
                        "environment) as JSON")
    parser.add_argument("--save", default=None, metavar="DIR", help="write the outputs as PNG, same names")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N", help="only the first N pairs")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --json file, write into a non-empty --save folder (same names "
                        "replaced, others kept)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table (summary only)")
    from deblurrt.commands._adaptive import scale_value, strength

    parser.add_argument("--scale", type=scale_value, default=1.0, metavar="S",
                        help="process at S of the image size and add the upscaled residual (as run --scale)")
    parser.add_argument("--temporal", type=strength, default=0.0, metavar="S",
                        help="video --data: the temporal blend of run --temporal (default 0: off)")


def check_outputs(args: argparse.Namespace, pairs: list) -> None:
    """Refuse, before the model is loaded, a --json/--save that exists (without --overwrite), cannot be
    written, or would replace input images (a --save folder that is or holds a folder of the pairs)."""
    from deblurrt.outputs import check_output_file, check_output_folder

    folders = {pair.blur.parent for pair in pairs} | {pair.sharp.parent for pair in pairs if pair.sharp is not None}
    inputs = sorted(folders) + ([Path(args.list)] if args.list else [])
    if args.json:
        check_output_file(args.json, option="--json", overwrite=args.overwrite, inputs=inputs,
                          protected=[args.model])
    if args.save:
        check_output_folder(args.save, option="--save", overwrite=args.overwrite, inputs=inputs,
                            protected=[args.model, args.json])


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    """Find the pairs, check the outputs, open the model, score every pair, print the table, write the JSON.
    Interrupted (Ctrl-C, SIGTERM) or failed part-way, it still writes the report of what it measured."""
    from tqdm import tqdm

    from deblurrt.commands.run import lookup_model
    from deblurrt.runtime.backends import normalize_backend, open_backend
    from deblurrt.runtime.evaluate import evaluate, find_pairs, format_table, summarize
    from deblurrt.runtime.pipeline import write_json_atomic

    args.model = lookup_model(args.model)
    from deblurrt.runtime.video_eval import is_video_file

    layout, pairs = ("video", []) if is_video_file(args.data) else find_pairs(args.data, args.list)
    if args.limit is not None:
        pairs = pairs[:args.limit]
    check_outputs(args, pairs)
    backend_name = normalize_backend(args.backend) if args.backend else None
    options = {}
    if args.threads is not None:
        if backend_name == "tensorrt" or args.model.lower().endswith((".engine", ".plan", ".trt")):
            raise DeblurrtError("--threads does not apply to TensorRT engines")
        options["threads"] = args.threads
    backend = open_backend(args.model, backend_name, **options)
    measured: list = []
    stopped: str | None = None
    failure: DeblurrtError | None = None
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM ends like Ctrl-C: report what was measured
    try:
        if layout == "video":
            from deblurrt.commands._adaptive import eval_video

            return eval_video(args, backend)
        if not args.quiet:
            what = "pairs" if any(p.sharp is not None for p in pairs) else "blurry images, no sharp reference"
            print(f"deblurrt eval: {len(pairs)} {what} ({layout}) from {args.data} with {backend.describe()}",
                  file=sys.stderr, flush=True)
        # tqdm disables itself when stderr is not a terminal (logs, CI), unless --quiet already did
        with tqdm(total=len(pairs), unit="img", file=sys.stderr, disable=True if args.quiet else None,
                  dynamic_ncols=True) as bar:
            def progress(result) -> None:
                measured.append(result)
                if result.output_psnr is not None:
                    bar.set_postfix_str(f"{result.name} {result.output_psnr:.2f} dB", refresh=False)
                else:
                    bar.set_postfix_str(f"{result.name} sharpness x{result.sharpness_ratio:.2f}", refresh=False)
                bar.update(1)

            from deblurrt.runtime.adaptive import adapter_for

            try:
                evaluate(backend, pairs, adapter=adapter_for(backend, args.scale), save_dir=args.save,
                         on_image=progress)
            except KeyboardInterrupt as interrupt:
                stopped = str(interrupt) or "SIGINT"
            except DeblurrtError as error:
                failure = error
        report = summarize(measured, backend=backend, data=args.data, layout=layout) if measured else None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        backend.close()
    if report is not None:
        report["total"] = len(pairs)
        report["interrupted"] = stopped is not None or failure is not None
        report["error"] = None if failure is None else str(failure)
    if failure is not None:
        if report is not None and args.json:
            try:
                write_json_atomic(args.json, report)
                print(f"deblurrt eval: the {report['n']} images measured before the failure are in {args.json}",
                      file=sys.stderr)
            except DeblurrtError:
                pass  # the same disk, probably: the original failure is what matters
        raise failure
    if report is None:
        print(f"deblurrt eval: {stopped or 'stopped'} before the first image: nothing measured, nothing written",
              file=sys.stderr)
        return 128 + int(getattr(signal, stopped or "SIGINT", signal.SIGINT))
    if args.json:
        write_json_atomic(args.json, report)
    if not args.quiet:
        print(format_table(report))
    def db(value):
        return "inf" if value is None else f"{value:.2f}"

    def num(value, fmt):
        return "n/a" if value is None else format(value, fmt)

    extras = (f"; report {args.json}" if args.json else "") + (f"; outputs in {args.save}/" if args.save else "")
    if stopped is not None:
        extras += f"; INTERRUPTED ({stopped}) after {report['n']} of {len(pairs)} images"
    latency = f"model {report['latency_ms']['p50']:.1f} ms/image (p50)"
    sharp = report["sharpness"]
    if report["reference"] == "none":
        print(f"deblurrt eval: {report['n']} images, no sharp reference: no-reference sharpness only "
              f"(mean gradient of luma) {num(sharp['input'], '.2f')} -> {num(sharp['output'], '.2f')} "
              f"(x{num(sharp['ratio'], '.3f')}), Laplacian variance {num(sharp['laplacian_var']['input'], '.1f')} -> "
              f"{num(sharp['laplacian_var']['output'], '.1f')}; PSNR/SSIM need sharp images, {latency}{extras}")
    else:
        gain = "" if report["gain_db"] is None else f" (gain {report['gain_db']:+.2f} dB)"
        print(f"deblurrt eval: {report['n']} images, PSNR {db(report['input_psnr'])} -> "
              f"{db(report['psnr'])} dB{gain}, SSIM {num(report['input_ssim'], '.4f')} -> "
              f"{num(report['ssim'], '.4f')}, sharpness x{num(sharp['ratio'], '.3f')}, {latency}{extras}")
    if stopped is not None:
        return 128 + int(getattr(signal, stopped, signal.SIGINT))
    return 0
