"""FP16 ONNX with FP32 islands: the form TensorRT's strongly typed networks build as mixed precision.

TensorRT 11 (and 10.x with ``STRONGLY_TYPED``) runs every layer in the type the ONNX graph gives it, so
precision is decided here, not by builder flags. ``onnxconverter-common`` converts the graph to FP16 and
inserts Casts around the nodes it is told to keep in FP32:

* normalisation subgraphs (NAFNet's channel LayerNorm: ReduceMean/Sub/Mul/Sqrt/Div): the mean of squares
  overflows FP16's 65504 as soon as activations exceed ~256, a known source of NaN/Inf in FP16 restoration
  nets;
* any other op of the audit's FP16-sensitive list (``ReduceMean``, ``Pow``, ``Sqrt``, ...) wherever it is;
* global pooling (``GlobalAveragePool``, ``ReduceSum``): a mean over a whole 1080p feature map accumulated
  in FP16 loses the low bits of every term;
* optionally the output residual ``x + r`` (``keep_output_residual``): with FP32 I/O the input image then
  reaches the output at full precision, and only the predicted residual carries FP16 rounding.

DLA builds (``keep_islands=False``) keep no FP32 island at all: DLA runs FP16/INT8 only, and every FP32
island would split the DLA graph into pieces with GPU layers in between.

:func:`int8_float16` applies the same conversion to an INT8 Q/DQ graph (INT8 + FP16): under strong typing
every op that is not quantized keeps the graph's type, so a Q/DQ graph from ONNX Runtime's quantizer runs all
of them in FP32 -- and an "INT8" engine may then be slower than the FP16 one. The Q/DQ pairs and the
quantized ops reading them stay as they are (TensorRT fuses them into INT8 kernels); everything else (the
first and last convolution, activations, additions, upsampling) becomes FP16, with Casts at the borders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deblurrt.errors import MissingDependencyError
from deblurrt.export.nodes import ensure_node_names, norm_nodes, output_residual_nodes

#: Ops kept in FP32 wherever they appear (beyond the norm scopes): overflow- or accumulation-prone.
FP32_OPS = frozenset({"ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "Pow", "Sqrt",
                      "GlobalAveragePool", "LayerNormalization", "GroupNormalization",
                      "InstanceNormalization", "RMSNormalization", "MeanVarianceNormalization"})


@dataclass
class FP16Result:
    """What :func:`convert_fp16` did: the path written and the nodes kept in FP32 (by reason)."""

    path: Path
    keep_io_types: bool
    fp32_nodes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def fp32_count(self) -> int:
        """Number of distinct nodes kept in FP32."""
        return len({name for names in self.fp32_nodes.values() for name in names})

    def format(self) -> str:
        """One line per reason with the node counts."""
        io = "FP32 I/O (casts at the edges)" if self.keep_io_types else "FP16 I/O"
        parts = [f"{reason}: {len(names)}" for reason, names in self.fp32_nodes.items() if names]
        return f"FP16 graph, {io}; kept in FP32: {self.fp32_count} nodes ({', '.join(parts) or 'none'})"


def fp32_island_nodes(graph, keep_output_residual: bool = True) -> dict[str, list[str]]:
    """Names of the nodes to keep in FP32, grouped by reason (``norm``, ``sensitive_ops``, ``residual``)."""
    norm = norm_nodes(graph)
    norm_set = set(norm)
    sensitive = [n.name for n in graph.node if n.op_type in FP32_OPS and n.name not in norm_set]
    residual = output_residual_nodes(graph) if keep_output_residual else []
    return {"norm": norm, "sensitive_ops": sensitive, "residual": residual}


def _float16_module():
    try:
        from onnxconverter_common import float16
    except ImportError as error:
        raise MissingDependencyError("onnxconverter-common", "FP16 export", "pip install 'deblurrt[export]'") \
            from error
    return float16


def _convert(proto, keep_io_types: bool, block: list[str]):
    """onnxconverter-common's FP16 conversion with ``block`` kept in FP32, then deblurrt's clean-ups."""
    float16 = _float16_module()
    converted = float16.convert_float_to_float16(
        proto, keep_io_types=keep_io_types, node_block_list=block,
        # The converter's default op block list minus Resize: TensorRT and ONNX Runtime (>= 1.17) run
        # Resize in FP16, and an FP32 island around every upsampling would cost two casts each.
        op_block_list=[op for op in float16.DEFAULT_OP_BLOCK_LIST if op != "Resize"],
    )
    _restore_fp32_parameters(converted.graph)
    _remove_cast_round_trips(converted)
    return converted


def convert_fp16(src: str | Path, dst: str | Path, keep_io_types: bool = True,
                 keep_output_residual: bool = True, extra_fp32_nodes: list[str] | None = None,
                 keep_islands: bool = True) -> FP16Result:
    """Write an FP16 copy of the FP32 ONNX ``src`` to ``dst`` with the risky nodes kept in FP32.

    ``keep_io_types=True`` keeps the ``blurry``/``sharp`` tensors FP32 (casts inside the graph: drop-in
    for FP32 callers); False makes them FP16 (half the copy bandwidth; the runtime must feed float16,
    which the metadata key ``deblurrt.io_dtype`` tells it). ``extra_fp32_nodes`` adds node names.
    ``keep_islands=False`` (DLA) keeps nothing in FP32: FP16 end to end.
    """
    import onnx

    from deblurrt.export.onnx_export import read_metadata, set_metadata

    _float16_module()  # fail before loading the model when the converter is missing
    src, dst = Path(src), Path(dst)
    proto = onnx.load(str(src))
    ensure_node_names(proto.graph)
    islands = fp32_island_nodes(proto.graph, keep_output_residual) if keep_islands else {}
    if extra_fp32_nodes:
        islands["requested"] = list(extra_fp32_nodes)
    block = sorted({name for names in islands.values() for name in names})
    metadata = read_metadata(proto)
    converted = _convert(proto, keep_io_types, block)
    metadata.update({
        "deblurrt.precision": "fp16",
        "deblurrt.io_dtype": "float32" if keep_io_types else "float16",
        "deblurrt.fp16.fp32_nodes": str(len(block)),
    })
    set_metadata(converted, metadata)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(dst))
    return FP16Result(dst, keep_io_types, islands)


QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def int8_float16(src: str | Path, dst: str | Path, keep_io_types: bool = True,
                 keep_islands: bool = True) -> FP16Result:
    """INT8 + FP16: the float parts of the Q/DQ graph ``src`` in FP16, written to ``dst`` (may be ``src``).

    Kept as they are: the Q/DQ nodes and the ops reading a DequantizeLinear output (the quantized
    convolutions, which TensorRT fuses with their Q/DQ into INT8 kernels), and with ``keep_islands`` the
    FP32 islands :func:`convert_fp16` keeps (normalisations, reductions, the output residual). The metadata
    gains ``deblurrt.int8.float_dtype = fp16``; ``deblurrt.precision`` stays ``int8``.
    """
    import onnx

    from deblurrt.export.onnx_export import read_metadata, set_metadata

    _float16_module()
    src, dst = Path(src), Path(dst)
    proto = onnx.load(str(src))
    ensure_node_names(proto.graph)
    weights = {t.name for t in proto.graph.initializer} | {
        node.output[0] for node in proto.graph.node if node.op_type == "Constant"}
    # The INT8 kernels are the ops reading a dequantized weight. Other readers of a dequantized activation
    # (an Add or Concat beside a quantized convolution) become FP16 behind a Cast like the rest.
    dequantized_weights = {node.output[0] for node in proto.graph.node
                           if node.op_type == "DequantizeLinear" and node.input[0] in weights}
    islands: dict[str, list[str]] = {
        "qdq": [node.name for node in proto.graph.node if node.op_type in QDQ_OPS],
        "int8": [node.name for node in proto.graph.node
                 if node.op_type not in QDQ_OPS and any(name in dequantized_weights for name in node.input)],
    }
    if keep_islands:
        islands.update(fp32_island_nodes(proto.graph))
    block = sorted({name for names in islands.values() for name in names})
    metadata = read_metadata(proto)
    converted = _convert(proto, keep_io_types, block)
    metadata.update({
        "deblurrt.int8.float_dtype": "fp16",
        "deblurrt.io_dtype": "float32" if keep_io_types else "float16",
        "deblurrt.fp16.fp32_nodes": str(sum(len(v) for k, v in islands.items() if k not in ("qdq", "int8"))),
    })
    set_metadata(converted, metadata)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(dst))
    return FP16Result(dst, keep_io_types, islands)


#: Inputs that ONNX requires in float32 whatever the data type (op type -> input indices): Resize's roi and
#: scales. The converter turns the constants feeding them into float16, which the checker then rejects.
_FLOAT32_ONLY_INPUTS = {"Resize": (1, 2)}


def _restore_fp32_parameters(graph) -> None:
    """Turn the float16 constants feeding float32-only inputs (Resize scales) back into float32."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    initializers = {t.name: t for t in graph.initializer}
    constants = {node.output[0]: node for node in graph.node if node.op_type == "Constant"}
    value_infos = {info.name: info for info in graph.value_info}
    for node in graph.node:
        for index in _FLOAT32_ONLY_INPUTS.get(node.op_type, ()):
            name = node.input[index] if index < len(node.input) else ""
            if not name:
                continue
            if name in initializers and initializers[name].data_type == TensorProto.FLOAT16:
                value = numpy_helper.to_array(initializers[name]).astype(np.float32)
                initializers[name].CopyFrom(numpy_helper.from_array(value, name))
            elif name in constants:
                for attribute in constants[name].attribute:
                    if attribute.name == "value" and attribute.t.data_type == TensorProto.FLOAT16:
                        value = numpy_helper.to_array(attribute.t).astype(np.float32)
                        attribute.t.CopyFrom(numpy_helper.from_array(value, attribute.t.name))
            if name in value_infos and value_infos[name].type.tensor_type.elem_type == TensorProto.FLOAT16:
                value_infos[name].type.tensor_type.elem_type = TensorProto.FLOAT


