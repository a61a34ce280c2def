"""The JSON sidecar next to a TensorRT engine (``model.engine`` -> ``model.engine.json``).

An engine cannot carry deblurrt's metadata, so export writes it beside the engine and the runtime reads it.
Both use this one module, so the format is defined once::

    {"format": "deblurrt-engine-sidecar/1",
     "metadata": {"deblurrt.model": "unet_nano_prior", "deblurrt.pad_multiple": "32", ...},  # ONNX metadata_props
     "profiles": [{"blurry": {"min": [1, 3, 736, 1280], "opt": [1, 3, 736, 1280], "max": [1, 3, 736, 1280]}}],
     ...extra keys: tensorrt, gpu, precision, dla_core, profile_names, onnx}

The profiles inside the engine are authoritative; the sidecar's let CPU-only tools describe an engine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deblurrt.errors import DeblurrtError
from deblurrt.outputs import write_text_atomic

SIDECAR_FORMAT = "deblurrt-engine-sidecar/1"

#: ``{input_name: {"min": shape, "opt": shape, "max": shape}}``, one per optimisation profile
ProfileShapes = Mapping[str, Mapping[str, Sequence[int]]]


def sidecar_path(engine_path: str | Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def sidecar_document(metadata: Mapping[str, str], profiles: Sequence[ProfileShapes], **extra: Any) -> dict[str, Any]:
    """The sidecar's content: the ONNX metadata, the profiles (checked: 4-D, min <= opt <= max), ``extra``."""
    checked = []
    for index, profile in enumerate(profiles):
        entry = {}
        for name, ranges in profile.items():
            try:
                shapes = {key: [int(v) for v in ranges[key]] for key in ("min", "opt", "max")}
            except (KeyError, TypeError, ValueError) as error:
                raise DeblurrtError(f"engine profile {index} of {name!r} needs integer lists 'min', 'opt' and "
                                    f"'max', received {ranges!r}") from error
            if not all(len(s) == 4 for s in shapes.values()) or not all(
                    a <= b <= c for a, b, c in zip(shapes["min"], shapes["opt"], shapes["max"], strict=True)):
                raise DeblurrtError(f"engine profile {index} of {name!r} must be 4-D with min <= opt <= max, "
                                    f"received {shapes}")
            entry[str(name)] = shapes
        checked.append(entry)
    return {"format": SIDECAR_FORMAT, "metadata": {str(k): str(v) for k, v in metadata.items()},
            "profiles": checked, **extra}


def write_sidecar(engine_path: str | Path, metadata: Mapping[str, str], profiles: Sequence[ProfileShapes],
                  **extra: Any) -> Path:
    """Write ``<engine>.json`` (see :func:`sidecar_document`); returns its path."""
    path = sidecar_path(engine_path)
    document = sidecar_document(metadata, profiles, **extra)
    return write_text_atomic(path, json.dumps(document, indent=2, sort_keys=True) + "\n")


def read_sidecar(engine_path: str | Path) -> dict[str, Any]:
    """Parse and validate ``<engine>.json``; raises :class:`DeblurrtError` saying what is missing or wrong."""
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise DeblurrtError(
            f"{path} not found: a TensorRT engine needs its metadata sidecar (pad multiple, IO names, "
            "profiles) next to it. Fix: rebuild the engine with 'deblurrt export --format engine' (which writes "
            "the sidecar), or write one with deblurrt.sidecar.write_sidecar(engine, onnx_metadata, profiles)")
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DeblurrtError(f"{path} is not valid JSON ({error}). Fix: rewrite it with write_sidecar") from error
    if not isinstance(document, dict) or not isinstance(document.get("metadata"), dict):
        raise DeblurrtError(f"{path} has no 'metadata' object (format {SIDECAR_FORMAT} expected)")
    if document.get("format") != SIDECAR_FORMAT:
        raise DeblurrtError(f"{path}: format {document.get('format')!r}, expected {SIDECAR_FORMAT!r}. Fix: rebuild "
                            "the engine with this version of deblurrt")
    if not isinstance(document.get("profiles", []), list):
        raise DeblurrtError(f"{path}: 'profiles' must be a list of {{input: {{min, opt, max}}}}")
    return document
