"""Export a trained checkpoint for deployment: ONNX (FP32, FP16, INT8), a TensorRT engine, or a Triton
model repository, with every step checked.

What happens, in order (any failed check stops the export and nothing is written):
  1. trace to ONNX (opset 17, dynamic batch/height/width), simplify with onnxsim (reported, never fatal),
     onnx.checker + shape inference, and a parity check against PyTorch in ONNX Runtime on a synthetic
     blurry frame at a size other than the traced one (max/mean error; --parity-threshold, default 1e-4);
  2. precision, written into the graph as TensorRT's strongly typed networks require:
     fp16  FP16 graph with the normalisations, reductions and output residual kept in FP32
           (FP32 inputs/outputs unless --fp16-io);
     int8  symmetric int8 Q/DQ (zero-point 0, per-channel weights, per-tensor activations), calibrated on
           --calib DIR (blurry frames, flat or a paired set's blur/) or on synthetic blurry frames; first
           and last convolution, output residual and normalisation stay in float (--int8-keep); quantized
           by ONNX Runtime's tools, or by NVIDIA ModelOpt with --int8-backend modelopt (optional install);
           what stays in float is FP16 for engines and Triton TensorRT plans (INT8 + FP16: an INT8 engine
           with FP32 elsewhere may be slower than the FP16 one), FP32 for .onnx files (--int8-float);
           --dla: no FP32 islands and FP16 I/O, since DLA runs FP16/INT8 only;
  3. the TensorRT-readiness audit of the final graph (operators, Q/DQ, FP16 normalisation);
  4. an accuracy table on --eval DIR (blur/ + sharp/; default: synthetic pairs): PSNR/SSIM vs the sharp
     images and PSNR vs the FP32 output, saved as <artefact>.accuracy.json;
  5. the artefact: .onnx, a TensorRT .engine with a .engine.json sidecar (needs TensorRT and a GPU: build
     on the machine that runs it), or model_repo/<name>/config.pbtxt + <name>/1/model.onnx|model.plan.

Sizes are WIDTHxHEIGHT, as in run, bench, demo and video tools (these options read HEIGHTxWIDTH before: a
taller-than-wide size is refused as ambiguous unless written WxH:portrait).

Outputs: the artefact and what goes beside it (<artefact>.accuracy.json; an engine's .onnx copy and
.engine.json sidecar; a Triton repository's <name>/ folder) are checked before the export starts: existing
ones are refused unless --overwrite is given, and the checkpoint itself is never overwritten. Files are
written under a temporary name and renamed when complete.

Exit codes: 0 exported; 1 a check failed (parity, audit, NaN output); 2 bad input or missing dependency.

examples:
  deblurrt export runs/nano/last.safetensors                         FP32 ONNX next to the checkpoint
  deblurrt export last.safetensors --precision fp16 --out model.fp16.onnx
  deblurrt export last.safetensors --precision int8 --calib data/gopro/train --calib-method percentile
  deblurrt export last.safetensors --precision int8 --sensitivity --keep-top 3   rank layers, keep 3 in float
  deblurrt export last.safetensors --precision int8 --int8-budget 0.3 --eval val --sensitivity-eval calib_pairs
                                       keep the worst layers in float until INT8 costs <= 0.3 dB
  deblurrt export last.safetensors --precision int8 --compare-all --eval data/gopro/test   FP32/FP16/INT8 table
  deblurrt export last.safetensors --precision int8 --int8-backend modelopt --calib-method entropy   ModelOpt PTQ
  deblurrt export last.safetensors --format engine --precision fp16 --shape 1280x720 --timing-cache trt.cache
  deblurrt export last.safetensors --format engine --precision fp16 --dla 0            Jetson AGX Orin DLA
  deblurrt export last.safetensors --format engine --min-shape 640x360 --opt-shape 1280x720 --max-shape 1920x1080
  deblurrt export last.safetensors --format triton --precision fp16 --max-batch 8 --out model_repo
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deblurrt.argtypes import size_was_hxw
from deblurrt.errors import DeblurrtError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt export``."""
    parser.add_argument("checkpoint", type=Path, help="a .safetensors checkpoint written by 'deblurrt train'")
    parser.add_argument("--format", default="onnx", choices=("onnx", "engine", "triton"),
                        help="artefact to write (default: onnx)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"),
                        help="precision decided in the ONNX graph (default: fp32)")
    parser.add_argument("--out", type=Path, help="output file (onnx/engine) or repository folder (triton); "
                        "default: next to the checkpoint")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing artefact (and its accuracy report, sidecar, Triton model folder)")
    shapes = parser.add_argument_group("shapes (TensorRT profiles, WIDTHxHEIGHT; rounded up to the model's pad "
                                       "multiple)")
    shapes.add_argument("--shape", metavar="WxH", help="one fixed-size profile, e.g. 1280x720 (default: one "
                        "profile per camera resolution 640x360, 1280x720, 1920x1080)")
    shapes.add_argument("--min-shape", metavar="WxH", help="dynamic profile: smallest frame")
    shapes.add_argument("--opt-shape", metavar="WxH", help="dynamic profile: the size to optimise for")
    shapes.add_argument("--max-shape", metavar="WxH", help="dynamic profile: largest frame")
    shapes.add_argument("--max-batch", type=int, default=1,
                        help="largest batch of the profiles and Triton's max_batch_size (default: 1)")
    onnx_group = parser.add_argument_group("ONNX")
    onnx_group.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17; default: 17)")
    onnx_group.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    onnx_group.add_argument("--parity-threshold", type=float, default=1e-4,
                            help="max |ONNX - PyTorch| allowed for the FP32 graph (default: 1e-4)")
    onnx_group.add_argument("--fp16-io", action="store_true",
                            help="FP16 inputs/outputs for --precision fp16 (default: FP32 I/O, casts inside)")
    int8 = parser.add_argument_group("INT8")
    int8.add_argument("--calib", type=Path, metavar="DIR",
                      help="blurry frames for calibration (flat, or a paired set's blur/); default: synthetic")
    int8.add_argument("--calib-method", default="minmax", choices=("minmax", "percentile", "entropy"),
                      help="activation range estimation (default: minmax; modelopt: minmax or entropy)")
    int8.add_argument("--int8-backend", default="ort", choices=("ort", "modelopt"),
                      help="INT8 quantizer: ONNX Runtime's quantization tools (default), or NVIDIA ModelOpt's "
                      "ONNX PTQ (pip install 'deblurrt[modelopt]'; no --sensitivity/--int8-budget)")
    int8.add_argument("--calib-count", type=int, default=32, help="calibration frames (default: 32)")
    int8.add_argument("--calib-shape", metavar="WxH", default="256x256",
                      help="frames are resized/cropped to this size (default: 256x256)")
    int8.add_argument("--int8-keep", default="first,last,residual,norm", metavar="GROUPS",
                      help="node groups left in float: any of first,last,residual,norm, or 'none' "
                      "(default: all four)")
    int8.add_argument("--int8-ops", default="Conv,ConvTranspose", metavar="OPS",
                      help="op types to quantize (default: Conv,ConvTranspose)")
    int8.add_argument("--int8-exclude", default="", metavar="NODES",
                      help="comma-separated node names to leave in float (names from --sensitivity)")
    int8.add_argument("--int8-float", choices=("fp16", "fp32"), default=None,
                      help="precision of the layers left in float (default: fp16 for --format engine and Triton "
                      "TensorRT plans, i.e. INT8 + FP16; fp32 for .onnx files)")
    int8.add_argument("--sensitivity", action="store_true",
                      help="rank quantized layers by the PSNR (vs FP32) regained when left in float")
    int8.add_argument("--sensitivity-depth", type=int, default=None, metavar="N",
                      help="group layers by their first N name scopes (default: one layer per group)")
    int8.add_argument("--keep-top", type=int, default=0, metavar="K",
                      help="with --sensitivity: keep the K most sensitive groups in float (with "
                      "--int8-budget: at most K; default 8)")
    int8.add_argument("--int8-budget", type=float, default=None, metavar="DB",
                      help="keep the most sensitive groups in float, one at a time, until INT8 costs at most "
                      "DB dB of PSNR vs FP32 (measured against the sharp images); implies --sensitivity")
    int8.add_argument("--sensitivity-eval", type=Path, default=None, metavar="DIR",
                      help="paired set (blur/ + sharp/) the sensitivity and budget are measured on (default: "
                      "the --eval pairs; a separate set keeps the reported accuracy unbiased)")
    report = parser.add_argument_group("accuracy report")
    report.add_argument("--eval", dest="eval_dir", type=Path, metavar="DIR",
                        help="paired set with blur/ and sharp/ (default: synthetic pairs)")
    report.add_argument("--eval-count", type=int, default=8, help="pairs to evaluate (default: 8)")
    report.add_argument("--eval-shape", metavar="WxH", help="fit the pairs to this size (default: native "
                        "size for --eval, 192x128 for synthetic pairs)")
    report.add_argument("--compare-all", action="store_true",
                        help="also build and report the other precisions (FP32, FP16, INT8 side by side)")
    report.add_argument("--no-accuracy", action="store_true", help="skip the accuracy report")
    trt = parser.add_argument_group("TensorRT")
    trt.add_argument("--workspace", type=float, metavar="GiB", help="builder workspace limit in GiB")
    trt.add_argument("--timing-cache", type=Path, metavar="PATH",
                     help="timing cache to load and update (default: <engine>.timing.cache)")
    trt.add_argument("--dla", type=int, metavar="N", help="build for DLA core N with GPU fallback (Jetson)")
    triton = parser.add_argument_group("Triton")
    triton.add_argument("--triton-platform", default="onnxruntime", choices=("onnxruntime", "tensorrt"),
                        help="Triton backend: model.onnx (default) or a TensorRT model.plan")
    triton.add_argument("--name", help="Triton model name (default: <model>_<precision>)")


