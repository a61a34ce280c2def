"""Export a deblurring network to ONNX: dynamic batch, height and width; metadata inside the file.

The teacher and training-only heads are never part of the exported graph: the export traces
``model(x)``, the deployable full-resolution output only.
"""

from __future__ import annotations

import json
import warnings
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
        "deblurrt.version": __version__,
        "torch.version": torch.__version__,
        "onnx.version": onnx.__version__,
    }


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
