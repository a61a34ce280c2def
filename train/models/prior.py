"""The semantic prior: a light student encoder on the blurry image and the Semantic Prior Embedding Layer.

The student (``PriorEncoder``) sees only the blurry input, at training and at inference. Its features at
strides 4, 8, 16 and 32 are trained (``deblurrt.train.distill``) to match a frozen classifier's features of
the *sharp* image, so they carry what the image would look like to a classifier without the blur.

``SPEL`` injects those features into a backbone at one decoder scale (or the bottleneck):

1. multi-level aggregation: every prior level is projected (1x1 conv, ReLU), resampled to the target
   scale, concatenated and fused by a 1x1 conv;
2. semantic attention transformation: from the aggregate, a sigmoid attention map ``A`` and a modulation
   ``(gamma, beta)`` transform the backbone features ``F`` as ``F + A * (gamma * F + beta)``.

The residual form and a near-zero initial modulation mean a prior model starts out as its no-prior twin
and learns how much of the prior to use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deblurrt.train.models.layers import ResBlock, conv1x1, conv3x3, resample

PRIOR_STRIDES = (4, 8, 16, 32)


@dataclass(frozen=True)
class PriorConfig:
    """Size of the prior branch: student channels per level (strides 4, 8, 16, 32) and SPEL embedding width."""

    channels: tuple[int, ...] = (16, 24, 32, 48)
    embed_dim: int = 16
    blocks_per_level: int = 1

    def as_dict(self) -> dict:
        """JSON-able form stored in checkpoints and ONNX metadata."""
        return {"channels": list(self.channels), "embed_dim": self.embed_dim,
                "blocks_per_level": self.blocks_per_level}

    @classmethod
    def from_dict(cls, data: dict) -> PriorConfig:
        """Inverse of :meth:`as_dict`."""
        return cls(channels=tuple(data["channels"]), embed_dim=int(data["embed_dim"]),
                   blocks_per_level=int(data.get("blocks_per_level", 1)))


class PriorEncoder(nn.Module):
    """Student prior encoder: a stride-2 stem, then per level a stride-2 conv and residual blocks.

    Returns features at strides 4, 8, 16, 32 of the input (``feature_strides``), ``feature_channels`` wide.
    """

    def __init__(self, channels: tuple[int, ...] = (16, 24, 32, 48), blocks_per_level: int = 1):
        super().__init__()
        if len(channels) != len(PRIOR_STRIDES):
            raise ValueError(f"prior channels: expected {len(PRIOR_STRIDES)} levels, received {len(channels)}")
        self.feature_channels = tuple(channels)
        self.feature_strides = PRIOR_STRIDES
        stem_channels = max(8, channels[0] // 2)
        self.stem = nn.Sequential(conv3x3(3, stem_channels, stride=2), nn.ReLU(inplace=True))
        levels = []
        previous = stem_channels
        for width in channels:
            layers: list[nn.Module] = [conv3x3(previous, width, stride=2), nn.ReLU(inplace=True)]
            layers += [ResBlock(width) for _ in range(blocks_per_level)]
            levels.append(nn.Sequential(*layers))
            previous = width
        self.levels = nn.ModuleList(levels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        # Centre the input: the student sees [0, 1] images like the backbone does.
        features = []
        h = self.stem(x - 0.5)
        for level in self.levels:
            h = level(h)
            features.append(h)
        return features


class SPEL(nn.Module):
    """Semantic Prior Embedding Layer at one backbone scale (see the module docstring)."""

    def __init__(self, prior_channels: tuple[int, ...], prior_strides: tuple[int, ...], target_stride: int,
                 feature_channels: int, embed_dim: int):
        super().__init__()
        self.factors = tuple(stride / target_stride for stride in prior_strides)
        self.project = nn.ModuleList(conv1x1(c, embed_dim) for c in prior_channels)
        self.fuse = conv1x1(embed_dim * len(prior_channels), embed_dim)
        self.attention = conv1x1(embed_dim, feature_channels)
        self.modulation = conv1x1(embed_dim, 2 * feature_channels)
        # Near-identity start: the prior model begins as its no-prior twin (but gradients still flow).
        nn.init.normal_(self.modulation.weight, std=1e-3)
        nn.init.zeros_(self.modulation.bias)

    def aggregate(self, priors: list[torch.Tensor]) -> torch.Tensor:
        """Multi-level aggregation: project, resample to the target scale, concatenate, fuse."""
        resampled = [resample(F.relu(project(p)), factor)
                     for project, p, factor in zip(self.project, priors, self.factors, strict=True)]
        return F.relu(self.fuse(torch.cat(resampled, dim=1)))

    def forward(self, features: torch.Tensor, priors: list[torch.Tensor]) -> torch.Tensor:
        aggregate = self.aggregate(priors)
        attention = torch.sigmoid(self.attention(aggregate))
        gamma, beta = self.modulation(aggregate).chunk(2, dim=1)
        return features + attention * (gamma * features + beta)


class PriorEmbeddedNet(nn.Module):
    """Base class of the backbones: optional prior branch, residual output, padding to the model's multiple.

    Subclasses call :meth:`_add_spel` for each scale that receives the prior and :meth:`_embed` in their
    forward; without a prior both are no-ops, so a prior model differs from its twin only by the branch
    ``prior_encoder.*`` / ``spel.*``.
    """

    #: minimum spatial multiple of the backbone itself; the prior raises it to 32.
    backbone_multiple: int = 1

    def __init__(self, prior: PriorConfig | dict | None = None):
        super().__init__()
        if isinstance(prior, dict):
            prior = PriorConfig.from_dict(prior)
        self.prior_config = prior
        if prior is not None:
            self.prior_encoder = PriorEncoder(prior.channels, prior.blocks_per_level)
            self.spel = nn.ModuleDict()
        else:
            self.prior_encoder = None
            self.spel = None

    @property
    def has_prior(self) -> bool:
        """True when the model carries the semantic prior branch."""
        return self.prior_encoder is not None

    @property
    def pad_multiple(self) -> int:
        """Input height and width must be multiples of this (the runtime pads and crops back)."""
        multiple = self.backbone_multiple
        if self.has_prior:
            multiple = max(multiple, PRIOR_STRIDES[-1])
        return multiple

    def _add_spel(self, key: str, target_stride: int, feature_channels: int) -> None:
        if self.prior_config is None:
            return
        self.spel[key] = SPEL(self.prior_config.channels, PRIOR_STRIDES, target_stride, feature_channels,
                              self.prior_config.embed_dim)

    def _embed(self, key: str, features: torch.Tensor, priors: list[torch.Tensor] | None) -> torch.Tensor:
        if priors is None:
            return features
        return self.spel[key](features, priors)

    def compute_prior(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        """The student's multi-level features of the (padded) blurry input, or None without a prior."""
        return self.prior_encoder(x) if self.prior_encoder is not None else None

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor | list[torch.Tensor]:
        """Deblur ``x`` (N, 3, H, W) in [0, 1]; any H and W when run eagerly, multiples of ``pad_multiple``
        when traced for export (the runtime pads then)."""
        multiple = self.pad_multiple
        height, width = x.shape[-2:]
        exporting = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        needs_pad = not exporting and (height % multiple or width % multiple)
        if needs_pad:
            x = F.pad(x, (0, -width % multiple, 0, -height % multiple), mode="replicate")
        out = self.forward_padded(x, **kwargs)
        if needs_pad:
            if isinstance(out, list):
                out = [o[..., : -(-height // 2**i), : -(-width // 2**i)] for i, o in enumerate(out)]
            else:
                out = out[..., :height, :width]
        return out

    def forward_padded(self, x: torch.Tensor, **kwargs) -> torch.Tensor | list[torch.Tensor]:
        """The network on an input whose size is a multiple of ``pad_multiple``."""
        raise NotImplementedError
