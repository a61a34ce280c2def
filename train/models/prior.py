"""The semantic prior: a light student encoder on the blurry image and the Semantic Prior Embedding Layer.

The student (``PriorEncoder``) sees only the blurry input, at training and at inference. Its features at
strides 4, 8, 16 and 32 are trained (``deblurrt.train.distill``) to match a frozen classifier's features of
the *sharp* image, so they carry what the image would look like to a classifier without the blur.

``SPEL`` injects those features into a backbone at one decoder scale (or the bottleneck):

1. multi-level aggregation: every prior level is projected (1x1 conv, ReLU), resampled to the target
   scale, concatenated and fused by a 1x1 conv (for targets finer than the finest prior level, stride 4,
   the fusion happens at stride 4 and the fused map is upsampled: same information, far less memory
   traffic at full resolution);
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
    #: aggregate the prior levels once for all SPELs (cheaper) instead of once per SPEL.
    shared_aggregation: bool = False

    def as_dict(self) -> dict:
        """JSON-able form stored in checkpoints and ONNX metadata."""
        return {"channels": list(self.channels), "embed_dim": self.embed_dim,
                "blocks_per_level": self.blocks_per_level, "shared_aggregation": self.shared_aggregation}

    @classmethod
    def from_dict(cls, data: dict) -> PriorConfig:
        """Inverse of :meth:`as_dict`; unknown keys are an error."""
        unknown = set(data) - {"channels", "embed_dim", "blocks_per_level", "shared_aggregation"}
        if unknown:
            raise ValueError(f"prior config: unknown key(s) {sorted(unknown)}")
        return cls(channels=tuple(data["channels"]), embed_dim=int(data["embed_dim"]),
                   blocks_per_level=int(data.get("blocks_per_level", 1)),
                   shared_aggregation=bool(data.get("shared_aggregation", False)))


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


class PriorAggregation(nn.Module):
    """Multi-level aggregation: project every prior level (1x1 conv, ReLU), resample it to one scale,
    concatenate, fuse (1x1 conv, ReLU)."""

    def __init__(self, prior_channels: tuple[int, ...], prior_strides: tuple[int, ...], target_stride: int,
                 embed_dim: int):
        super().__init__()
        # Aggregate no finer than the finest prior level, then upsample the (narrow) aggregate once: at the
        # backbone's full-resolution scales this replaces four wide resizes by one narrow one.
        aggregate_stride = max(target_stride, min(prior_strides))
        self.factors = tuple(stride / aggregate_stride for stride in prior_strides)
        self.output_factor = aggregate_stride / target_stride
        self.project = nn.ModuleList(conv1x1(c, embed_dim) for c in prior_channels)
        self.fuse = conv1x1(embed_dim * len(prior_channels), embed_dim)

    def forward(self, priors: list[torch.Tensor]) -> torch.Tensor:
        resampled = [resample(F.relu(project(p)), factor)
                     for project, p, factor in zip(self.project, priors, self.factors, strict=True)]
        return resample(F.relu(self.fuse(torch.cat(resampled, dim=1))), self.output_factor)


class SemanticAttentionTransform(nn.Module):
    """From an aggregated prior, an attention map ``A = sigmoid(W_a P)`` and a modulation
    ``(gamma, beta) = W_m P`` transform the features: ``F + A * (gamma * F + beta)``."""

    def __init__(self, feature_channels: int, embed_dim: int):
        super().__init__()
        self.attention = conv1x1(embed_dim, feature_channels)
        # Two convs rather than one split in two: a Slice per SPEL costs more than it saves on the CPU.
        self.scale = conv1x1(embed_dim, feature_channels)
        self.shift = conv1x1(embed_dim, feature_channels)
        # Near-identity start: the prior model begins as its no-prior twin (but gradients still flow).
        for conv in (self.scale, self.shift):
            nn.init.normal_(conv.weight, std=1e-3)
            nn.init.zeros_(conv.bias)

    def forward(self, features: torch.Tensor, aggregate: torch.Tensor) -> torch.Tensor:
        attention = torch.sigmoid(self.attention(aggregate))
        return features + attention * (self.scale(aggregate) * features + self.shift(aggregate))


class SPEL(nn.Module):
    """Semantic Prior Embedding Layer at one backbone scale (see the module docstring).

    With ``shared_aggregation`` the model aggregates the prior once (at stride 4) for all its SPELs, and
    each SPEL only resamples that map to its scale before the semantic attention transformation: a
    cheaper form used by the CPU-real-time sizes.
    """

    def __init__(self, prior_channels: tuple[int, ...], prior_strides: tuple[int, ...], target_stride: int,
                 feature_channels: int, embed_dim: int, shared_aggregation: bool = False):
        super().__init__()
        if shared_aggregation:
            self.aggregate = None
            self.shared_factor = min(prior_strides) / target_stride
        else:
            self.aggregate = PriorAggregation(prior_channels, prior_strides, target_stride, embed_dim)
        self.transform = SemanticAttentionTransform(feature_channels, embed_dim)

    def forward(self, features: torch.Tensor, prior: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """``prior``: the student's levels, or the shared aggregate (stride 4) with ``shared_aggregation``."""
        if self.aggregate is None:
            aggregate = resample(prior, self.shared_factor)
        else:
            aggregate = self.aggregate(prior)
        return self.transform(features, aggregate)


class PriorEmbeddedNet(nn.Module):
    """Base class of the backbones: optional prior branch, residual output, padding to the model's multiple.

    Subclasses call :meth:`_add_spel` for each scale that receives the prior and :meth:`_embed` in their
    forward; without a prior both are no-ops, so a prior model differs from its twin only by the branch
    ``prior_encoder.*`` / ``prior_aggregate.*`` / ``spel.*``.
    """

    #: minimum spatial multiple of the backbone itself; the prior raises it to 32.
    backbone_multiple: int = 1

    def __init__(self, prior: PriorConfig | dict | None = None):
        super().__init__()
        if isinstance(prior, dict):
            prior = PriorConfig.from_dict(prior)
        self.prior_config = prior
        self.prior_encoder = None
        self.prior_aggregate = None
        self.spel = None
        if prior is not None:
            self.prior_encoder = PriorEncoder(prior.channels, prior.blocks_per_level)
            if prior.shared_aggregation:
                self.prior_aggregate = PriorAggregation(prior.channels, PRIOR_STRIDES, PRIOR_STRIDES[0],
                                                        prior.embed_dim)
            self.spel = nn.ModuleDict()

    @property
    def has_prior(self) -> bool:
        """True when the model carries the semantic prior branch."""
        return self.prior_encoder is not None

    @property
    def multiscale_outputs(self) -> bool:
        """True when ``forward(x, all_scales=True)`` returns a list of outputs, full resolution first, each
        further one at half the previous resolution (the trainer scores them all, ``loss.scale_weights``)."""
        return False

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
                              self.prior_config.embed_dim, self.prior_config.shared_aggregation)

    def _embed(self, key: str, features: torch.Tensor,
               priors: list[torch.Tensor] | torch.Tensor | None) -> torch.Tensor:
        if priors is None:
            return features
        return self.spel[key](features, priors)

    def compute_prior(self, x: torch.Tensor) -> list[torch.Tensor] | torch.Tensor | None:
        """What the SPELs consume: the student's multi-level features of the (padded) blurry input, their
        shared aggregate with ``shared_aggregation``, or None without a prior."""
        if self.prior_encoder is None:
            return None
        levels = self.prior_encoder(x)
        return self.prior_aggregate(levels) if self.prior_aggregate is not None else levels

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
