"""Checkpoints: safetensors weights with the model config embedded.

``save_model`` writes ``model.config`` (name, backbone, arguments) into the safetensors header, so
``load_model(path)`` rebuilds the network with no YAML. Writes are atomic (temporary file, fsync, rename):
an interrupted save never leaves a truncated checkpoint behind. Nothing here unpickles anything.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from deblurrt import __version__
from deblurrt.errors import CheckpointError

CONFIG_KEY = "deblurrt.config"
FORMAT_KEY = "deblurrt.format"
VERSION_KEY = "deblurrt.version"
FORMAT_VERSION = "1"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp_path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def provenance(metadata: dict[str, str]) -> dict[str, str]:
    """The ``deblurrt.*`` metadata of a checkpoint that a rewritten copy of it keeps (soup parts, step, ...): all
    but what :func:`save_model` writes itself (config, format, version), which describe the copy."""
    return {key: value for key, value in metadata.items() if key.startswith("deblurrt.") and
            key not in (CONFIG_KEY, FORMAT_KEY, VERSION_KEY)}


def save_model(model, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
    """Save the weights of ``model`` (which must carry ``model.config``) as safetensors, atomically."""
    from safetensors.torch import save

    path = Path(path)
    config = getattr(model, "config", None)
    if not config:
        raise CheckpointError(f"{path}: the model has no 'config' attribute; build it with "
                              "deblurrt.train.models.create_model so that the checkpoint can rebuild it")
    # safetensors refuses shared storage; contiguous copies keep the file self-contained.
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    metadata = {CONFIG_KEY: json.dumps(config, sort_keys=True), FORMAT_KEY: FORMAT_VERSION, VERSION_KEY: __version__}
    metadata.update(extra_metadata or {})
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Read (config, state_dict, metadata) from a deblurrt safetensors checkpoint, with clear errors."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: expected a .safetensors checkpoint, received '{path.suffix}'. deblurrt "
                              "never unpickles .pt/.pth files; convert trusted ones with "
                              "torch.load(weights_only=True) and save_model")
    data = path.read_bytes()
    try:
        state_dict = load(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: unreadable or truncated safetensors file ({error})") from error
    header_size = int.from_bytes(data[:8], "little")
    config, metadata = _config_from_header(path, data[8:8 + header_size])
    return config, state_dict, metadata


def read_checkpoint_config(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Read (config, metadata) of a deblurrt checkpoint from its header alone, without loading the weights."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as handle:
        size_bytes = handle.read(8)
        header_size = int.from_bytes(size_bytes, "little") if len(size_bytes) == 8 else -1
        # a header beyond the file (or absurdly large) means the file is not safetensors
        if not 0 < header_size <= min(path.stat().st_size - 8, 100_000_000):
            raise CheckpointError(f"{path}: unreadable or truncated safetensors file (bad header size)")
        header_bytes = handle.read(header_size)
    return _config_from_header(path, header_bytes)


def _config_from_header(path: Path, header_bytes: bytes) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        header = json.loads(header_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: unreadable safetensors header ({error})") from error
    metadata = header.get("__metadata__", {}) or {}
    if CONFIG_KEY not in metadata:
        raise CheckpointError(f"{path}: no '{CONFIG_KEY}' in the safetensors metadata; this file was not written "
                              "by deblurrt.save_model, so the architecture is unknown")
    try:
        config = json.loads(metadata[CONFIG_KEY])
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: the embedded model config is not valid JSON ({error})") from error
    return config, metadata


def load_model(path: str | Path, device: str = "cpu"):
    """Rebuild the network stored in ``path`` and load its weights (strict: every tensor must match)."""
    from deblurrt.train.models.registry import build_model

    config, state_dict, _ = read_checkpoint(path)
    try:
        model = build_model(config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot build the embedded model config {config}: {error}") from error
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(f"{k}: expected {tuple(expected[k].shape)}, received {tuple(state_dict[k].shape)}"
                         for k in set(expected) & set(state_dict) if expected[k].shape != state_dict[k].shape)
    if missing or unexpected or wrong_shape:
        def first(items: list[str]) -> str:
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")

        problems = [f"{label}: {first(items)}" for label, items in
                    (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong_shape)) if items]
        raise CheckpointError(f"{path}: weights do not match model '{config.get('name')}': " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)
    return model.to(device).eval()


def average_checkpoints(paths: list[str | Path], weights: list[float] | None = None):
    """A weighted average of the weights of checkpoints of one architecture (a "model soup"): the returned
    model holds ``sum(w_i * theta_i) / sum(w_i)`` for every floating-point tensor. Meant for checkpoints of
    one lineage (a run and its continuation), whose average often beats each of them; checkpoints trained
    apart do not share a basin and average badly. Integer buffers come from the first checkpoint."""
    if not paths:
        raise CheckpointError("average_checkpoints: no checkpoint given")
    weights = [1.0] * len(paths) if weights is None else list(weights)
    if len(weights) != len(paths):
        raise CheckpointError(f"average_checkpoints: {len(paths)} checkpoints but {len(weights)} weights")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise CheckpointError(f"average_checkpoints: weights must be >= 0 with a positive sum, received {weights}")
    first_config = read_checkpoint(paths[0])[0]
    model = load_model(paths[0])
    total = sum(weights)
    average = {name: tensor.double() * (weights[0] / total) if tensor.is_floating_point() else tensor.clone()
               for name, tensor in model.state_dict().items()}
    for path, weight in zip(paths[1:], weights[1:], strict=True):
        config, state_dict, _ = read_checkpoint(path)
        if config != first_config:
            raise CheckpointError(f"average_checkpoints: {path} holds '{config.get('name')}' {config}, "
                                  f"expected the architecture of {paths[0]}: {first_config}")
        for name, tensor in average.items():
            if tensor.is_floating_point():
                tensor += state_dict[name].double() * (weight / total)
    reference = model.state_dict()
    model.load_state_dict({name: tensor.to(reference[name].dtype) for name, tensor in average.items()})
    return model
