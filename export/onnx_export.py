"""Export a deblurring network to ONNX: dynamic batch, height and width; metadata inside the file.

The teacher and training-only heads are never part of the exported graph: the export traces
``model(x)``, the deployable full-resolution output only.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deblurrt import __version__

INPUT_NAME = "blurry"
OUTPUT_NAME = "sharp"
DEFAULT_OPSET = 17


def export_metadata(model, precision: str = "fp32") -> dict[str, str]:
    """The ``metadata_props`` every deblurrt ONNX file carries; the runtime configures itself from these."""
    import onnx
    import torch

    config = getattr(model, "config", {"name": type(model).__name__, "backbone": None, "args": {}})
    return {
        "deblurrt.model": str(config.get("name")),
        "deblurrt.config": json.dumps(config, sort_keys=True),
        "deblurrt.pad_multiple": str(model.pad_multiple),
        "deblurrt.input": INPUT_NAME,
        "deblurrt.output": OUTPUT_NAME,
        "deblurrt.layout": "NCHW",
        "deblurrt.color": "RGB",
        "deblurrt.value_range": "0,1",
        "deblurrt.precision": precision,
        "deblurrt.io_dtype": "float32",
        "deblurrt.version": __version__,
        "torch.version": torch.__version__,
        "onnx.version": onnx.__version__,
    } | _tool_versions()


def _tool_versions() -> dict[str, str]:
    """Versions of the optional export tools that are installed (they shape the graph, so they are recorded)."""
    from importlib import metadata

    versions = {}
    for key, distribution in (("onnxruntime.version", "onnxruntime"), ("onnxsim.version", "onnxsim"),
                              ("onnxconverter_common.version", "onnxconverter-common")):
        try:
            versions[key] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return versions


def export_onnx(model, path: str | Path, sample_shape: tuple[int, int] | None = None,
                opset: int = DEFAULT_OPSET, dynamic_batch: bool = True) -> Path:
    """Trace ``model`` (eval mode, CPU) to ``path`` with dynamic H and W and embedded metadata.

    ``sample_shape`` (H, W) is only the tracing size; it is rounded up to the model's pad multiple.
    """
    import onnx
    import torch

    path = Path(path)
    multiple = model.pad_multiple
    height, width = sample_shape or (2 * max(multiple, 32), 3 * max(multiple, 32))
    height, width = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    sample = torch.rand(1, 3, height, width)
    dynamic_axes: dict[str, dict[int, str]] = {
        name: ({0: "batch"} if dynamic_batch else {}) | {2: "height", 3: "width"}
        for name in (INPUT_NAME, OUTPUT_NAME)
    }
    was_training = model.training
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_suffix(path.suffix + ".tmp")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated in torch >= 2.9 but is the one that keeps H and W dynamic
            # without onnxscript; the warning is expected.
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=FutureWarning)
            torch.onnx.export(model, (sample,), str(tmp_path), input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_axes=dynamic_axes, opset_version=opset,
                              dynamo=False)
    finally:
        model.train(was_training)
    proto = onnx.load(str(tmp_path))
    set_metadata(proto, export_metadata(model))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp_path))
    tmp_path.replace(path)
    return path


def set_metadata(proto, metadata: dict[str, Any]) -> None:
    """Replace or add ``metadata_props`` entries in an ONNX ``ModelProto``."""
    existing = {prop.key: prop for prop in proto.metadata_props}
    for key, value in metadata.items():
        if key in existing:
            existing[key].value = str(value)
        else:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, str(value)


def read_metadata(proto_or_path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX model (a ``ModelProto`` or a path) as a dict."""
    import onnx

    proto = onnx.load(str(proto_or_path), load_external_data=False) if isinstance(proto_or_path, str | Path) \
        else proto_or_path
    return {prop.key: prop.value for prop in proto.metadata_props}


# -- post-export: simplify, check, parity ------------------------------------------------------------------

@dataclass
class ParityResult:
    """How far an ONNX model's output is from PyTorch's on one input: errors and where they were measured."""

    max_abs_error: float
    mean_abs_error: float
    shape: tuple[int, ...]
    threshold: float

    @property
    def ok(self) -> bool:
        """True when the maximum error is within the threshold (NaN never passes)."""
        return bool(self.max_abs_error <= self.threshold)

    def format(self) -> str:
        """One line: verdict, errors, threshold and input shape."""
        verdict = "OK" if self.ok else "FAIL"
        return (f"parity vs PyTorch: {verdict} - max |err| {self.max_abs_error:.3g}, mean |err| "
                f"{self.mean_abs_error:.3g} (threshold {self.threshold:g}) at input {list(self.shape)}")


