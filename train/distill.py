"""Cross-level knowledge distillation of the semantic prior (stage 1).

The frozen teacher (a classifier) sees the SHARP image; the student prior encoder sees the BLURRY one.
Heads (training only, never exported) map student features into the teacher's feature spaces:

- same-level links: student level ``i`` -> teacher level ``i`` (1x1 conv), weight ``level_weights[i]``;
- cross-level links: student level ``i`` -> teacher level ``i + 1`` (3x3 stride-2 conv), weight
  ``cross_level_weight * level_weights[i + 1]``: a low student level must already predict the next,
  more semantic, teacher level, which pushes context into the fine levels the decoder consumes;
- fused link: all student levels resampled to the coarsest level, concatenated and projected to the last
  teacher level, weight ``fused_weight``: the aggregate the SPEL will use is itself trained to be semantic.

Set ``cross_level_weight = 0`` and ``fused_weight = 0`` for the same-level-only ablation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deblurrt.train.losses import feature_distance


@dataclass(frozen=True)
class DistillWeights:
    """Loss weights of the distillation links."""

    level_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    cross_level_weight: float = 0.5
    fused_weight: float = 0.5


class DistillationHeads(nn.Module):
    """Projections from student feature spaces to teacher feature spaces (same-level, cross-level, fused)."""

    def __init__(self, student_channels: tuple[int, ...], teacher_channels: tuple[int, ...]):
        super().__init__()
        if len(student_channels) != len(teacher_channels):
            raise ValueError(f"distillation: student has {len(student_channels)} levels, teacher "
                             f"{len(teacher_channels)}; they must match")
        self.same = nn.ModuleList(nn.Conv2d(s, t, 1) for s, t in zip(student_channels, teacher_channels, strict=True))
        self.cross = nn.ModuleList(nn.Conv2d(student_channels[i], teacher_channels[i + 1], 3, stride=2, padding=1)
                                   for i in range(len(student_channels) - 1))
        self.fused = nn.Conv2d(sum(student_channels), teacher_channels[-1], 1)

    def forward(self, student: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
        coarsest = student[-1].shape[-2:]
        pooled = [F.adaptive_avg_pool2d(s, coarsest) for s in student]
        return {
            "same": [head(s) for head, s in zip(self.same, student, strict=True)],
            "cross": [head(s) for head, s in zip(self.cross, student[:-1], strict=True)],
            "fused": [self.fused(torch.cat(pooled, dim=1))],
        }


def distillation_loss(predictions: dict[str, list[torch.Tensor]], teacher: list[torch.Tensor],
                      weights: DistillWeights) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted feature distances of every link; returns the total and per-link parts for logging."""
    if len(weights.level_weights) != len(teacher):
        raise ValueError(f"distillation: {len(weights.level_weights)} level weights for {len(teacher)} levels")
    parts: dict[str, float] = {}
    total = teacher[0].new_zeros(())
    for i, (pred, target) in enumerate(zip(predictions["same"], teacher, strict=True)):
        loss = feature_distance(pred, target)
        total = total + weights.level_weights[i] * loss
        parts[f"same{i}"] = float(loss.detach())
    if weights.cross_level_weight > 0:
        for i, pred in enumerate(predictions["cross"]):
            loss = feature_distance(pred, teacher[i + 1])
            total = total + weights.cross_level_weight * weights.level_weights[i + 1] * loss
            parts[f"cross{i}to{i + 1}"] = float(loss.detach())
    if weights.fused_weight > 0:
        loss = feature_distance(predictions["fused"][0], teacher[-1])
        total = total + weights.fused_weight * loss
        parts["fused"] = float(loss.detach())
    return total, parts
