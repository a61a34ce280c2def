"""Triton Inference Server model repositories: ``<repo>/<name>/config.pbtxt`` and ``<name>/1/model.*``.

Triton's ``max_batch_size > 0`` means the batch dimension is implicit: ``dims`` list only C, H, W, with
-1 for the dynamic height and width (deblurrt models take any multiple of their pad multiple). Dynamic
batching lets Triton group frames from several cameras into one inference.

A TensorRT plan with several optimisation profiles (one per camera resolution by default) lists them all in
its instance group's ``profile`` field: without it Triton uses profile 0 only, and an engine with the
640x360, 1280x720 and 1920x1080 profiles would reject 720p and 1080p requests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from deblurrt.errors import DeblurrtError

PLATFORMS = {"onnxruntime": ("onnxruntime_onnx", "model.onnx"), "tensorrt": ("tensorrt_plan", "model.plan")}
TRITON_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16"}


def triton_config(name: str, platform: str, input_name: str, output_name: str, io_dtype: str = "float32",
                  max_batch_size: int = 8, max_queue_delay_us: int = 2000, gpu: bool = True,
                  metadata: dict[str, str] | None = None, profile_count: int = 0) -> str:
    """The text of ``config.pbtxt`` for a deblurrt model (protobuf text format).

    ``profile_count``: the optimisation profiles of a TensorRT plan, all listed in the instance group so
    that Triton may pick any of them per request (0: leave the field out, as for ONNX models).
    """
    if platform not in PLATFORMS:
        raise DeblurrtError(f"unknown Triton platform '{platform}'. Fix: one of {', '.join(PLATFORMS)}.")
    if io_dtype not in TRITON_DTYPES:
        raise DeblurrtError(f"unsupported I/O dtype '{io_dtype}' for Triton (float32 or float16)")
    if max_batch_size < 1:
        raise DeblurrtError(f"Triton max_batch_size must be >= 1, received {max_batch_size}")
    if profile_count < 0 or (profile_count and platform != "tensorrt"):
        raise DeblurrtError(f"optimization profiles apply to TensorRT plans only, received {profile_count} for "
                            f"platform '{platform}'")
    dtype = TRITON_DTYPES[io_dtype]
    preferred = sorted({b for b in (1, 2, 4, 8, 16) if b <= max_batch_size} | {max_batch_size})
    lines = [
        f'name: "{name}"',
        f'platform: "{PLATFORMS[platform][0]}"',
        f"max_batch_size: {max_batch_size}",
        "input [",
        "  {",
        f'    name: "{input_name}"',
        f"    data_type: {dtype}",
        "    dims: [ 3, -1, -1 ]",
        "  }",
        "]",
        "output [",
        "  {",
        f'    name: "{output_name}"',
        f"    data_type: {dtype}",
        "    dims: [ 3, -1, -1 ]",
        "  }",
        "]",
        "dynamic_batching {",
        f"  preferred_batch_size: [ {', '.join(str(b) for b in preferred)} ]",
        f"  max_queue_delay_microseconds: {max_queue_delay_us}",
        "}",
        "instance_group [",
        "  {",
        "    count: 1",
        f"    kind: {'KIND_GPU' if gpu else 'KIND_CPU'}",
    ]
    if profile_count:
        lines.append(f"    profile: [ {', '.join(f'{chr(34)}{i}{chr(34)}' for i in range(profile_count))} ]")
    lines += [
        "  }",
        "]",
    ]
    for key, value in sorted((metadata or {}).items()):
        # Triton keeps free-form parameters; the runtime metadata (pad multiple, value range) travels with it.
        if key.startswith("deblurrt.") and key != "deblurrt.config":
            escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
            lines += ["parameters {", f'  key: "{key}"', f'  value: {{ string_value: "{escaped}" }}', "}"]
    return "\n".join(lines) + "\n"


def write_triton_repo(repo: str | Path, name: str, model_file: str | Path, platform: str,
                      input_name: str, output_name: str, io_dtype: str = "float32", max_batch_size: int = 8,
                      metadata: dict[str, str] | None = None, gpu: bool = True, profile_count: int = 0) -> Path:
    """Write ``<repo>/<name>/config.pbtxt`` and copy ``model_file`` to ``<repo>/<name>/1/model.onnx|plan``.

    Returns the model's folder. An existing version 1 of the same model is replaced. ``profile_count``: the
    plan's optimisation profiles (all listed in the config; see :func:`triton_config`).
    """
    if not name or "/" in name or name in {".", ".."}:
        raise DeblurrtError(f"bad Triton model name '{name}'. Fix: --name with letters, digits, '_' or '-'.")
    folder = Path(repo) / name
    version = folder / "1"
    version.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_file, version / PLATFORMS[platform][1])
    text = triton_config(name, platform, input_name, output_name, io_dtype, max_batch_size,
                         metadata=metadata, gpu=gpu, profile_count=profile_count)
    (folder / "config.pbtxt").write_text(text, encoding="utf-8")
    return folder
