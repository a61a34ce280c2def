"""INT8 Q/DQ through NVIDIA ModelOpt's ONNX post-training quantization: the optional second INT8 route.

The default route (:mod:`deblurrt.export.int8`) needs only ONNX Runtime. Where a user has ModelOpt
(``nvidia-modelopt``), ``deblurrt export --precision int8 --int8-backend modelopt`` quantizes with
``modelopt.onnx.quantization.quantize`` instead: NVIDIA's TensorRT-guided Q/DQ placement (it also leaves in
float the convolutions TensorRT has no INT8 kernel for, e.g. fewer than 16 channels unless a multiple of 8),
calibrated on the same frames, with the same node groups kept in float, checked by the same audit.

Settings that make its output the form TensorRT's strongly typed networks take and the ORT route writes:

* ``high_precision_dtype`` from ``Int8Options.float_dtype``: ``fp32`` keeps every unquantized node in FP32,
  as the ORT route does; ``fp16`` (INT8 + FP16, the default for engines) is ModelOpt's own default, which
  converts every unquantized node to FP16, normalisations included;
* ``dq_only=True``: int8 weight initializers with per-channel DequantizeLinear (not float weights behind a
  QuantizeLinear), as the ORT route writes them;
* ``nodes_to_exclude`` takes regular expressions (``re.match``): node names are escaped and anchored, since
  exported names contain ``.`` and one name can prefix another;
* calibration runs on ONNX Runtime's CPU execution provider unless CUDA's is available.

ModelOpt's int8 calibration methods are ``max`` and ``entropy``; it has no percentile calibration.
Its output opset is at least 19 (the first with the Q/DQ forms it writes).
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deblurrt.errors import DeblurrtError, MissingDependencyError
from deblurrt.export.int8 import Int8Options, Int8Result, _copy_metadata, excluded_nodes
from deblurrt.export.nodes import ensure_node_names

#: The repository's calibration names -> ModelOpt's (symmetric MinMax is what ModelOpt calls ``max``).
CALIB_METHODS = {"minmax": "max", "entropy": "entropy"}
#: ``nvidia-modelopt[onnx]`` also pins onnx~=1.21 and installs onnxruntime-gpu next to onnxruntime (two
#: distributions writing the same ``onnxruntime`` package) and cupy-cuda12x; these are the modules its INT8
#: ONNX route imports, which install on a CPU machine without changing torch, onnx or onnxruntime.
INSTALL_HINT = ("pip install 'deblurrt[modelopt]' (nvidia-modelopt with the parts of its [onnx] extra that keep "
                "your onnx and onnxruntime: onnx-graphsurgeon onnxslim polygraphy onnxscript lief cppimport)")


def modelopt_calib_method(method: str) -> str:
    """ModelOpt's name for the repository's calibration ``method``; refuses the ones it has no equivalent for."""
    if method == "percentile":
        raise DeblurrtError("--int8-backend modelopt cannot calibrate with 'percentile': ModelOpt's ONNX INT8 "
                            f"quantization offers {' and '.join(sorted(CALIB_METHODS.values()))} only. Fix: use "
                            "--calib-method minmax or entropy, or --int8-backend ort for percentile.")
    if method not in CALIB_METHODS:
        raise DeblurrtError(f"unknown calibration method '{method}' for --int8-backend modelopt. Fix: use one of "
                            f"{', '.join(CALIB_METHODS)}.")
    return CALIB_METHODS[method]


def import_modelopt():
    """``modelopt.onnx.quantization.quantize``, or :class:`MissingDependencyError` naming what to install."""
    try:
        from modelopt.onnx.quantization import quantize
    except ImportError as error:
        # ModelOpt re-raises a missing [onnx] dependency as a bare ImportError: its first line names the module.
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise MissingDependencyError("nvidia-modelopt", "--int8-backend modelopt",
                                     f"{INSTALL_HINT}. Import failed: {reason}") from error
    return quantize


def _calibration_providers() -> list[str]:
    """ModelOpt's execution-provider names in priority order: CUDA first where ONNX Runtime has it."""
    import onnxruntime

    return ["cuda:0", "cpu"] if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else ["cpu"]