def simplify_onnx(path: str | Path) -> tuple[bool, str]:
    """Simplify ``path`` in place with onnxsim, keeping dynamic dims and ``metadata_props``.

    Returns ``(simplified, message)``. Any failure of the simplifier (missing package, an op it cannot fold,
    a check that fails) leaves the file untouched and is reported, not raised: the unsimplified graph is
    valid and still exports; TensorRT folds constants itself.
    """
    import onnx

    path = Path(path)
    try:
        import onnxsim
    except ImportError:
        return False, "onnxsim is not installed (pip install 'deblurrt[export]'); kept the graph as exported"
    proto = onnx.load(str(path))
    before = len(proto.graph.node)
    metadata = read_metadata(proto)
    try:
        simplified, check_ok = onnxsim.simplify(proto)
    except Exception as error:  # noqa: BLE001 - onnxsim raises arbitrary errors from its C++ core
        return False, f"onnxsim failed ({type(error).__name__}: {error}); kept the graph as exported"
    if not check_ok:
        return False, "onnxsim's own output check failed; kept the graph as exported"
    if _input_dims(simplified) != _input_dims(proto):
        return False, "onnxsim changed the input dims (dynamic axes lost); kept the graph as exported"
    # onnxsim records its run in metadata_props (long lists of removed nodes): keep deblurrt's keys only.
    del simplified.metadata_props[:]
    set_metadata(simplified, metadata | {"deblurrt.simplified": f"onnxsim {onnxsim.__version__}"})
    onnx.save(simplified, str(path))
    return True, f"onnxsim: {before} -> {len(simplified.graph.node)} nodes"


def _input_dims(proto) -> list[list[int | str]]:
    return [[d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim] for value in proto.graph.input]


def check_onnx(path: str | Path):
    """Run ``onnx.checker`` (full check) and strict shape inference on ``path``; return the inferred model.

    Raises :class:`DeblurrtError` with the checker's message when the graph is invalid.
    """
    import onnx

    from deblurrt.errors import DeblurrtError

    try:
        onnx.checker.check_model(str(path), full_check=True)
        return onnx.shape_inference.infer_shapes(onnx.load(str(path)), check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise DeblurrtError(f"'{path}' failed the ONNX checks: {error}. Fix: report it with the model name; "
                            "the exporter produced an invalid graph.") from error


def ort_session(path: str | Path, threads: int = 2):
    """An ONNX Runtime CPU session on ``path`` (graph optimisations on, ``threads`` intra-op threads)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def input_dtype(session) -> Any:
    """The numpy dtype of a session's first input (float16 for FP16-I/O models, else float32)."""
    import numpy as np

    return np.float16 if "float16" in session.get_inputs()[0].type else np.float32


def parity_check(model, path: str | Path, shape: tuple[int, int] | None = None, batch: int = 2,
                 threshold: float = 1e-4, seed: int = 0) -> ParityResult:
    """Compare ``model`` (PyTorch, CPU) with the ONNX file at ``path`` in ONNX Runtime CPU.

    The input is ``batch`` synthetic blurry frames (smooth colour fields, hard edges, texture, noise: the
    activation statistics of real frames, unlike uniform noise) at ``shape`` (H, W), which defaults to a
    size other than the traced one so that a shape baked into the graph shows up as an error.
    """
    import numpy as np
    import torch

    from deblurrt.export.images import synthetic_pair, to_nchw

    multiple = model.pad_multiple
    height, width = shape or (3 * max(multiple, 32), 2 * max(multiple, 32))
    frames = to_nchw(synthetic_pair(height, width, seed + i)[0] for i in range(batch))
    session = ort_session(path)
    actual = session.run(None, {session.get_inputs()[0].name: frames.astype(input_dtype(session))})[0]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(torch.from_numpy(frames)).numpy()
    finally:
        model.train(was_training)
    if actual.shape != expected.shape:
        return ParityResult(float("inf"), float("inf"), frames.shape, threshold)
    error = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    max_error = float(error.max()) if np.isfinite(error).all() else float("nan")
    return ParityResult(max_error, float(error.mean()), frames.shape, threshold)
