"""Deblurring networks: UNet, MIMO-UNet and NAFNet backbones, with and without the semantic prior."""

from deblurrt.train.models.mimo_unet import MIMOUNet
from deblurrt.train.models.nafnet import NAFNet
from deblurrt.train.models.prior import SPEL, PriorConfig, PriorEmbeddedNet, PriorEncoder
from deblurrt.train.models.registry import (
    BACKBONES,
    ModelSpec,
    build_model,
    create_model,
    get_spec,
    list_models,
    register_model,
)
from deblurrt.train.models.unet import UNet

__all__ = [
    "BACKBONES", "MIMOUNet", "ModelSpec", "NAFNet", "PriorConfig", "PriorEmbeddedNet", "PriorEncoder", "SPEL",
    "UNet", "build_model", "create_model", "get_spec", "list_models", "register_model",
]