def quantize_modelopt(src: str | Path, dst: str | Path, frames: Sequence[np.ndarray],
                      options: Int8Options | None = None) -> Int8Result:
    """Quantize the FP32 ONNX ``src`` to ``dst`` with ModelOpt, calibrated on ``frames``.

    ``frames`` are HxWx3 float32 RGB images of one size (what the export's calibration yields). Returns the
    :class:`Int8Result` of the ORT route: ``excluded`` has the requested groups plus ``modelopt`` (nodes of
    the quantized op types that ModelOpt itself left in float), ``quantized_nodes`` is read from the output.
    """
    import onnx

    options = options or Int8Options()
    options.validate()
    method = modelopt_calib_method(options.calib_method)
    if not frames:
        raise DeblurrtError("INT8 calibration needs at least one frame. Fix: pass --calib DIR with images.")
    sizes = sorted({frame.shape for frame in frames})
    if len(sizes) != 1:
        raise DeblurrtError(f"ModelOpt calibrates on one batch shape; received frames of sizes {sizes}. Fix: "
                            "resize the frames to one size (the export does it with --calib-shape).")
    quantize = import_modelopt()
    src, dst = Path(src), Path(dst)
    with tempfile.TemporaryDirectory(prefix="deblurrt-modelopt-") as tmp:
        proto = onnx.load(str(src))
        # Named here, not by ModelOpt, so that --int8-exclude names and the reported names are the ones
        # the ORT route and the sensitivity report use.
        ensure_node_names(proto.graph)
        named = Path(tmp) / "fp32.onnx"
        onnx.save(proto, str(named))
        excluded = excluded_nodes(proto.graph, options)
        exclude = sorted({name for names in excluded.values() for name in names})
        input_name = proto.graph.input[0].name
        height, width = sizes[0][:2]
        batch = np.ascontiguousarray(np.stack([frame.transpose(2, 0, 1) for frame in frames]), dtype=np.float32)
        # ModelOpt logs to stdout, at ERROR level even for a missing NVML (any machine without an NVIDIA
        # driver), hence CRITICAL; the export prints its own summary, and the audit and accuracy table check
        # the result.
        with contextlib.redirect_stdout(io.StringIO()):
            quantize(str(named), quantize_mode="int8", calibration_data={input_name: batch},
                     calibration_method=method, calibration_shapes=f"{input_name}:1x3x{height}x{width}",
                     calibration_eps=_calibration_providers(), op_types_to_quantize=list(options.op_types),
                     nodes_to_exclude=[f"{re.escape(name)}$" for name in exclude],
                     high_precision_dtype=options.float_dtype,
                     dq_only=True, output_path=str(dst), log_level="CRITICAL")
    if not dst.is_file():
        raise DeblurrtError(f"ModelOpt wrote no model to '{dst}' (expected a quantized ONNX file). Fix: rerun "
                            "with --int8-backend ort.")
    _copy_metadata(src, dst, options, exclude, backend="modelopt")
    quantized = quantized_nodes(dst, options.op_types)
    done = set(exclude) | set(quantized)
    left = [node.name for node in proto.graph.node if node.op_type in options.op_types and node.name not in done]
    if left:
        excluded["modelopt"] = left
    return Int8Result(dst, options, excluded, quantized, len(frames), backend="modelopt")


def quantized_nodes(path_or_proto, op_types: Sequence[str]) -> list[str]:
    """Nodes of ``op_types`` that read a DequantizeLinear output: the ones that run in INT8 in TensorRT."""
    import onnx

    proto = onnx.load(str(path_or_proto)) if isinstance(path_or_proto, str | Path) else path_or_proto
    dequantized = {out for node in proto.graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    return [node.name for node in proto.graph.node
            if node.op_type in op_types and any(name in dequantized for name in node.input)]
