"""Plain UNet: the baseline backbone of the prior-embedded deblurring method (residual conv blocks)."""

from __future__ import annotations

from deblurrt.train.models.encdec import EncoderDecoderNet
from deblurrt.train.models.layers import ResBlock
from deblurrt.train.models.prior import PriorConfig


class UNet(EncoderDecoderNet):
    """UNet of :class:`~deblurrt.train.models.layers.ResBlock` (conv3x3-ReLU-conv3x3 + identity).

    ``depths`` blocks per encoder level and the same per decoder level; see
    :class:`~deblurrt.train.models.encdec.EncoderDecoderNet` for ``unshuffle`` and the prior;
    ``global_context`` adds a :class:`~deblurrt.train.models.layers.GlobalContext` after the middle blocks;
    ``blur_descriptor`` a :class:`~deblurrt.train.models.layers.BlurDescriptor` (FiLM of the bottleneck and the
    decoder levels by the input's gradient autocorrelation); ``coarse_guide`` a first pass at half resolution
    whose result guides the full-resolution pass, ``coarse_levels`` such passes nested (see
    :mod:`~deblurrt.train.models.encdec`).
    """

    def __init__(self, width: int = 32, depths: tuple[int, ...] = (1, 1, 1), middle_depth: int = 1,
                 unshuffle: int = 1, prior: PriorConfig | dict | None = None, global_context: bool = False,
                 blur_descriptor: bool = False, coarse_guide: bool = False, coarse_levels: int = 1):
        super().__init__(ResBlock, width, tuple(depths), middle_depth, tuple(depths), unshuffle, prior,
                         global_context, blur_descriptor, coarse_guide, coarse_levels)
