"""The model zoo: names that fully specify an architecture, ``<backbone>_<size>[_prior]``.

Backbones: ``unet`` (plain UNet, the baseline), ``mimo_unet`` (MIMO-UNet) and ``nafnet`` (NAFNet).
Sizes, one per deployment target:

- ``nano``  real time on a CPU (ONNX Runtime, 640x360): SpaceToDepth folding (2x2; 4x4 for NAFNet, whose
            many small ops are bound by memory traffic at fine scales), few channels, shared prior
            aggregation;
- ``small`` real time on a Jetson Orin at 1280x720 with TensorRT FP16: <= ~40 GMACs per 720p frame;
- ``base``  quality on desktop GPUs (NAFNet-w32 class);
- ``tiny``  test variants: a few thousand parameters, for unit tests only.

Each exists without and with the semantic prior (``_prior``: student encoder + SPEL); the twins share the
backbone arguments exactly. The sizes are our choices (the method's paper gives none); ``deblurrt models``
shows what each costs.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from deblurrt.errors import UnknownModelError
from deblurrt.train.models.mimo_unet import MIMOUNet
from deblurrt.train.models.nafnet import NAFNet
from deblurrt.train.models.prior import PriorConfig
from deblurrt.train.models.unet import UNet

BACKBONES: dict[str, type[nn.Module]] = {"unet": UNet, "mimo_unet": MIMOUNet, "nafnet": NAFNet}
SIZES = ("tiny", "nano", "small", "base")

# Prior branch per size: student channels at strides 4/8/16/32 and SPEL width.
PRIOR_BY_SIZE: dict[str, PriorConfig] = {
    "tiny": PriorConfig(channels=(8, 8, 8, 8), embed_dim=8, blocks_per_level=1),
    "nano": PriorConfig(channels=(16, 24, 32, 48), embed_dim=16, blocks_per_level=1, shared_aggregation=True),
    "small": PriorConfig(channels=(24, 32, 64, 96), embed_dim=24, blocks_per_level=1),
    "base": PriorConfig(channels=(32, 48, 96, 160), embed_dim=32, blocks_per_level=2),
}

# Backbone arguments per (backbone, size).
BACKBONE_ARGS: dict[tuple[str, str], dict[str, Any]] = {
    ("unet", "tiny"): {"width": 8, "depths": (1, 1), "middle_depth": 1, "unshuffle": 1},
    # the global context joined the nano in session 9 (+0.03-0.10 dB on every blur set, +3 dB on soft sharp
    # photos, MODELS.md); checkpoints store their own arguments, so earlier nanos rebuild without it
    ("unet", "nano"): {"width": 16, "depths": (1, 1, 1), "middle_depth": 1, "unshuffle": 2, "global_context": True},
    ("unet", "small"): {"width": 32, "depths": (1, 1, 1), "middle_depth": 1, "unshuffle": 2},
    ("unet", "base"): {"width": 32, "depths": (2, 2, 2, 2), "middle_depth": 2, "unshuffle": 1},
    ("mimo_unet", "tiny"): {"width": 8, "depth": 1, "unshuffle": 1},
    ("mimo_unet", "nano"): {"width": 16, "depth": 1, "unshuffle": 2},
    ("mimo_unet", "small"): {"width": 20, "depth": 2, "unshuffle": 2},
    ("mimo_unet", "base"): {"width": 32, "depth": 8, "unshuffle": 1},
    ("nafnet", "tiny"): {"width": 8, "encoder_depths": (1, 1), "middle_depth": 1, "decoder_depths": (1, 1),
                         "unshuffle": 1},
    ("nafnet", "nano"): {"width": 32, "encoder_depths": (1, 1, 2), "middle_depth": 2,
                         "decoder_depths": (1, 1, 1), "unshuffle": 4},
    ("nafnet", "small"): {"width": 32, "encoder_depths": (1, 2, 4), "middle_depth": 6,
                          "decoder_depths": (1, 1, 2), "unshuffle": 2},
    ("nafnet", "base"): {"width": 32, "encoder_depths": (1, 1, 1, 28), "middle_depth": 1,
                         "decoder_depths": (1, 1, 1, 1), "unshuffle": 1},
}


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: its name, backbone, size, whether it has the prior, and its arguments."""

    name: str
    backbone: str
    size: str
    prior: bool
    args: dict[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        """The JSON-able config stored in checkpoints and exported artefacts (enough to rebuild the net)."""
        return {"name": self.name, "backbone": self.backbone, "args": _jsonable(self.args)}


_REGISTRY: dict[str, ModelSpec] = {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, PriorConfig):
        return value.as_dict()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add an architecture to the zoo; names are unique."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model '{spec.name}' is already registered")
    if spec.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone '{spec.backbone}': expected one of {sorted(BACKBONES)}")
    _REGISTRY[spec.name] = spec
    return spec


def _register_zoo() -> None:
    for (backbone, size), args in BACKBONE_ARGS.items():
        register_model(ModelSpec(f"{backbone}_{size}", backbone, size, False, {**args, "prior": None}))
        register_model(ModelSpec(f"{backbone}_{size}_prior", backbone, size, True,
                                 {**args, "prior": PRIOR_BY_SIZE[size]}))


def list_models(include_tiny: bool = False) -> list[str]:
    """Registered names in zoo order (backbone, size, then no-prior before prior)."""
    return [name for name, spec in _REGISTRY.items() if include_tiny or spec.size != "tiny"]


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered name; an unknown name raises :class:`~deblurrt.errors.UnknownModelError` (a
    ``KeyError`` too) with the closest names."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model '{name}'.{hint} Run 'deblurrt models' for the list.")
    return _REGISTRY[name]


def build_model(config: dict[str, Any]) -> nn.Module:
    """Build a network from a stored config (``ModelSpec.config()``), with no registry lookup by name, so
    checkpoints stay loadable if the zoo's sizes change later."""
    backbone = config.get("backbone")
    if backbone not in BACKBONES:
        raise ValueError(f"model config: unknown backbone {backbone!r}, expected one of {sorted(BACKBONES)}")
    args = dict(config.get("args", {}))
    for key in ("depths", "encoder_depths", "decoder_depths"):
        if key in args:
            args[key] = tuple(args[key])
    model = BACKBONES[backbone](**args)
    model.config = {"name": config.get("name", backbone), "backbone": backbone, "args": _jsonable(args)}
    return model


def accepted_args(name: str) -> set[str]:
    """The arguments :func:`create_model` accepts for ``name``: the registered ones and every constructor
    argument of the backbone, also those the zoo leaves at their defaults (e.g. ``global_context``)."""
    spec = get_spec(name)
    return set(spec.args) | set(inspect.signature(BACKBONES[spec.backbone]).parameters)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered architecture, optionally overriding constructor arguments (recorded in
    ``model.config``, so a checkpoint of the result rebuilds exactly)."""
    spec = get_spec(name)
    accepted = accepted_args(name)
    unknown = set(overrides) - accepted
    if unknown:
        raise TypeError(f"{name}: unknown argument(s) {sorted(unknown)}; expected some of {sorted(accepted)}")
    config = spec.config()
    config["args"].update(_jsonable(overrides))
    return build_model(config)


_register_zoo()
