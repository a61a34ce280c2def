"""CPU-only audit of an ONNX graph for TensorRT readiness.

TensorRT and a GPU are not available where models are exported and tested, so this module answers
"will TensorRT's ONNX parser take this graph, and will the engine compute what ONNX Runtime computes?"
from the graph alone. It checks every node (subgraphs and local functions included) against the parser's
operator allowlist in ``data/trt_onnx_ops.txt`` and against the restrictions that bite image-restoration
networks: Resize and Pad modes, symmetric INT8 Q/DQ, control flow, opset, and normalisations in FP16.

It never imports ``tensorrt``; ``onnx`` (a dependency of the export extra) is imported when a model is
audited.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from deblurrt.errors import DeblurrtError, MissingDependencyError

if TYPE_CHECKING:
    import numpy as np
    import onnx

Severity = Literal["error", "warning"]

#: Where the allowlist comes from; repeated in reports so a reader knows which TensorRT the verdict is about.
TRT_LIST_SOURCE = "onnx/onnx-tensorrt docs/operators.md, TensorRT 10.15"

DEFAULT_DOMAINS = frozenset({"", "ai.onnx"})
CONTROL_FLOW_OPS = frozenset({"If", "Loop", "Scan"})

#: Opsets the 10.15 parser accepts, and the opset deblurrt exports (first with LayerNormalization).
MIN_PARSER_OPSET = 9
MAX_PARSER_OPSET = 24
TARGET_OPSET = 17

#: Ops whose FP16 evaluation overflows easily: a mean of squares exceeds FP16's 65504 long before the
#: activations themselves do (NVIDIA/TensorRT#2564, #3101; microsoft/onnxruntime#13639).
FP16_SENSITIVE_OPS = frozenset(
    {
        "ReduceMean",
        "Pow",
        "Sqrt",
        "ReduceSumSquare",
        "ReduceL2",
        "LayerNormalization",
        "GroupNormalization",
        "InstanceNormalization",
        "RMSNormalization",
        "MeanVarianceNormalization",
    }
)

RESIZE_MODES = frozenset({"nearest", "linear", "cubic"})
RESIZE_COORDINATE_MODES = frozenset(
    {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
)
RESIZE_NEAREST_MODES = frozenset({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})
#: Innermost dims each interpolation may resize (importer: linear <= 3, cubic <= 2).
RESIZE_MAX_INNER_DIMS = {"linear": 3, "cubic": 2}
#: cubic_coeff_a values produced by mainstream exporters (PyTorch/ONNX default, TensorFlow).
USUAL_CUBIC_COEFFS = (-0.75, -0.5)
PAD_MODES = frozenset({"constant", "reflect", "edge", "wrap"})
DEPTH_TO_SPACE_MODES = frozenset({"DCR", "CRD"})
#: Element types TensorRT's Cast accepts as target (DOUBLE is accepted but silently narrowed to FLOAT).
CAST_TARGETS = frozenset({"FLOAT", "FLOAT16", "BFLOAT16", "INT32", "INT64", "UINT8", "BOOL"})


def _onnx() -> Any:
    """Import onnx on first use so importing this module costs nothing for runtime-only installs."""
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401  (submodules used below)
        import onnx.shape_inference  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "onnx", "The TensorRT ONNX audit", "pip install 'deblurrt[export]'"
        ) from exc
    return onnx


@lru_cache(maxsize=1)
def supported_ops() -> frozenset[str]:
    """Return the ONNX op types (default domain) TensorRT's ONNX parser imports natively.

    Read from the package data file ``deblurrt/export/data/trt_onnx_ops.txt``: one op per line,
    ``#`` comments.
    """
    package = __package__ or "deblurrt.export"
    text = resources.files(package).joinpath("data", "trt_onnx_ops.txt").read_text(encoding="utf-8")
    ops = set()
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            ops.add(line)
    return frozenset(ops)


@dataclass(frozen=True)
class AuditFinding:
    """One problem found in the graph: ``error`` blocks a TensorRT build, ``warning`` risks wrong results."""

    severity: Severity
    op: str
    node: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.op} ({self.node}): {self.message}"


@dataclass
class AuditReport:
    """Result of :func:`audit_model`: findings, op histogram, opset and dynamic input dims (informational)."""

    findings: list[AuditFinding] = field(default_factory=list)
    op_counts: dict[str, int] = field(default_factory=dict)
    opset: int | None = None
    dynamic_inputs: dict[str, tuple[int | str, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no finding is an error (warnings do not block a build)."""
        return not self.errors

    @property
    def errors(self) -> list[AuditFinding]:
        """Findings with severity ``error``."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[AuditFinding]:
        """Findings with severity ``warning``."""
        return [f for f in self.findings if f.severity == "warning"]

    def format(self) -> str:
        """Render a short human report: verdict, op counts, dynamic inputs, then findings (errors first)."""
        verdict = "OK" if self.ok else "FAIL"
        lines = [
            f"TensorRT readiness: {verdict} - {len(self.errors)} error(s), {len(self.warnings)} warning(s); "
            f"opset {self.opset if self.opset is not None else '?'}; checked against {TRT_LIST_SOURCE}",
            "op counts:",
        ]
        width = max((len(op) for op in self.op_counts), default=0)
        for op, count in sorted(self.op_counts.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {op:<{width}}  {count}")
        if self.dynamic_inputs:
            lines.append("dynamic inputs (info: the engine needs an optimisation profile covering them):")
            for name, dims in self.dynamic_inputs.items():
                lines.append(f"  {name}: [{', '.join(str(d) for d in dims)}]")
        if self.findings:
            lines.append("findings:")
            for finding in self.errors + self.warnings:
                severity = finding.severity.upper()
                lines.append(f"  {severity:<7} {finding.op} ({finding.node}): {finding.message}")
        else:
            lines.append("findings: none")
        return "\n".join(lines)


def audit_model(
    model: onnx.ModelProto | str | Path, *, allowlist: Iterable[str] | None = None
) -> AuditReport:
    """Audit an ONNX model (a ``ModelProto`` or a path to a ``.onnx`` file) for TensorRT readiness.

    ``allowlist`` overrides :func:`supported_ops` (for example to audit against another TensorRT release).
    Raises :class:`DeblurrtError` when the path does not exist or is not an ONNX model.
    """
    onnx = _onnx()
    if isinstance(model, (str, Path)):
        model = _load(Path(model))
    elif not isinstance(model, onnx.ModelProto):
        raise TypeError(f"audit_model expects an onnx.ModelProto or a path, got {type(model).__name__}")
    ops = frozenset(allowlist) if allowlist is not None else supported_ops()
    return _Auditor(model, ops).run()


def _load(path: Path) -> onnx.ModelProto:
    """Load a model file, turning the usual failures into one-line user errors."""
    onnx = _onnx()
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise DeblurrtError(
            f"ONNX model '{path}' does not exist. Fix: pass the path of an exported .onnx file."
        )
    try:
        return onnx.load(str(path))
    except DecodeError as exc:
        raise DeblurrtError(
            f"'{path}' is not a readable ONNX model ({exc}). Fix: re-export it with 'deblurrt export'."
        ) from exc


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """Attribute value of ``node`` (strings decoded), or ``default`` when absent."""
    onnx = _onnx()
    for attribute in node.attribute:
        if attribute.name == name:
            value = onnx.helper.get_attribute_value(attribute)
            return value.decode("utf-8") if isinstance(value, bytes) else value
    return default


def _input(node: onnx.NodeProto, index: int) -> str | None:
    """Name of the ``index``-th input, or None when it is absent or left empty (ONNX optional input)."""
    if index < len(node.input) and node.input[index]:
        return node.input[index]
    return None


class _Auditor:
    """Walks one model once, collecting findings; the checks share its type and constant tables."""

    def __init__(self, model: onnx.ModelProto, allowlist: frozenset[str]):
        self.onnx = _onnx()
        self.model = model
        self.allowlist = allowlist
        self.report = AuditReport()
        self.counts: Counter[str] = Counter()
        self.consts: dict[str, onnx.TensorProto] = {}
        self.types: dict[str, tuple[int, tuple[int | str, ...] | None]] = {}
        self.functions = {(f.domain, f.name): f for f in model.functions}
        self.function_stack: set[tuple[str, str]] = set()
        self.opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), None)
        self.checks: dict[str, Callable[[onnx.NodeProto, str], None]] = {
            "Resize": self._check_resize,
            "Pad": self._check_pad,
            "QuantizeLinear": self._check_qdq,
            "DequantizeLinear": self._check_qdq,
            "Cast": self._check_cast,
            "DepthToSpace": self._check_depth_space,
            "SpaceToDepth": self._check_depth_space,
            "GridSample": self._check_grid_sample,
            "LayerNormalization": self._check_layer_norm,
            "MaxPool": self._check_pool,
            "AveragePool": self._check_pool,
            "LpPool": self._check_pool,
            "Squeeze": self._check_axes_input,
            "Unsqueeze": self._check_axes_input,
        }

    # -- driver ---------------------------------------------------------------------------------------------

    def run(self) -> AuditReport:
        self._collect_types()
        self._check_opset()
        self._collect_dynamic_inputs()
        self._walk_graph(self.model.graph, "")
        self.report.op_counts = dict(self.counts)
        self.report.opset = self.opset
        return self.report

    def _add(self, severity: Severity, op: str, node: str, message: str) -> None:
        self.report.findings.append(AuditFinding(severity, op, node, message))

    def _check_opset(self) -> None:
        if self.opset is None:
            self._add("error", "model", "-", "the model imports no default-domain ONNX opset")
        elif self.opset < MIN_PARSER_OPSET:
            self._add(
                "error",
                "model",
                "-",
                f"opset {self.opset} is below {MIN_PARSER_OPSET}, the oldest the TensorRT ONNX parser "
                f"accepts; re-export with opset_version={TARGET_OPSET}",
            )
        elif self.opset < TARGET_OPSET:
            self._add(
                "warning",
                "model",
                "-",
                f"opset {self.opset} < {TARGET_OPSET}: LayerNormalization does not exist yet, so "
                f"normalisations are exported as ReduceMean/Pow/Sqrt chains TensorRT cannot fuse; "
                f"re-export with opset_version={TARGET_OPSET}",
            )
        elif self.opset > MAX_PARSER_OPSET:
            self._add(
                "warning",
                "model",
                "-",
                f"opset {self.opset} is newer than {MAX_PARSER_OPSET}, the newest documented for "
                f"TensorRT 10.15; older TensorRT releases will refuse the model",
            )

    def _collect_dynamic_inputs(self) -> None:
        graph = self.model.graph
        initializers = {t.name for t in graph.initializer}
        for value in graph.input:
            if value.name in initializers or not value.type.HasField("tensor_type"):
                continue
            tensor_type = value.type.tensor_type
            if not tensor_type.HasField("shape"):
                self.report.dynamic_inputs[value.name] = ("unknown rank",)
                continue
            dims = tuple(_dim(d) for d in tensor_type.shape.dim)
            if any(not isinstance(d, int) for d in dims):
                self.report.dynamic_inputs[value.name] = dims

    # -- tables of tensor types and constants ---------------------------------------------------------------

    def _collect_types(self) -> None:
        """Element types/shapes of every named tensor, after ONNX shape inference when it succeeds."""
        model = self.model
        try:
            model = self.onnx.shape_inference.infer_shapes(model, strict_mode=False)
        except (self.onnx.shape_inference.InferenceError, ValueError):
            # A graph ONNX cannot type (custom ops, >2 GB protobuf) is still audited; type-based checks that
            # have no information simply stay silent.
            model = self.model
        for graph in _graphs(model.graph):
            for value in [*graph.input, *graph.output, *graph.value_info]:
                if value.type.HasField("tensor_type"):
                    tensor_type = value.type.tensor_type
                    shape = None
                    if tensor_type.HasField("shape"):
                        shape = tuple(_dim(d) for d in tensor_type.shape.dim)
                    self.types[value.name] = (tensor_type.elem_type, shape)

    def _register_constants(
        self, nodes: Iterable[onnx.NodeProto], initializers: Iterable[onnx.TensorProto]
    ) -> None:
        for tensor in initializers:
            self.consts[tensor.name] = tensor
            self.types[tensor.name] = (tensor.data_type, tuple(tensor.dims))
        for node in nodes:
            if node.op_type == "Constant" and node.domain in DEFAULT_DOMAINS and node.output:
                value = _attr(node, "value")
                if isinstance(value, self.onnx.TensorProto):
                    self.consts[node.output[0]] = value
                    self.types[node.output[0]] = (value.data_type, tuple(value.dims))

    def _const(self, name: str | None) -> np.ndarray | None:
        """Value of a constant tensor (initializer or Constant node), None when it is computed at run time."""
        tensor = self.consts.get(name) if name else None
        if tensor is None:
            return None
        if tensor.data_location == self.onnx.TensorProto.EXTERNAL:
            # External data that was not loaded: the value is unknown here, not wrong.
            return None
        return self.onnx.numpy_helper.to_array(tensor)

    def _elem_type(self, name: str | None) -> int | None:
        info = self.types.get(name) if name else None
        return info[0] if info else None

    def _shape(self, name: str | None) -> tuple[int | str, ...] | None:
        info = self.types.get(name) if name else None
        return info[1] if info else None

    def _type_name(self, elem_type: int) -> str:
        return self.onnx.TensorProto.DataType.Name(elem_type)

    # -- walking --------------------------------------------------------------------------------------------

    def _walk_graph(self, graph: onnx.GraphProto, path: str) -> None:
        self._register_constants(graph.node, graph.initializer)
        self._walk_nodes(graph.node, path)

    def _walk_nodes(self, nodes: Iterable[onnx.NodeProto], path: str) -> None:
        for index, node in enumerate(nodes):
            label = node.name or f"{node.op_type}#{index}"
            full = f"{path}/{label}" if path else label
            self._check_node(node, full)
            for attribute in node.attribute:
                if attribute.type == self.onnx.AttributeProto.GRAPH:
                    self._walk_graph(attribute.g, f"{full}.{attribute.name}")
                elif attribute.type == self.onnx.AttributeProto.GRAPHS:
                    for k, subgraph in enumerate(attribute.graphs):
                        self._walk_graph(subgraph, f"{full}.{attribute.name}[{k}]")

    def _check_node(self, node: onnx.NodeProto, name: str) -> None:
        op = node.op_type
        if node.domain not in DEFAULT_DOMAINS:
            key = (node.domain, op)
            self.counts[f"{node.domain}::{op}"] += 1
            function = self.functions.get(key)
            if function is not None and key not in self.function_stack:
                # TensorRT inlines ONNX local functions, so what matters is the ops inside the body.
                self.function_stack.add(key)
                self._register_constants(function.node, ())
                self._walk_nodes(function.node, f"{name}[function {node.domain}::{op}]")
                self.function_stack.discard(key)
                return
            self._add(
                "error",
                f"{node.domain}::{op}",
                name,
                f"custom-domain op '{op}' (domain '{node.domain}') is not a standard ONNX op: "
                f"TensorRT needs a plugin for it; re-export it as standard ONNX ops",
            )
            return
        self.counts[op] += 1
        if op not in self.allowlist:
            self._add(
                "error",
                op,
                name,
                f"'{op}' is not supported by TensorRT's ONNX parser ({TRT_LIST_SOURCE}); "
                f"replace it with supported ops or write a plugin",
            )
            return
        if op in CONTROL_FLOW_OPS:
            self._add(
                "error",
                op,
                name,
                f"control flow ('{op}') is not allowed in deblurrt models: TensorRT builds it as conditional/"
                f"loop layers that block fusion; make the graph static (trace with fixed branches)",
            )
        check = self.checks.get(op)
        if check is not None:
            check(node, name)
        elif op.startswith("Reduce"):
            self._check_axes_input(node, name)
        if op in FP16_SENSITIVE_OPS and self._elem_type(_input(node, 0)) == self.onnx.TensorProto.FLOAT16:
            self._add(
                "warning",
                op,
                name,
                "normalisation computed in FP16: keep in FP32 (sums of squares overflow FP16's 65504, and "
                "TensorRT 11 runs each node in the graph's type); cast to float32 around it",
            )

    # -- per-op checks --------------------------------------------------------------------------------------

    def _check_resize(self, node: onnx.NodeProto, name: str) -> None:
        mode = _attr(node, "mode", "nearest")
        if mode not in RESIZE_MODES:
            self._add(
                "error",
                "Resize",
                name,
                f"mode '{mode}' is not an ONNX Resize mode; TensorRT's importer would silently use nearest",
            )
        coordinate_mode = _attr(node, "coordinate_transformation_mode", "half_pixel")
        if coordinate_mode not in RESIZE_COORDINATE_MODES:
            self._add(
                "error",
                "Resize",
                name,
                f"coordinate_transformation_mode '{coordinate_mode}' is rejected by TensorRT "
                f"(supported: {', '.join(sorted(RESIZE_COORDINATE_MODES))})",
            )
        nearest_mode = _attr(node, "nearest_mode", "round_prefer_floor")
        if mode == "nearest" and nearest_mode not in RESIZE_NEAREST_MODES:
            self._add("error", "Resize", name, f"nearest_mode '{nearest_mode}' is not supported by TensorRT")
        if _attr(node, "antialias", 0):
            self._add("error", "Resize", name, "antialias=1 is not supported by TensorRT's Resize")
        policy = _attr(node, "keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            self._add(
                "error", "Resize", name, f"keep_aspect_ratio_policy '{policy}' unsupported (only 'stretch')"
            )
        if mode == "cubic":
            coeff = float(_attr(node, "cubic_coeff_a", -0.75))
            message = (
                "mode 'cubic' is outside TensorRT's documented Resize modes (nearest, linear); the importer "
                "maps it to a bicubic resize of at most the 2 innermost dims - compare with ONNX Runtime "
                "before relying on it"
            )
            if not any(math.isclose(coeff, usual) for usual in USUAL_CUBIC_COEFFS):
                message += (
                    f"; cubic_coeff_a={coeff:g} is neither PyTorch's -0.75 nor TensorFlow's -0.5, so results "
                    f"are unlikely to match the training framework"
                )
            self._add("warning", "Resize", name, message)

        scales_name = _input(node, 2 if (self.opset or 0) >= 11 else 1)
        scales = self._const(scales_name)
        if scales is not None and scales.size and mode in RESIZE_MAX_INNER_DIMS:
            limit = RESIZE_MAX_INNER_DIMS[mode]
            flat = [float(s) for s in scales.ravel()]
            outer = [i for i, s in enumerate(flat) if i < len(flat) - limit and not math.isclose(s, 1.0)]
            if outer:
                self._add(
                    "error",
                    "Resize",
                    name,
                    f"{mode} resize scales dims {outer}: TensorRT resizes only the {limit} innermost dims in "
                    f"{mode} mode",
                )
        axes = _attr(node, "axes")
        if axes and scales_name and scales is None and list(axes) != list(range(len(axes))):
            self._add(
                "error",
                "Resize",
                name,
                f"axes={list(axes)} with a run-time 'scales' tensor: TensorRT needs axes to list every dim "
                f"in order (or constant scales)",
            )

    def _check_pad(self, node: onnx.NodeProto, name: str) -> None:
        mode = _attr(node, "mode", "constant")
        if mode not in PAD_MODES:
            self._add(
                "error",
                "Pad",
                name,
                f"pad mode '{mode}' is rejected by TensorRT (supported: {', '.join(sorted(PAD_MODES))})",
            )

    def _check_qdq(self, node: onnx.NodeProto, name: str) -> None:
        op = node.op_type
        int8 = self.onnx.TensorProto.INT8
        zero_point_name = _input(node, 2)
        if zero_point_name is not None:
            zp_type = self._elem_type(zero_point_name)
            if zp_type is not None and zp_type != int8:
                self._add(
                    "error",
                    op,
                    name,
                    f"zero-point type is {self._type_name(zp_type)}: TensorRT needs symmetric int8 "
                    f"(the parser re-reads a uint8 zero-point as int8, which shifts every value)",
                )
            zero_point = self._const(zero_point_name)
            if zero_point is None:
                self._add(
                    "warning",
                    op,
                    name,
                    "zero-point is computed at run time, so it cannot be proven 0; TensorRT rejects non-zero "
                    "zero-points",
                )
            elif zero_point.size and (zero_point != 0).any():
                first = zero_point.ravel()[(zero_point.ravel() != 0).argmax()]
                self._add(
                    "error",
                    op,
                    name,
                    f"non-zero zero-point ({first}): TensorRT supports only symmetric quantization, the "
                    f"zero-point must be 0",
                )
        elif op == "QuantizeLinear":
            output_dtype = _attr(node, "output_dtype", 0)
            if output_dtype == 0:
                self._add(
                    "error",
                    op,
                    name,
                    "no y_zero_point: ONNX then quantizes to uint8 while TensorRT quantizes to int8, so "
                    "results diverge; add an int8 zero-point of 0",
                )
            elif output_dtype != int8:
                self._add(
                    "error", op, name, f"output_dtype {self._type_name(output_dtype)}: TensorRT needs int8"
                )
        else:
            x_type = self._elem_type(_input(node, 0))
            if x_type is not None and x_type != int8:
                self._add(
                    "error", op, name, f"dequantizes {self._type_name(x_type)}: TensorRT needs symmetric int8"
                )

        scale = self._const(_input(node, 1))
        if scale is None:
            return
        if scale.size and (scale <= 0).any():
            self._add("error", op, name, "scales must all be positive for TensorRT")
        if scale.ndim == 1 and scale.size > 1:
            shape = self._shape(_input(node, 0))
            if shape:
                axis = int(_attr(node, "axis", 1))
                axis = axis + len(shape) if axis < 0 else axis
                channels = shape[axis] if 0 <= axis < len(shape) else None
                if isinstance(channels, int) and channels != scale.size:
                    self._add(
                        "error",
                        op,
                        name,
                        f"per-channel scale has {scale.size} values but axis {axis} has {channels} channels",
                    )

    def _check_cast(self, node: onnx.NodeProto, name: str) -> None:
        target = _attr(node, "to")
        if target is None:
            return
        type_name = self._type_name(int(target))
        if type_name == "DOUBLE":
            self._add("warning", "Cast", name, "Cast to DOUBLE: TensorRT narrows it to FLOAT")
        elif type_name not in CAST_TARGETS:
            self._add(
                "error",
                "Cast",
                name,
                f"Cast to {type_name} is not supported by TensorRT (quantized types need QuantizeLinear)",
            )

    def _check_depth_space(self, node: onnx.NodeProto, name: str) -> None:
        shape = self._shape(_input(node, 0))
        if shape is not None and len(shape) != 4:
            self._add("error", node.op_type, name, f"TensorRT needs a 4-D NCHW input, got rank {len(shape)}")
        if node.op_type == "DepthToSpace":
            mode = _attr(node, "mode", "DCR")
            if mode not in DEPTH_TO_SPACE_MODES:
                self._add("error", node.op_type, name, f"mode '{mode}' is neither DCR nor CRD")

    def _check_grid_sample(self, node: onnx.NodeProto, name: str) -> None:
        shape = self._shape(_input(node, 0))
        if shape is not None and len(shape) != 4:
            self._add(
                "warning",
                "GridSample",
                name,
                f"rank-{len(shape)} input: TensorRT 10.x supports 4-D only (5-D needs 11.2+)",
            )

    def _check_layer_norm(self, node: onnx.NodeProto, name: str) -> None:
        if any(node.output[1:]):
            self._add(
                "error",
                "LayerNormalization",
                name,
                "only output Y is supported by TensorRT; drop the Mean/InvStdDev outputs",
            )

    def _check_pool(self, node: onnx.NodeProto, name: str) -> None:
        if node.op_type == "MaxPool" and any(node.output[1:]):
            self._add("error", "MaxPool", name, "the Indices output is not supported by TensorRT")
        dilations = _attr(node, "dilations")
        if dilations and any(d != 1 for d in dilations):
            self._add("error", node.op_type, name, f"dilations {list(dilations)}: TensorRT pools need all 1")

    def _check_axes_input(self, node: onnx.NodeProto, name: str) -> None:
        axes = _input(node, 1)
        if axes is None or axes in self.consts:
            return
        if node.op_type.startswith("Reduce"):
            self._add(
                "error", node.op_type, name, "the axes input must be an initializer or Constant for TensorRT"
            )
        else:
            self._add(
                "warning",
                node.op_type,
                name,
                "the axes input is computed at run time; TensorRT needs it resolvable to a constant at "
                "build time",
            )


def _dim(dim: Any) -> int | str:
    """An ONNX dimension as an int when fixed, else its symbolic name (or '?')."""
    if dim.HasField("dim_value"):
        return int(dim.dim_value)
    return dim.dim_param or "?"


def _graphs(graph: onnx.GraphProto) -> Iterable[onnx.GraphProto]:
    """``graph`` and every subgraph nested in its nodes' attributes."""
    onnx = _onnx()
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _graphs(subgraph)
