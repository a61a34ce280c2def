"""INT8 ONNX with explicit Q/DQ nodes, in the only form TensorRT's strongly typed networks accept.

TensorRT 11 removed implicit (calibrator-based) INT8; 10.x deprecated it. The precision must be in the
graph as QuantizeLinear/DequantizeLinear pairs that are symmetric: int8, zero-point 0, per-channel weight
scales, per-tensor activation scales. ONNX Runtime's ``quantize_static`` writes them when told so; its
defaults (uint8, asymmetric activations, int32 bias DQ) would not build, or would build and compute
something else. The settings used here:

* ``QuantFormat.QDQ``, ``activation_type=QInt8``, ``weight_type=QInt8``, ``per_channel=True``;
* ``ActivationSymmetric`` and ``WeightSymmetric``: zero-points are 0;
* ``QuantizeBias=False``: biases stay float (TensorRT fuses them; an int32 DequantizeLinear is not an
  int8 Q/DQ and the audit rejects it);
* ``quant_pre_process(skip_symbolic_shape=True)``: symbolic shape inference fails on dynamic H/W.

Sensitive layers stay in floating point through ``nodes_to_exclude`` (first/last convolution, the output
residual, normalisation), and :func:`deblurrt.export.accuracy.int8_sensitivity` ranks the remaining
layers so the worst ones can be kept in higher precision as well.

What is not quantized runs in ``float_dtype``: FP32 as quantize_static writes it, or FP16 (INT8 + FP16, the
default for TensorRT engines: under strong typing an INT8 graph with FP32 everywhere else may be slower than
the FP16 one), the float parts cast to FP16 by :func:`deblurrt.export.fp16.int8_float16`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deblurrt.errors import DeblurrtError, MissingDependencyError
from deblurrt.export.nodes import ensure_node_names, sensitive_nodes

CALIB_METHODS = ("minmax", "percentile", "entropy")
#: The precision of everything INT8 leaves in float: fp32, or fp16 (INT8 + FP16).
FLOAT_DTYPES = ("fp32", "fp16")
#: Node groups that can be kept out of quantization by role (see :mod:`deblurrt.export.nodes`).
SENSITIVE_GROUPS = ("first", "last", "residual", "norm")
#: Quantize the weighted ops only by default: that is where TensorRT's INT8 kernels gain, and quantizing
#: every elementwise Add/Mul of a restoration net costs accuracy for little speed.
DEFAULT_OP_TYPES = ("Conv", "ConvTranspose")


@dataclass
class Int8Options:
    """How to quantize: calibration method, which ops, which node groups and names stay in float."""

    calib_method: str = "minmax"
    op_types: tuple[str, ...] = DEFAULT_OP_TYPES
    exclude_groups: tuple[str, ...] = SENSITIVE_GROUPS
    exclude_nodes: tuple[str, ...] = ()
    percentile: float = 99.999
    #: Histogram bins of the entropy calibration (TensorRT uses 2048; the KL search is pure Python in ONNX
    #: Runtime and costs ~0.35 s per tensor at 2048, ~0.05 s at 512).
    entropy_bins: int = 1024
    #: precision of the layers left out of INT8: fp32, or fp16 (INT8 + FP16)
    float_dtype: str = "fp32"
    #: with fp16: keep the FP32 islands of the FP16 export (norms, reductions, output residual); False for DLA
    float_islands: bool = True
    #: with fp16: FP16 graph inputs/outputs instead of FP32 ones (DLA)
    fp16_io: bool = False

    def validate(self) -> None:
        """Raise :class:`DeblurrtError` on an unknown calibration method, group or float precision."""
        if self.calib_method not in CALIB_METHODS:
            raise DeblurrtError(f"unknown calibration method '{self.calib_method}'. Fix: use one of "
                                f"{', '.join(CALIB_METHODS)}.")
        if self.float_dtype not in FLOAT_DTYPES:
            raise DeblurrtError(f"unknown precision '{self.float_dtype}' for the layers INT8 leaves in float. "
                                f"Fix: one of {', '.join(FLOAT_DTYPES)}.")
        unknown = set(self.exclude_groups) - set(SENSITIVE_GROUPS)
        if unknown:
            raise DeblurrtError(f"unknown node group(s) {sorted(unknown)} to keep in float. Fix: choose from "
                                f"{', '.join(SENSITIVE_GROUPS)}.")


@dataclass
class Int8Result:
    """What :func:`quantize_int8` wrote: the path, the excluded nodes (by reason), the quantized nodes."""

    path: Path
    options: Int8Options
    excluded: dict[str, list[str]] = field(default_factory=dict)
    quantized_nodes: list[str] = field(default_factory=list)
    calib_count: int = 0
    #: Which quantizer wrote it: ``ort`` (this module) or ``modelopt`` (:mod:`deblurrt.export.modelopt_int8`).
    backend: str = "ort"

    def format(self) -> str:
        """One line: method, counts of quantized and excluded nodes."""
        parts = [f"{reason}: {len(names)}" for reason, names in self.excluded.items() if names]
        route = " through ModelOpt" if self.backend == "modelopt" else ""
        floats = "FP16" if self.options.float_dtype == "fp16" else "FP32"
        return (f"INT8 Q/DQ{route} (symmetric int8, per-channel weights, {self.options.calib_method} calibration "
                f"on {self.calib_count} frames): {len(self.quantized_nodes)} nodes quantized; kept in float "
                f"({floats}): {', '.join(parts) or 'none'}")


class _FrameReader:
    """ONNX Runtime ``CalibrationDataReader`` over a list of HxWx3 frames, one frame per batch."""

    def __init__(self, input_name: str, frames: Sequence[np.ndarray]):
        self.input_name = input_name
        self.frames = list(frames)
        self.index = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= len(self.frames):
            return None
        frame = self.frames[self.index]
        self.index += 1
        return {self.input_name: np.ascontiguousarray(frame.transpose(2, 0, 1)[None].astype(np.float32))}

    def rewind(self) -> None:
        self.index = 0


def _quantization():
    try:
        from onnxruntime import quantization
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as error:
        raise MissingDependencyError("onnxruntime", "INT8 quantization", "pip install 'deblurrt[export]'") \
            from error
    return quantization, quant_pre_process


def preprocess(src: str | Path, dst: str | Path) -> Path:
    """``quant_pre_process`` without symbolic shape inference (it fails on dynamic H and W), named nodes."""
    import onnx

    _, quant_pre_process = _quantization()
    quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    proto = onnx.load(str(dst))
    if ensure_node_names(proto.graph):
        onnx.save(proto, str(dst))
    return Path(dst)


def excluded_nodes(graph, options: Int8Options) -> dict[str, list[str]]:
    """The nodes to leave in float, by reason: the chosen sensitive groups plus explicit names."""
    groups = sensitive_nodes(graph)
    excluded = {group: groups[group] for group in options.exclude_groups}
    names = {node.name for node in graph.node}
    missing = [name for name in options.exclude_nodes if name not in names]
    if missing:
        raise DeblurrtError(f"node(s) to keep in float not in the graph: {missing[:5]}. Fix: use names from "
                            "the sensitivity report (deblurrt export ... --precision int8 --sensitivity).")
    if options.exclude_nodes:
        excluded["requested"] = list(options.exclude_nodes)
    return excluded


def quantize_int8(src: str | Path, dst: str | Path, frames: Sequence[np.ndarray],
                  options: Int8Options | None = None, cache_path: str | Path | None = None,
                  preprocessed: str | Path | None = None) -> Int8Result:
    """Quantize the FP32 ONNX ``src`` to ``dst`` with TensorRT-compatible Q/DQ, calibrated on ``frames``.

    ``frames`` are HxWx3 float32 RGB images (the calibration shape). ``cache_path`` is an ONNX Runtime
    calibration cache: written on first use, reused after (the sensitivity analysis quantizes many times
    with the same ranges). ``preprocessed`` is a ready ``quant_pre_process`` output of ``src`` to reuse.
    """
    import onnx

    options = options or Int8Options()
    options.validate()
    if not frames:
        raise DeblurrtError("INT8 calibration needs at least one frame. Fix: pass --calib DIR with images.")
    quantization, _ = _quantization()
    src, dst = Path(src), Path(dst)
    method = {"minmax": quantization.CalibrationMethod.MinMax,
              "percentile": quantization.CalibrationMethod.Percentile,
              "entropy": quantization.CalibrationMethod.Entropy}[options.calib_method]
    with tempfile.TemporaryDirectory(prefix="deblurrt-int8-") as tmp:
        pre = Path(preprocessed) if preprocessed else preprocess(src, Path(tmp) / "pre.onnx")
        proto = onnx.load(str(pre))
        excluded = excluded_nodes(proto.graph, options)
        exclude = sorted({name for names in excluded.values() for name in names})
        extra = {
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,
            "CalibPercentile": options.percentile,
            # Keep Relu/Clip visible: TensorRT fuses them itself, and removing them is only exact for
            # asymmetric activations.
            "QDQKeepRemovableActivations": True,
        }
        if options.calib_method == "entropy":
            # quantize_static's entropy calibrator uses 128 histogram bins AND 128 quantized bins, which
            # leaves one candidate threshold (the full range): it silently equals minmax (measured: identical
            # scales), and 1.32 does not pass bin counts through extra_options. So calibrate here with
            # ``entropy_bins`` bins searched for the best 128-bin window (TensorRT's method) and hand the
            # ranges over as a calibration cache.
            cache_path = Path(cache_path) if cache_path else Path(tmp) / "entropy.json"
            if not cache_path.is_file():
                _entropy_cache(quantization, pre, frames, options, proto.graph.input[0].name, cache_path, tmp)
        logger = logging.getLogger("onnxruntime.quantization")
        previous = logger.level
        logger.setLevel(logging.ERROR)
        # The histogram calibrators print progress to stdout; the export prints its own summary instead.
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                quantization.quantize_static(
                    str(pre), str(dst), _FrameReader(proto.graph.input[0].name, frames),
                    quant_format=quantization.QuantFormat.QDQ,
                    activation_type=quantization.QuantType.QInt8, weight_type=quantization.QuantType.QInt8,
                    per_channel=True, calibrate_method=method, op_types_to_quantize=list(options.op_types),
                    nodes_to_exclude=exclude, extra_options=extra,
                    calibration_cache_path=str(cache_path) if cache_path else None,
                )
        finally:
            logger.setLevel(previous)
    _copy_metadata(src, dst, options, exclude)
    if options.float_dtype == "fp16":
        from deblurrt.export.fp16 import int8_float16

        int8_float16(dst, dst, keep_io_types=not options.fp16_io, keep_islands=options.float_islands)
    quantized = [n.name for n in proto.graph.node if n.op_type in options.op_types and n.name not in set(exclude)]
    return Int8Result(dst, options, excluded, quantized, len(frames))


def _copy_metadata(src: Path, dst: Path, options: Int8Options, exclude: list[str], backend: str = "ort") -> None:
    """Carry the FP32 file's metadata over (quantize_static drops it) and record how it was quantized."""
    import onnx

    from deblurrt.export.onnx_export import read_metadata, set_metadata

    metadata = read_metadata(src)
    metadata.update({
        "deblurrt.precision": "int8",
        "deblurrt.io_dtype": "float32",
        "deblurrt.int8.backend": backend,
        "deblurrt.int8.calib_method": options.calib_method,
        "deblurrt.int8.op_types": ",".join(options.op_types),
        "deblurrt.int8.float_nodes": ",".join(exclude),
        "deblurrt.int8.float_dtype": options.float_dtype,
    })
    proto = onnx.load(str(dst))
    set_metadata(proto, metadata)
    # quantize_static declares every domain ONNX Runtime knows (training, preview, contrib, aten); only the
    # ones nodes use are kept, so that TensorRT's parser sees the plain opset the graph really needs.
    used = {node.domain for node in proto.graph.node} | {""}
    kept = [entry for entry in proto.opset_import if entry.domain in used or entry.domain == "ai.onnx"]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)
    onnx.save(proto, str(dst))


