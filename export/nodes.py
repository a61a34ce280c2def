"""Find the nodes of an exported deblurrt graph that precision conversions must treat specially.

Mixed precision is decided per node name: FP16 conversion keeps some nodes in FP32 and INT8 quantization
leaves some nodes unquantized. The rules live here so that both use the same definitions:

* normalisation: every node under a ``norm`` name scope (``.../norm1/ReduceMean`` - the PyTorch exporter
  names nodes after the module path, and ``LayerNorm2d`` modules are called ``norm*``), plus native
  normalisation ops;
* the first convolutions (those fed by the image with no convolution in between) and the last ones (those
  whose output reaches the network output with no convolution in between): they see or produce pixel
  values, where quantization error is directly visible;
* the output residual: the ``Add`` that adds the predicted residual to the input image.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from typing import Any

#: A ``norm``-named module scope anywhere in the node name, e.g. ``/encoders.0/encoders.0.0/norm1/Sqrt``.
NORM_SCOPE = re.compile(r"(^|/)norm[^/]*/")
NORM_OPS = frozenset({"LayerNormalization", "GroupNormalization", "InstanceNormalization",
                      "BatchNormalization", "RMSNormalization", "MeanVarianceNormalization", "LpNormalization"})
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
#: Ops that only move data: the output residual may sit behind them (e.g. DepthToSpace after the last conv).
LAYOUT_OPS = frozenset({"Identity", "Reshape", "DepthToSpace", "SpaceToDepth", "Transpose", "Squeeze",
                        "Unsqueeze", "Flatten", "Cast"})


def _names(nodes) -> list[str]:
    return [node.name for node in nodes if node.name]


def norm_nodes(graph: Any) -> list[str]:
    """Names of the normalisation nodes (``norm`` name scopes and native normalisation ops)."""
    return _names(n for n in graph.node if NORM_SCOPE.search(n.name or "") or n.op_type in NORM_OPS)


def weighted_nodes(graph: Any) -> list[str]:
    """Names of the nodes with weights (Conv, ConvTranspose, Gemm, MatMul), in graph order."""
    return _names(n for n in graph.node if n.op_type in WEIGHTED_OPS)


def _consumers(graph: Any) -> dict[str, list[Any]]:
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            if name:
                consumers[name].append(node)
    return consumers


def _producers(graph: Any) -> dict[str, Any]:
    return {out: node for node in graph.node for out in node.output if out}


def first_weighted_nodes(graph: Any) -> list[str]:
    """Weighted nodes reached from a graph input without passing through another weighted node."""
    consumers = _consumers(graph)
    initializers = {t.name for t in graph.initializer}
    queue = deque(v.name for v in graph.input if v.name not in initializers)
    seen: set[str] = set()
    found: list[str] = []
    while queue:
        for node in consumers.get(queue.popleft(), []):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.op_type in WEIGHTED_OPS:
                found.append(node.name)
            else:
                queue.extend(node.output)
    return found


def last_weighted_nodes(graph: Any) -> list[str]:
    """Weighted nodes that reach a graph output without passing through another weighted node."""
    producers = _producers(graph)
    queue = deque(v.name for v in graph.output)
    seen: set[str] = set()
    found: list[str] = []
    while queue:
        node = producers.get(queue.popleft())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type in WEIGHTED_OPS:
            found.append(node.name)
        else:
            queue.extend(node.input)
    return found


def output_residual_nodes(graph: Any) -> list[str]:
    """The ``Add`` nodes that produce a graph output, directly or behind layout-only ops."""
    producers = _producers(graph)
    found = []
    for output in graph.output:
        node = producers.get(output.name)
        while node is not None and node.op_type in LAYOUT_OPS:
            node = producers.get(node.input[0])
        if node is not None and node.op_type == "Add" and node.name:
            found.append(node.name)
    return found


def sensitive_nodes(graph: Any) -> dict[str, list[str]]:
    """The groups above by role: ``first``, ``last``, ``residual``, ``norm`` (each a list of node names)."""
    return {"first": first_weighted_nodes(graph), "last": last_weighted_nodes(graph),
            "residual": output_residual_nodes(graph), "norm": norm_nodes(graph)}


def ensure_node_names(graph: Any) -> int:
    """Give every unnamed node a unique name (``<op>_<index>``) so that name-based selection can see it.

    Returns how many nodes were named.
    """
    used = {node.name for node in graph.node if node.name}
    count = 0
    for index, node in enumerate(graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)
            count += 1
    return count