def _remove_cast_round_trips(model) -> int:
    """Bypass FP32 -> FP16 -> FP32 Cast pairs the converter leaves between neighbouring FP32 nodes.

    When an FP32 island's tensor feeds several nodes, the converter casts it to FP16 once and back to FP32
    for each FP32 consumer: the value is rounded to FP16 inside the island (the eps of a LayerNorm becomes
    a subnormal) for nothing. Consumers are rewired to the original FP32 tensor; Casts left without a
    consumer are dropped. Returns the number of Casts removed.
    """
    import onnx
    from onnx import TensorProto

    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(graph.input) + list(graph.output)}
    types |= {t.name: t.data_type for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            types[node.output[0]] = node.attribute[0].t.data_type

    def cast_to(node) -> int | None:
        return next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None

    producers = {out: node for node in graph.node for out in node.output}
    rename: dict[str, str] = {}
    for node in graph.node:
        source = producers.get(node.input[0]) if node.input else None
        if (cast_to(node) == TensorProto.FLOAT and source is not None and cast_to(source) == TensorProto.FLOAT16
                and types.get(source.input[0]) == TensorProto.FLOAT):
            rename[node.output[0]] = source.input[0]
    outputs = {v.name for v in graph.output}
    rename = {old: new for old, new in rename.items() if old not in outputs}
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in rename:
                node.input[index] = rename[name]
    used = {name for node in graph.node for name in node.input} | outputs
    keep = [node for node in graph.node if node.op_type != "Cast" or node.output[0] in used]
    removed = len(graph.node) - len(keep)
    # Removing a Cast can orphan the FP16 Cast before it: repeat until nothing changes.
    while removed and len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)
        used = {name for node in graph.node for name in node.input} | outputs
        keep = [node for node in graph.node if node.op_type != "Cast" or node.output[0] in used]
        removed += len(graph.node) - len(keep)
    stale = set(rename)
    kept_info = [info for info in graph.value_info if info.name not in stale]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    return removed