def qdq_summary(path_or_proto) -> dict[str, object]:
    """Facts about the Q/DQ nodes of a model: counts, zero-point types and values, weight-scale axes.

    Used by tests and reports to prove the graph is what TensorRT takes: every zero-point int8 and 0,
    weight DequantizeLinear nodes per-channel.
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path_or_proto)) if isinstance(path_or_proto, str | Path) else path_or_proto
    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in graph.node if n.op_type == "Constant" and n.attribute}
    tensors = inits | consts
    zero_point_types, nonzero, weight_axes, per_tensor_activations = set(), 0, [], 0
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0}
    for node in graph.node:
        if node.op_type not in counts:
            continue
        counts[node.op_type] += 1
        if len(node.input) > 2 and node.input[2] in tensors:
            zp = tensors[node.input[2]]
            zero_point_types.add(onnx.TensorProto.DataType.Name(zp.data_type))
            nonzero += int(np.count_nonzero(numpy_helper.to_array(zp)))
        scale = numpy_helper.to_array(tensors[node.input[1]]) if node.input[1] in tensors else None
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            weight_axes.append((axis, int(scale.size) if scale is not None else 0))
        elif scale is not None and scale.size == 1:
            per_tensor_activations += 1
    return {"counts": counts, "zero_point_types": sorted(zero_point_types), "nonzero_zero_points": nonzero,
            "weight_axes": weight_axes, "per_tensor_activation_qdq": per_tensor_activations}


def _entropy_cache(quantization, model_path: Path, frames, options: Int8Options, input_name: str,
                   cache_path: Path, tmp: str) -> None:
    """Entropy (KL) calibration, ``entropy_bins`` bins / 128 quantized bins, saved as an ONNX Runtime cache."""
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    with contextlib.redirect_stdout(io.StringIO()):
        calibrator = create_calibrator(
            model_path, list(options.op_types), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=quantization.CalibrationMethod.Entropy,
            extra_options={"num_bins": options.entropy_bins, "num_quantized_bins": 128, "symmetric": True},
        )
        calibrator.collect_data(_FrameReader(input_name, frames))
        ranges = calibrator.compute_data()
    save_tensors_data(ranges, cache_path, smooth_quant=False)