def _shape(text: str | None, option: str) -> tuple[int, int] | None:
    """``WIDTHxHEIGHT`` on the command line -> ``(height, width)`` as the export pipeline takes shapes; the
    ambiguous old HEIGHTxWIDTH form is refused with the fix (see :func:`~deblurrt.argtypes.size_was_hxw`)."""
    if text is None:
        return None
    try:
        width, height = size_was_hxw(text, option)
    except argparse.ArgumentTypeError as error:
        raise DeblurrtError(str(error)) from None
    return height, width


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def request_from_args(args: argparse.Namespace):
    """Turn parsed arguments into an :class:`~deblurrt.export.pipeline.ExportRequest` (validating shapes)."""
    from deblurrt.export.pipeline import ExportRequest

    keep = () if args.int8_keep.strip().lower() == "none" else _names(args.int8_keep)
    if args.opset < 17:
        raise DeblurrtError(f"--opset {args.opset} is too old. Fix: use 17 or newer (LayerNormalization, TensorRT).")
    if args.max_batch < 1:
        raise DeblurrtError(f"--max-batch must be >= 1, received {args.max_batch}")
    return ExportRequest(
        checkpoint=args.checkpoint, format=args.format, precision=args.precision, out=args.out,
        shape=_shape(args.shape, "--shape"), min_shape=_shape(args.min_shape, "--min-shape"),
        opt_shape=_shape(args.opt_shape, "--opt-shape"), max_shape=_shape(args.max_shape, "--max-shape"),
        max_batch=args.max_batch, opset=args.opset, simplify=not args.no_simplify,
        parity_threshold=args.parity_threshold, fp16_io=args.fp16_io, calib=args.calib,
        calib_method=args.calib_method, int8_backend=args.int8_backend, calib_count=args.calib_count,
        calib_shape=_shape(args.calib_shape, "--calib-shape"), int8_keep=keep, int8_ops=_names(args.int8_ops),
        int8_exclude=_names(args.int8_exclude), sensitivity=args.sensitivity,
        sensitivity_depth=args.sensitivity_depth, keep_top=args.keep_top, int8_budget=args.int8_budget,
        sensitivity_eval=args.sensitivity_eval, int8_float=args.int8_float, accuracy=not args.no_accuracy,
        eval_dir=args.eval_dir, eval_count=args.eval_count, eval_shape=_shape(args.eval_shape, "--eval-shape"),
        compare_all=args.compare_all, workspace_gib=args.workspace, timing_cache=args.timing_cache,
        dla=args.dla, triton_platform=args.triton_platform, name=args.name, overwrite=args.overwrite,
    )


def run(args: argparse.Namespace) -> int:
    """Run the export; see the module docstring for the stages and exit codes."""
    from deblurrt.export.pipeline import run_export

    return run_export(request_from_args(args))
