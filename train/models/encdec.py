"""The encoder-decoder skeleton shared by the UNet and NAFNet backbones.

Encoder levels of blocks with 2x2 stride-2 downsampling, a bottleneck, a decoder with PixelShuffle
upsampling and additive skips, and a global residual (the network predicts sharp - blurry).
``unshuffle > 1`` folds ``unshuffle x unshuffle`` pixel blocks into channels at the input (SpaceToDepth,
merged into the first conv, see :func:`~deblurrt.train.models.layers.folded_conv`) and unfolds them at the
output (DepthToSpace): the network then works at reduced resolution, which is what
makes the CPU-real-time ``nano`` sizes possible. With a prior, a SPEL sits at the bottleneck and after
every decoder skip.

``coarse_guide`` runs the same network first on the input at half resolution (2x2 average) and gives the
fine pass the coarse result's correction, upsampled onto the input, as a second input (through its own first
convolution, zero-initialised: the identity until trained). A streak of 40-80 px is 20-40 px at half
resolution, within the reach of the network's receptive field; the weights are shared, so the option adds no
parameters beyond that convolution and about a quarter of the compute. ``coarse_levels=k`` (with the guide)
nests it: the half-resolution pass is itself guided by a quarter-resolution pass, and so on k levels down, each
coarser pass guiding the next finer one through the same convolution, so that a 40-80 px streak is 10-20 px at
the coarsest of two levels. It adds no parameters at all (trained weights load unchanged); the second level
costs 1/16 of the full pass's compute (a third 1/64), and the padding multiple doubles per level.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deblurrt.train.models.layers import (
    BlurDescriptor,
    Downsample,
    GlobalContext,
    Upsample,
    conv3x3,
    folded_conv,
    resample,
)
from deblurrt.train.models.prior import PriorConfig, PriorEmbeddedNet


class EncoderDecoderNet(PriorEmbeddedNet):
    """Encoder-decoder of ``block(channels)`` modules; level ``i`` has ``width * 2**i`` channels."""

    def __init__(self, block: Callable[[int], nn.Module], width: int, encoder_depths: tuple[int, ...],
                 middle_depth: int, decoder_depths: tuple[int, ...], unshuffle: int,
                 prior: PriorConfig | dict | None, global_context: bool = False, blur_descriptor: bool = False,
                 coarse_guide: bool = False, coarse_levels: int = 1):
        super().__init__(prior)
        if len(encoder_depths) != len(decoder_depths):
            raise ValueError(f"{type(self).__name__}: encoder and decoder need the same number of levels, "
                             f"received {len(encoder_depths)} and {len(decoder_depths)}")
        if unshuffle < 1:
            raise ValueError(f"{type(self).__name__}: unshuffle must be >= 1, received {unshuffle}")
        if coarse_levels < 1:
            raise ValueError(f"{type(self).__name__}: coarse_levels must be >= 1 (the coarser passes under the "
                             f"coarse guide), received {coarse_levels}")
        if coarse_levels > 1 and not coarse_guide:
            raise ValueError(f"{type(self).__name__}: coarse_levels={coarse_levels} nests the coarse guide, which is "
                             "off; set coarse_guide: true as well")
        self.num_levels = len(encoder_depths)
        self.coarse_levels = coarse_levels if coarse_guide else 0
        # every coarse pass needs its input (1/2, 1/4, ... of the padded one) at the backbone's multiple too
        self.backbone_multiple = unshuffle * 2**self.num_levels * 2**self.coarse_levels
        self.intro = folded_conv(3, width, unshuffle)
        # absent when off, so the weights of nets without it load unchanged; zero so that it starts as the identity
        self.guide_intro = folded_conv(3, width, unshuffle) if coarse_guide else None
        if self.guide_intro is not None:
            nn.init.zeros_(self.guide_intro.weight)
            nn.init.zeros_(self.guide_intro.bias)
        self.unfold = nn.PixelShuffle(unshuffle) if unshuffle > 1 else nn.Identity()
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        channels = width
        for depth in encoder_depths:
            self.encoders.append(nn.Sequential(*[block(channels) for _ in range(depth)]))
            self.downs.append(Downsample(channels, channels * 2))
            channels *= 2
        self.middle = nn.Sequential(*[block(channels) for _ in range(middle_depth)])
        # absent (not an identity module) when off, so the weights of nets without it load unchanged
        self.context = GlobalContext(channels) if global_context else None
        self._add_spel("middle", unshuffle * 2**self.num_levels, channels)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(self.num_levels)):
            self.ups.append(Upsample(channels, channels // 2))
            channels //= 2
            self._add_spel(f"dec{level}", unshuffle * 2**level, channels)
            self.decoders.append(nn.Sequential(*[block(channels) for _ in range(decoder_depths[level])]))
        self.ending = conv3x3(width, 3 * unshuffle**2)
        # FiLM of the bottleneck and of every decoder level's input (absent when off, like the context)
        self.descriptor = BlurDescriptor([width * 2**level for level in range(self.num_levels, -1, -1)]) \
            if blur_descriptor else None

    @property
    def multiscale_outputs(self) -> bool:
        """With ``coarse_guide``, ``forward(x, all_scales=True)`` also returns the coarse passes' outputs."""
        return self.guide_intro is not None

    def forward_padded(self, x: torch.Tensor, all_scales: bool = False) -> torch.Tensor | list[torch.Tensor]:
        # the coarse passes run without the prior: its encoder's stride-32 features would need their inputs at a
        # multiple of 64 (and more per level); the fine pass, which makes the output, has it
        outputs = self._guided(x, self.coarse_levels, with_prior=True)
        return outputs if all_scales else outputs[0]

    def _guided(self, x: torch.Tensor, levels: int, with_prior: bool) -> list[torch.Tensor]:
        """The pass at ``x``'s resolution guided by ``levels`` coarser ones: ``[output, coarser outputs...]``."""
        if levels == 0:
            return [self._pass(x, None, with_prior)]
        half = resample(x, 0.5)
        coarser = self._guided(half, levels - 1, with_prior=False)
        guide = x + resample(coarser[0] - half, 2)
        return [self._pass(x, guide, with_prior)] + coarser

    def _pass(self, x: torch.Tensor, guide: torch.Tensor | None, with_prior: bool) -> torch.Tensor:
        priors = self.compute_prior(x) if with_prior else None
        films = self.descriptor(x) if self.descriptor is not None else None
        h = self.intro(x)
        if guide is not None:
            h = h + self.guide_intro(guide)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            h = encoder(h)
            skips.append(h)
            h = down(h)
        h = self.middle(h)
        if self.context is not None:
            h = self.context(h)
        if films is not None:
            h = h * (1.0 + films[0][0]) + films[0][1]
        h = self._embed("middle", h, priors)
        for i, (up, decoder) in enumerate(zip(self.ups, self.decoders, strict=True)):
            level = self.num_levels - 1 - i
            h = self._embed(f"dec{level}", up(h) + skips[level], priors)
            if films is not None:
                h = h * (1.0 + films[i + 1][0]) + films[i + 1][1]
            h = decoder(h)
        return x + self.unfold(self.ending(h))
