"""Resumable training state in one safetensors file, written atomically; nothing is pickled.

Tensors (model, EMA, optimizer moments, torch RNG) are safetensors tensors under prefixes; everything else
(step, optimizer hyper-parameters, numpy/python RNG states, config) goes to the JSON metadata.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deblurrt.errors import CheckpointError
from deblurrt.train.checkpoint import atomic_write_bytes

STATE_FORMAT = "deblurrt.train_state/1"


def _optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optim.{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{param_id}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_from_flat(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optim."):
            _, param_id, key = name.split(".", 2)
            state.setdefault(int(param_id), {})[key] = tensor
    for name, value in meta["scalars"].items():
        param_id, key = name.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_training_state(path: Path, *, step: int, model: torch.nn.Module, ema: torch.nn.Module | None,
                        optimizer: torch.optim.Optimizer, extra: dict[str, Any],
                        modules: dict[str, torch.nn.Module] | None = None) -> None:
    """Write a complete resumable state to ``path`` (atomic: the previous file survives any crash)."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in {"model": model, "ema": ema, **(modules or {})}.items():
        if module is not None:
            for name, tensor in module.state_dict().items():
                tensors[f"{prefix}.{name}"] = tensor.detach().cpu().contiguous()
    optim_tensors, optim_meta = _optimizer_to_flat(optimizer)
    tensors.update(optim_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    np_state = np.random.get_state()
    meta = {
        "format": STATE_FORMAT,
        "step": step,
        "optimizer": optim_meta,
        "rng.numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "rng.python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "extra": extra,
    }
    atomic_write_bytes(path, save(tensors, metadata={"deblurrt.state": json.dumps(meta)}))


def load_training_state(path: Path, *, model: torch.nn.Module, ema: torch.nn.Module | None,
                        optimizer: torch.optim.Optimizer,
                        modules: dict[str, torch.nn.Module] | None = None) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote; returns the metadata (``step``, ``extra``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        data = path.read_bytes()
        tensors = load(data)
        header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
        meta = json.loads(header["__metadata__"]["deblurrt.state"])
    except (OSError, SafetensorError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not a readable deblurrt training state ({error})") from error
    if meta.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: expected format {STATE_FORMAT}, received {meta.get('format')}")
    for prefix, module in {"model": model, "ema": ema, **(modules or {})}.items():
        if module is None:
            continue
        state = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise CheckpointError(f"{path}: '{prefix}' weights do not match the configured model: {error}") from error
    _optimizer_from_flat(optimizer, tensors, meta["optimizer"])
    torch.set_rng_state(tensors["rng.torch"])
    np_state = meta["rng.numpy"]
    np.random.set_state((np_state[0], np.array(np_state[1], dtype=np.uint32), *np_state[2:]))
    py_state = meta["rng.python"]
    random.setstate((py_state[0], tuple(py_state[1]), py_state[2]))
    return meta
