"""MIMO-UNet (Cho et al., ICCV 2021): multi-input multi-output UNet for coarse-to-fine deblurring.

Three scales: the image at full, half and quarter resolution enters at each encoder level (shallow
convolutional modules, SCM, merged by feature attention modules, FAM); asymmetric feature fusion (AFF)
feeds every decoder level with all encoder levels; each decoder level predicts a residual image at its
scale. Training supervises the three outputs (``forward(x, all_scales=True)``); deployment uses only the
full-resolution one (``forward(x)``), which is all the ONNX export contains.

Our changes for deployment: 2x2 transposed convolutions for upsampling (MIMO-UNet uses 4x4 ones), average pooling
and bilinear resampling with constant factors, optional SpaceToDepth folding (``unshuffle``) for the
small sizes. With a prior, a SPEL sits at the bottleneck and after the skip fusion of the two upper levels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deblurrt.train.models.layers import (
    ResBlock,
    SpaceToDepth,
    Upsample,
    conv1x1,
    conv3x3,
    folded_conv,
    resample,
)
from deblurrt.train.models.prior import PriorConfig, PriorEmbeddedNet


class ShallowConvModule(nn.Module):
    """SCM: features of a downscaled input image, concatenated with the image itself and fused."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(in_channels, out_channels // 4), nn.ReLU(inplace=True),
            conv1x1(out_channels // 4, out_channels // 2), nn.ReLU(inplace=True),
            conv3x3(out_channels // 2, out_channels // 2), nn.ReLU(inplace=True),
            conv1x1(out_channels // 2, out_channels - in_channels), nn.ReLU(inplace=True),
        )
        self.fuse = conv1x1(out_channels, out_channels)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([image, self.body(image)], dim=1))


class FeatureAttentionModule(nn.Module):
    """FAM: the SCM features gate the encoder features multiplicatively, with a residual path."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv3x3(channels, channels)

    def forward(self, encoder_features: torch.Tensor, scm_features: torch.Tensor) -> torch.Tensor:
        return encoder_features + self.conv(encoder_features * scm_features)


class AsymmetricFeatureFusion(nn.Module):
    """AFF: fuse the encoder features of all scales (already resampled to one scale) for one decoder level."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(conv1x1(in_channels, out_channels), nn.ReLU(inplace=True),
                                  conv3x3(out_channels, out_channels))

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat(features, dim=1))


class MIMOUNet(PriorEmbeddedNet):
    """MIMO-UNet with ``width``, ``2 * width``, ``4 * width`` channels and ``depth`` residual blocks per stage."""

    def __init__(self, width: int = 32, depth: int = 8, unshuffle: int = 1,
                 prior: PriorConfig | dict | None = None):
        super().__init__(prior)
        if unshuffle < 1:
            raise ValueError(f"MIMOUNet: unshuffle must be >= 1, received {unshuffle}")
        self.unshuffle = unshuffle
        self.backbone_multiple = 4 * unshuffle
        image_channels = 3 * unshuffle**2
        c1, c2, c3 = width, width * 2, width * 4
        self.fold = SpaceToDepth(3, unshuffle)
        self.unfold = nn.PixelShuffle(unshuffle) if unshuffle > 1 else nn.Identity()

        def stage(channels: int) -> nn.Sequential:
            return nn.Sequential(*[ResBlock(channels) for _ in range(depth)])

        self.intro = folded_conv(3, c1, unshuffle)
        self.encoder1, self.encoder2, self.encoder3 = stage(c1), stage(c2), stage(c3)
        self.down1 = conv3x3(c1, c2, stride=2)
        self.down2 = conv3x3(c2, c3, stride=2)
        self.scm2 = ShallowConvModule(image_channels, c2)
        self.scm3 = ShallowConvModule(image_channels, c3)
        self.fam2 = FeatureAttentionModule(c2)
        self.fam3 = FeatureAttentionModule(c3)
        self.aff1 = AsymmetricFeatureFusion(c1 + c2 + c3, c1)
        self.aff2 = AsymmetricFeatureFusion(c1 + c2 + c3, c2)
        self.decoder3, self.decoder2, self.decoder1 = stage(c3), stage(c2), stage(c1)
        self.up3 = Upsample(c3, c2)
        self.up2 = Upsample(c2, c1)
        self.merge2 = conv1x1(2 * c2, c2)
        self.merge1 = conv1x1(2 * c1, c1)
        self.out3 = conv3x3(c3, image_channels)
        self.out2 = conv3x3(c2, image_channels)
        self.out1 = conv3x3(c1, image_channels)
        self._add_spel("middle", 4 * unshuffle, c3)
        self._add_spel("dec1", 2 * unshuffle, c2)
        self._add_spel("dec0", unshuffle, c1)

    @property
    def multiscale_outputs(self) -> bool:
        """MIMO-UNet always has its three scales' outputs."""
        return True

    def forward_padded(self, x: torch.Tensor, all_scales: bool = False) -> torch.Tensor | list[torch.Tensor]:
        priors = self.compute_prior(x)
        x2 = F.avg_pool2d(x, 2)
        x4 = F.avg_pool2d(x2, 2)
        res1 = self.encoder1(self.intro(x))
        res2 = self.encoder2(self.fam2(self.down1(res1), self.scm2(self.fold(x2))))
        bottom = self.encoder3(self.fam3(self.down2(res2), self.scm3(self.fold(x4))))

        fused2 = self.aff2(resample(res1, 0.5), res2, resample(bottom, 2))
        fused1 = self.aff1(res1, resample(res2, 2), resample(bottom, 4))

        h = self.decoder3(self._embed("middle", bottom, priors))
        outputs = []
        if all_scales:
            outputs.append(x4 + self.unfold(self.out3(h)))
        h = self._embed("dec1", self.merge2(torch.cat([self.up3(h), fused2], dim=1)), priors)
        h = self.decoder2(h)
        if all_scales:
            outputs.append(x2 + self.unfold(self.out2(h)))
        h = self._embed("dec0", self.merge1(torch.cat([self.up2(h), fused1], dim=1)), priors)
        full = x + self.unfold(self.out1(self.decoder1(h)))
        if all_scales:
            return [full, outputs[1], outputs[0]]
        return full
