"""The whole export as one call: checkpoint -> checked ONNX -> precision -> audit -> accuracy -> artefact.

``deblurrt export`` is a thin wrapper around :func:`run_export`. Each stage either passes or stops the
export with the measured reason:

1. trace to ONNX (dynamic batch/H/W), simplify (reported, never fatal), ``onnx.checker`` + shape inference,
   parity against PyTorch in ONNX Runtime at a size other than the traced one (max/mean error);
2. FP16 (FP32 islands) or INT8 (symmetric Q/DQ, calibrated; optional per-layer sensitivity), whose float
   layers are FP16 for TensorRT targets (INT8 + FP16) and FP32 for ONNX files unless ``int8_float`` says;
   ``--dla`` keeps no FP32 island and uses FP16 I/O (DLA runs FP16/INT8 only);
3. the TensorRT-readiness audit of the final graph (errors stop the export);
4. the accuracy table for every precision produced, printed and saved as ``<artefact>.accuracy.json``;
5. the artefact: an ONNX file, a TensorRT engine (+ ``.json`` sidecar), or a Triton model repository.

Exit codes: 0 success; 1 a check failed (parity, audit, non-finite output); user and environment errors
are raised as :class:`DeblurrtError` (the CLI turns them into exit code 2).
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from deblurrt.errors import DeblurrtError, MissingDependencyError
from deblurrt.outputs import (
    WRITE_FIX,
    OutputError,
    check_output_file,
    check_output_folder,
    copy_file_atomic,
    os_reason,
)

FORMATS = ("onnx", "engine", "triton")
PRECISIONS = ("fp32", "fp16", "int8")
#: INT8 quantizers: ONNX Runtime's tools (default, light) or NVIDIA ModelOpt (optional extra).
INT8_BACKENDS = ("ort", "modelopt")
#: With --int8-budget and no --keep-top: at most this many groups are kept in float (each costs a trial).
DEFAULT_BUDGET_GROUPS = 8
#: Where an export keeps its one INT8 calibration, shared by the sensitivity/budget trials and the final graph.
CALIBRATION_DIR = "calibration"


@dataclass
class ExportRequest:
    """Everything ``deblurrt export`` can be asked (see its --help for the meaning of each field)."""

    checkpoint: Path
    format: str = "onnx"
    precision: str = "fp32"
    out: Path | None = None
    shape: tuple[int, int] | None = None
    min_shape: tuple[int, int] | None = None
    opt_shape: tuple[int, int] | None = None
    max_shape: tuple[int, int] | None = None
    max_batch: int = 1
    opset: int = 17
    simplify: bool = True
    parity_threshold: float = 1e-4
    fp16_io: bool = False
    calib: Path | None = None
    calib_method: str = "minmax"
    int8_backend: str = "ort"
    calib_count: int = 32
    calib_shape: tuple[int, int] = (256, 256)
    int8_keep: tuple[str, ...] = ("first", "last", "residual", "norm")
    int8_ops: tuple[str, ...] = ("Conv", "ConvTranspose")
    int8_exclude: tuple[str, ...] = ()
    sensitivity: bool = False
    sensitivity_depth: int | None = None
    keep_top: int = 0
    int8_budget: float | None = None
    sensitivity_eval: Path | None = None
    #: precision of the layers INT8 leaves in float: fp16 / fp32; None: fp16 for TensorRT targets, else fp32
    int8_float: str | None = None
    accuracy: bool = True
    eval_dir: Path | None = None
    eval_count: int = 8
    eval_shape: tuple[int, int] | None = None
    compare_all: bool = False
    workspace_gib: float | None = None
    timing_cache: Path | None = None
    dla: int | None = None
    triton_platform: str = "onnxruntime"
    name: str | None = None
    overwrite: bool = False
    extra: dict = field(default_factory=dict)


def _validate(request: ExportRequest) -> None:
    """Reject impossible requests before any work, each with the fix."""
    if request.format not in FORMATS:
        raise DeblurrtError(f"unknown --format '{request.format}'. Fix: one of {', '.join(FORMATS)}.")
    if request.precision not in PRECISIONS:
        raise DeblurrtError(f"unknown --precision '{request.precision}'. Fix: one of {', '.join(PRECISIONS)}.")
    checkpoint = Path(request.checkpoint)
    if not checkpoint.is_file():
        raise DeblurrtError(f"checkpoint '{checkpoint}' does not exist. Fix: pass a .safetensors file written by "
                            "'deblurrt train' (e.g. runs/<run>/last.safetensors).")
    if request.dla is not None and request.format != "engine" and request.triton_platform != "tensorrt":
        raise DeblurrtError("--dla applies to TensorRT engines only. Fix: add --format engine, or drop --dla.")
    if request.dla is not None and request.precision == "fp32":
        raise DeblurrtError("DLA runs FP16 or INT8 only. Fix: add --precision fp16 (or int8) with --dla.")
    ranking = request.sensitivity or request.int8_budget is not None
    if request.keep_top < 0:
        raise DeblurrtError(f"--keep-top must be >= 0, received {request.keep_top}.")
    if request.keep_top and not ranking:
        raise DeblurrtError("--keep-top needs the sensitivity analysis. Fix: add --sensitivity (or --int8-budget DB).")
    if request.int8_budget is not None and (not math.isfinite(request.int8_budget) or request.int8_budget < 0
                                            or request.precision != "int8"):
        raise DeblurrtError(f"--int8-budget needs --precision int8 and a cost >= 0 dB, received "
                            f"--precision {request.precision} --int8-budget {request.int8_budget}. "
                            "Fix: e.g. --precision int8 --int8-budget 0.3.")
    if request.sensitivity_eval is not None:
        folder = Path(request.sensitivity_eval)
        if not ranking:
            raise DeblurrtError("--sensitivity-eval is where the sensitivity analysis measures. Fix: add "
                                "--sensitivity or --int8-budget DB (with --precision int8), or drop it.")
        if not (folder / "blur").is_dir() or not (folder / "sharp").is_dir():
            state = "does not exist" if not folder.is_dir() else "needs blur/ and sharp/ subfolders"
            raise DeblurrtError(f"--sensitivity-eval '{folder}' {state}. Fix: pass a paired set with blur/ and "
                                "sharp/ (e.g. made by 'deblurrt data synth').")
    if (request.sensitivity or request.calib) and request.precision != "int8":
        raise DeblurrtError("--calib and --sensitivity apply to INT8. Fix: add --precision int8.")
    if request.int8_float is not None:
        if request.int8_float not in ("fp16", "fp32"):
            raise DeblurrtError(f"unknown --int8-float '{request.int8_float}'. Fix: fp16 or fp32.")
        if request.precision != "int8":
            raise DeblurrtError(f"--int8-float sets the precision of the layers INT8 leaves in float, but "
                                f"--precision is {request.precision}. Fix: add --precision int8, or drop it.")
        if request.dla is not None and request.int8_float == "fp32":
            raise DeblurrtError("DLA runs FP16 and INT8 only: --int8-float fp32 would put every float layer on "
                                "the GPU. Fix: drop --int8-float (DLA exports are INT8 + FP16).")
    if request.int8_backend not in INT8_BACKENDS:
        raise DeblurrtError(f"unknown --int8-backend '{request.int8_backend}'. Fix: one of {', '.join(INT8_BACKENDS)}.")
    if request.int8_backend == "modelopt":
        _validate_modelopt(request)
    elif request.precision == "int8":
        # a mistyped --int8-keep group or calibration method, before the FP32 export and parity check
        _int8_options(request).validate()
    if request.calib is not None and not Path(request.calib).is_dir():
        raise DeblurrtError(f"calibration folder '{request.calib}' does not exist. Fix: pass a folder of blurry "
                            "frames (or a paired set with blur/), or omit --calib for synthetic frames.")
    if request.eval_dir is not None and not Path(request.eval_dir).is_dir():
        raise DeblurrtError(f"evaluation folder '{request.eval_dir}' does not exist. Fix: pass a paired set "
                            "with blur/ and sharp/, or omit --eval for the synthetic set.")
    if request.calib_count < 1 or request.eval_count < 1:
        raise DeblurrtError("--calib-count and --eval-count must be >= 1")
    from deblurrt.export.engine import build_profiles

    # Shape options are checked for every format (they mean nothing without an engine, which is worth saying).
    profiles = build_profiles(1, request.shape, request.min_shape, request.opt_shape, request.max_shape,
                              request.max_batch)
    if request.dla is not None:
        from deblurrt.export.trt_compat import check_dla_profiles

        # before any work: a dynamic profile on DLA would build, and silently run on the GPU
        check_dla_profiles(profiles)
    if targets_tensorrt(request):
        from deblurrt.export.trt_compat import import_tensorrt

        # Checked first: a missing TensorRT should not cost a calibration run before the refusal.
        import_tensorrt("--format engine (a TensorRT engine)")


def _validate_modelopt(request: ExportRequest) -> None:
    """--int8-backend modelopt: INT8 only, no layer ranking, a calibration ModelOpt has, ModelOpt installed."""
    from deblurrt.export.modelopt_int8 import import_modelopt, modelopt_calib_method

    if request.precision != "int8":
        raise DeblurrtError(f"--int8-backend modelopt chooses the INT8 quantizer, but --precision is "
                            f"{request.precision}. Fix: add --precision int8, or drop --int8-backend.")
    if request.sensitivity or request.int8_budget is not None:
        # The ranking quantizes once per layer group from one cached calibration (ONNX Runtime's cache);
        # ModelOpt would recalibrate on every trial.
        raise DeblurrtError("--sensitivity and --int8-budget rank layers with the ort backend only. Fix: run them "
                            "with --int8-backend ort, then pass the chosen nodes to --int8-backend modelopt with "
                            "--int8-exclude.")
    modelopt_calib_method(request.calib_method)
    # Checked first: a missing ModelOpt should not cost the FP32 export and parity check before the refusal.
    import_modelopt()


def default_out(request: ExportRequest, model_name: str) -> Path:
    """Where the artefact goes when --out is not given: next to the checkpoint."""
    checkpoint = Path(request.checkpoint)
    stem = checkpoint.name.removesuffix(".safetensors")
    if request.format == "triton":
        return checkpoint.parent / "model_repo"
    suffix = ".engine" if request.format == "engine" else ".onnx"
    return checkpoint.parent / f"{stem}.{request.precision}{suffix}"


def accuracy_json_path(artefact: Path) -> Path:
    """``model.onnx`` -> ``model.onnx.accuracy.json``; a Triton model folder -> ``<folder>/accuracy.json``."""
    if artefact.is_dir():
        return artefact / "accuracy.json"
    return artefact.with_name(artefact.name + ".accuracy.json")


def check_outputs(request: ExportRequest, out: Path, name: str) -> None:
    """Before any slow work: every file the export will write (the artefact, its accuracy report, an
    engine's ONNX copy and sidecar, a Triton model folder) must be writable and, unless ``overwrite``, new;
    none may be the checkpoint. Raises :class:`~deblurrt.outputs.OutputError` with the fix."""
    inputs = [request.checkpoint, request.calib, request.eval_dir, request.sensitivity_eval]
    overwrite = request.overwrite
    if request.format == "triton":
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out {out} is a file: a Triton model repository is a folder. Fix: give a folder")
        check_output_folder(out / name, option="--out (Triton model folder)", overwrite=overwrite, inputs=inputs)
        return
    from deblurrt.runtime.backends import BACKENDS

    # the runtime tells a model's format by its suffix (its own table): any other name would be written,
    # then refused by 'deblurrt run'
    suffixes = BACKENDS["tensorrt" if request.format == "engine" else "onnxruntime"][2]
    if out.suffix.lower() not in suffixes:
        expected = " or ".join(suffixes)
        raise OutputError(f"--out {out}: a --format {request.format} artefact is named *{expected}, received "
                          f"'{out.suffix or '(no suffix)'}'. Fix: --out {out.with_suffix(suffixes[0])}")
    check_output_file(out, option="--out", overwrite=overwrite, inputs=inputs)
    if request.accuracy:
        check_output_file(accuracy_json_path(out), option="the accuracy report", overwrite=overwrite,
                          inputs=inputs, protected=[out])
    if request.format == "engine":
        from deblurrt.sidecar import sidecar_path

        check_output_file(out.with_suffix(".onnx"), option="the engine's ONNX copy", overwrite=overwrite,
                          inputs=inputs, protected=[out])
        check_output_file(sidecar_path(out), option="the engine sidecar", overwrite=overwrite, inputs=inputs,
                          protected=[out])


def run_export(request: ExportRequest, log: Callable[[str], None] = print) -> int:
    """Run the export described by ``request``; returns the exit code (0 ok, 1 a check failed)."""
    _validate(request)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError(error.name or "onnx", "'deblurrt export'", "pip install 'deblurrt[export]'") \
            from error
    try:
        import torch  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError("torch", "'deblurrt export'", "pip install 'deblurrt[train]'") from error
    from deblurrt.train.checkpoint import load_model

    model = load_model(request.checkpoint)
    model_name = str(model.config.get("name"))
    out = Path(request.out) if request.out else default_out(request, model_name)
    check_outputs(request, out, _model_name(request, model))
    log(f"model {model_name} (pad multiple {model.pad_multiple}) from {request.checkpoint}")
    with tempfile.TemporaryDirectory(prefix="deblurrt-export-") as tmp:
        work = Path(tmp)
        fp32 = _export_fp32(model, request, work / "fp32.onnx", log)
        if fp32 is None:
            return 1
        built, analysis = _build_precision(request, request.precision, fp32, model, work, log)
        final = built[request.precision]
        if not _audit(final, log):
            return 1
        report = None
        if request.accuracy:
            report = _accuracy(request, model, built, log)
            if report is None:
                return 1
            report.sensitivity = analysis["sensitivity"]
            report.int8_budget = analysis["budget"]
        try:
            artefact = _write_artefact(request, model, final, out, work, log)
        except OSError as error:  # the engine builder and the Triton writer write directly
            raise OutputError(f"cannot write the export to {out}: {os_reason(error)}. {WRITE_FIX}") from error
        if report is not None:
            json_path = accuracy_json_path(artefact)
            report.write_json(json_path)
            log(f"accuracy report: {json_path}")
    log(f"done: {artefact}")
    return 0


def _export_fp32(model, request: ExportRequest, path: Path, log) -> Path | None:
    """Stage 1: trace, simplify, check, parity. Returns the path, or None when parity fails."""
    from deblurrt.export.onnx_export import check_onnx, export_onnx, parity_check, simplify_onnx

    export_onnx(model, path, opset=request.opset)
    if request.simplify:
        simplified, message = simplify_onnx(path)
        log(("simplified: " if simplified else "not simplified: ") + message)
    check_onnx(path)
    log(f"onnx.checker and shape inference: OK (opset {request.opset}, dynamic batch/height/width)")
    parity = parity_check(model, path, threshold=request.parity_threshold)
    log(parity.format())
    if not parity.ok:
        log(f"error: the ONNX graph does not reproduce PyTorch (max error {parity.max_abs_error:.3g}, mean "
            f"{parity.mean_abs_error:.3g} > {parity.threshold:g}); nothing was written")
        return None
    return path


def targets_tensorrt(request: ExportRequest) -> bool:
    """True when the artefact is a TensorRT engine (a file, or a Triton TensorRT plan)."""
    return request.format == "engine" or (request.format == "triton" and request.triton_platform == "tensorrt")


def int8_float_dtype(request: ExportRequest) -> str:
    """The precision of the layers INT8 leaves in float: the request's, else fp16 for TensorRT (INT8 + FP16:
    under strong typing an INT8 engine with FP32 everywhere else may be slower than the FP16 one), else fp32."""
    if request.int8_float:
        return request.int8_float
    return "fp16" if targets_tensorrt(request) or request.dla is not None else "fp32"


def precision_label(precision: str, request: ExportRequest) -> str:
    """``int8+fp16`` for INT8 graphs whose float layers are FP16; the precision itself otherwise."""
    return "int8+fp16" if precision == "int8" and int8_float_dtype(request) == "fp16" else precision


def _int8_options(request: ExportRequest):
    from deblurrt.export.int8 import Int8Options

    dla = request.dla is not None
    return Int8Options(calib_method=request.calib_method, op_types=tuple(request.int8_ops),
                       exclude_groups=tuple(request.int8_keep), exclude_nodes=tuple(request.int8_exclude),
                       float_dtype=int8_float_dtype(request), float_islands=not dla,
                       fp16_io=request.fp16_io or dla)


def _calibration_frames(request: ExportRequest, multiple: int):
    from deblurrt.export.engine import round_up
    from deblurrt.export.images import calibration_images

    height, width = round_up(request.calib_shape, multiple)
    return calibration_images(request.calib, height, width, request.calib_count)


def _build_precision(request: ExportRequest, precision: str, fp32: Path, model, work: Path,
                     log) -> tuple[dict[str, Path], dict[str, object]]:
    """Stage 2: the requested precision (and, with --compare-all, the others).

    Returns (precision -> path, {"sensitivity": ranked rows, "budget": the --int8-budget fit (budget, pair
    source, trials, whether met)}; empty when not asked).
    """
    from deblurrt.export.onnx_export import check_onnx

    built = {"fp32": fp32}
    analysis: dict[str, object] = {"sensitivity": [], "budget": {}}
    wanted = list(PRECISIONS) if request.compare_all else ["fp32", precision]
    for current in dict.fromkeys(wanted):
        if current == "fp16":
            from deblurrt.export.fp16 import convert_fp16

            dla = request.dla is not None
            # DLA: FP16 end to end, I/O included; an FP32 island would split the DLA graph around GPU layers
            result = convert_fp16(fp32, work / "fp16.onnx", keep_io_types=not (request.fp16_io or dla),
                                  keep_output_residual=not dla, keep_islands=not dla)
            check_onnx(result.path)
            if current == precision:
                log(result.format() + (" (DLA: no FP32 islands)" if dla else ""))
            built["fp16"] = result.path
        elif current == "int8":
            options = _int8_options(request) if current == precision else _int8_options(
                replace(request, int8_exclude=()))
            frames = _calibration_frames(request, model.pad_multiple)
            if current == precision and (request.sensitivity or request.int8_budget is not None):
                options, analysis["sensitivity"], analysis["budget"] = _sensitivity(
                    request, options, fp32, frames, model, work, log)
            if request.int8_backend == "modelopt":
                from deblurrt.export.modelopt_int8 import quantize_modelopt

                result = quantize_modelopt(fp32, work / "int8.onnx", frames, options)
            else:
                from deblurrt.export.accuracy import calibration_reuse
                from deblurrt.export.int8 import quantize_int8

                pre, cache = calibration_reuse(fp32, work / CALIBRATION_DIR)
                result = quantize_int8(fp32, work / "int8.onnx", frames, options, cache, pre)
            check_onnx(result.path)
            if current == precision:
                source = request.calib or "synthetic frames"
                log(result.format() + f"; calibration data: {source}")
            built["int8"] = result.path
    return built, analysis


def _eval_pairs(request: ExportRequest, multiple: int):
    from deblurrt.export.engine import round_up
    from deblurrt.export.images import paired_images, synthetic_pairs

    if request.eval_dir is not None:
        return paired_images(request.eval_dir, request.eval_count, request.eval_shape), str(request.eval_dir)
    height, width = round_up(request.eval_shape or (128, 192), multiple)
    return synthetic_pairs(request.eval_count, height, width, seed=500), "synthetic pairs"


def _sensitivity(request: ExportRequest, options, fp32: Path, frames, model, work: Path, log):
    """Rank layers by INT8 cost; with --int8-budget keep the worst groups in float until the cost fits,
    with --keep-top K (alone) keep the K worst.

    Returns (the options to quantize with, the ranked rows, the budget fit or {}).
    """
    from deblurrt.export.accuracy import fit_int8_budget, format_budget, format_sensitivity, int8_sensitivity

    if request.sensitivity_eval is not None:
        from deblurrt.export.images import paired_images

        pairs = paired_images(request.sensitivity_eval, request.eval_count, request.eval_shape)
        log(f"sensitivity measured on {len(pairs)} pair(s) from {request.sensitivity_eval}")
    else:
        pairs, _ = _eval_pairs(request, model.pad_multiple)
    rows = int8_sensitivity(fp32, frames, options, pairs, model.pad_multiple, request.sensitivity_depth, work,
                            reuse=work / CALIBRATION_DIR)
    log(format_sensitivity(rows))
    if request.int8_budget is not None:
        max_groups = request.keep_top if request.keep_top > 0 else DEFAULT_BUDGET_GROUPS
        options, steps = fit_int8_budget(fp32, frames, options, pairs, model.pad_multiple, rows,
                                         request.int8_budget, max_groups, work, reuse=work / CALIBRATION_DIR)
        log(format_budget(steps, request.int8_budget))
        chosen = next(step for step in steps if step["chosen"])
        source = str(request.sensitivity_eval) if request.sensitivity_eval is not None else "the --eval pairs"
        return options, rows, {"budget_db": request.int8_budget, "source": source, "count": len(pairs),
                               "max_groups": max_groups, "within": chosen["cost_db"] is not None
                               and chosen["cost_db"] <= request.int8_budget, "steps": steps}
    if request.keep_top:
        chosen = [row for row in rows[:request.keep_top] if (row["gain_db"] or 0) > 0]
        nodes = tuple(node for row in chosen for node in row["nodes"])
        log(f"keeping the top {len(chosen)} group(s) in float: {', '.join(row['group'] for row in chosen) or '-'}")
        options = replace(options, exclude_nodes=tuple(options.exclude_nodes) + nodes)
    return options, rows, {}


def _audit(path: Path, log) -> bool:
    """Stage 3: the TensorRT-readiness audit; prints the verdict and findings (not the op histogram)."""
    from deblurrt.export.trt_audit import audit_model

    report = audit_model(path)
    text = report.format().splitlines()
    findings_at = next((i for i, line in enumerate(text) if line.startswith("findings")), len(text))
    log("\n".join([text[0]] + text[findings_at:]))
    if not report.ok:
        log("error: the graph would not build with TensorRT (see the audit above); nothing was written")
    return report.ok


def _accuracy(request: ExportRequest, model, built: dict[str, Path], log):
    """Stage 4: the accuracy table of every precision built; None when an output is not finite."""
    from deblurrt.export.accuracy import accuracy_report

    pairs, source = _eval_pairs(request, model.pad_multiple)
    labelled = {precision_label(precision, request): path for precision, path in built.items()}
    report = accuracy_report(labelled, pairs, model.pad_multiple, str(model.config.get("name")), source)
    log(report.format())
    broken = [row["precision"] for row in report.rows if row.get("error")]
    if broken:
        log(f"error: {', '.join(broken)} output contains NaN/Inf; nothing was written")
        return None
    return report


def _model_name(request: ExportRequest, model) -> str:
    if request.name:
        return request.name
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{model.config.get('name')}_{request.precision}")


def _write_artefact(request: ExportRequest, model, final: Path, out: Path, work: Path, log) -> Path:
    """Stage 5: copy the ONNX, build the engine, or write the Triton repository. Returns the artefact."""
    from deblurrt.export.onnx_export import read_metadata

    metadata = read_metadata(final)
    if request.format == "onnx":
        copy_file_atomic(final, out)
        return out
    profiles = _profiles(request, model)
    if request.format == "engine":
        from deblurrt.export.engine import build_engine, sidecar_path

        onnx_copy = out.with_suffix(".onnx")
        copy_file_atomic(final, onnx_copy)
        build_engine(onnx_copy, out, profiles, request.workspace_gib, request.timing_cache, request.dla, log)
        log(f"engine sidecar: {sidecar_path(out)}")
        return out
    from deblurrt.export.triton import write_triton_repo

    name = _model_name(request, model)
    model_file = final
    if request.triton_platform == "tensorrt":
        from deblurrt.export.engine import build_engine

        model_file = work / "model.plan"
        build_engine(final, model_file, profiles, request.workspace_gib, request.timing_cache, request.dla, log)
    folder = write_triton_repo(out, name, model_file, request.triton_platform, metadata["deblurrt.input"],
                               metadata["deblurrt.output"], metadata.get("deblurrt.io_dtype", "float32"),
                               max(request.max_batch, 1), metadata,
                               profile_count=len(profiles) if request.triton_platform == "tensorrt" else 0)
    log(f"Triton model repository: {out} (model '{name}', {request.triton_platform})")
    return folder


def _profiles(request: ExportRequest, model):
    from deblurrt.export.engine import build_profiles

    return build_profiles(model.pad_multiple, request.shape, request.min_shape, request.opt_shape,
                          request.max_shape, request.max_batch)
