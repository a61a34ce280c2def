"""NAFNet (Chen et al., ECCV 2022): a nonlinear-activation-free UNet of gated blocks.

Each block: channel LayerNorm, pointwise expansion, depthwise 3x3, SimpleGate (split and multiply),
simplified channel attention (global average pooling, pointwise conv, multiply), pointwise projection, a
learned residual scale; then a gated feed-forward part with its own scale. The LayerNorm is
:class:`~deblurrt.train.models.layers.LayerNorm2d` (no Pow; FP16 export pins it to FP32).
With a prior, a SPEL sits at the bottleneck and after every decoder skip.
"""

from __future__ import annotations

import torch
from torch import nn

from deblurrt.train.models.encdec import EncoderDecoderNet
from deblurrt.train.models.layers import LayerNorm2d, conv1x1, conv3x3
from deblurrt.train.models.prior import PriorConfig


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: NAFNet's replacement for an activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """The NAFNet block (expansion factor 2 in both halves)."""

    def __init__(self, channels: int, expansion: int = 2, layer_scale_init: float = 1e-2):
        super().__init__()
        hidden = channels * expansion
        self.norm1 = LayerNorm2d(channels)
        self.expand = conv1x1(channels, hidden)
        self.depthwise = conv3x3(hidden, hidden, groups=hidden)
        self.gate = SimpleGate()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.channel_attention = conv1x1(hidden // 2, hidden // 2)
        self.project = conv1x1(hidden // 2, channels)
        self.norm2 = LayerNorm2d(channels)
        self.ffn_expand = conv1x1(channels, hidden)
        self.ffn_project = conv1x1(hidden // 2, channels)
        # Learned residual scales. NAFNet starts them at zero; a small non-zero start keeps every block
        # near identity while letting gradients reach the block's convolutions from the first step.
        self.beta = nn.Parameter(torch.full((1, channels, 1, 1), layer_scale_init))
        self.gamma = nn.Parameter(torch.full((1, channels, 1, 1), layer_scale_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gate(self.depthwise(self.expand(self.norm1(x))))
        h = h * self.channel_attention(self.pool(h))
        y = x + self.project(h) * self.beta
        h = self.gate(self.ffn_expand(self.norm2(y)))
        return y + self.ffn_project(h) * self.gamma


class NAFNet(EncoderDecoderNet):
    """NAFNet of :class:`NAFBlock`; see :class:`~deblurrt.train.models.encdec.EncoderDecoderNet` for
    ``unshuffle`` and the prior. The defaults are NAFNet-w32 as trained on GoPro."""

    def __init__(self, width: int = 32, encoder_depths: tuple[int, ...] = (1, 1, 1, 28), middle_depth: int = 1,
                 decoder_depths: tuple[int, ...] = (1, 1, 1, 1), unshuffle: int = 1,
                 prior: PriorConfig | dict | None = None):
        super().__init__(NAFBlock, width, tuple(encoder_depths), middle_depth, tuple(decoder_depths), unshuffle,
                         prior)
