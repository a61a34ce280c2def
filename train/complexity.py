"""Model cost: parameter count and multiply-accumulates per frame, counted without running the network.

MACs are counted by torch's ``FlopCounterMode`` on the ``meta`` device: exact for convolutions and matrix
products (depthwise and grouped convolutions included), instant even for 1080p, and no memory is allocated.
Element-wise ops, normalisation and resampling are not counted, as in the usual GMAC figures of papers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class ModelCost:
    """Parameters and GMACs per frame at one resolution (height x width, before padding)."""

    params: int
    gmacs: float
    height: int
    width: int


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(parameter.numel() for parameter in model.parameters())


def measure_cost(name_or_config: str | dict, height: int = 720, width: int = 1280) -> ModelCost:
    """Parameters and GMACs of a registered model (name) or a stored config, for one frame of the given size.

    The frame is padded to the model's multiple first, as the runtime does.
    """
    from deblurrt.train.models.registry import build_model, create_model

    with torch.device("meta"):
        model = create_model(name_or_config) if isinstance(name_or_config, str) else build_model(name_or_config)
        multiple = model.pad_multiple
        padded = torch.empty(1, 3, -(-height // multiple) * multiple, -(-width // multiple) * multiple)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(padded)
    return ModelCost(count_parameters(model), counter.get_total_flops() / 2e9, height, width)
