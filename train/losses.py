"""Losses for deblurring and for distilling the semantic prior.

Deblurring (stage 2): Charbonnier (a smooth L1) on pixels plus an L1 on the 2-D FFT (MIMO-UNet's
frequency loss, which restores the high frequencies that pixel losses under-weight); for MIMO-UNet the
sum over its three output scales, each against the sharp image pooled to that scale.

Distillation (stage 1): features are compared after channel standardisation (each position's feature
vector to zero mean and unit variance across channels), so levels whose activations differ in magnitude
by orders of magnitude weigh alike and the student only has to match the teacher's feature *pattern*.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """mean(sqrt((pred - target)^2 + eps^2))."""
    diff = pred - target
    return torch.sqrt(diff * diff + eps * eps).mean()


def psnr_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean over samples of -PSNR/100 (PSNR in dB for images in [0, 1]).

    A log of each sample's MSE: its gradient is the MSE's divided by that sample's error, so a nearly sharp
    sample or a mild blur weighs as much as a 80 px streak (with a pixel mean, the long streaks' large
    errors dominate and the model learns to over-sharpen what is barely blurred). ``eps`` caps a sample's
    PSNR at 60 dB. The factor 1/100 keeps gradients near a Charbonnier loss's (1 dB = 0.01).
    """
    mse = (pred.float() - target.float()).square().flatten(1).mean(dim=1)
    return (10.0 / math.log(10.0)) * torch.log(mse + eps).mean() / 100.0


def frequency_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 distance between the real and imaginary parts of the images' 2-D FFTs (orthonormal)."""
    pred_f = torch.fft.rfft2(pred.float(), norm="ortho")
    target_f = torch.fft.rfft2(target.float(), norm="ortho")
    return (pred_f - target_f).abs().mean()


def deblur_loss(outputs: torch.Tensor | list[torch.Tensor], target: torch.Tensor, pixel: str = "charbonnier",
                frequency_weight: float = 0.1, scale_weights: tuple[float, ...] = (1.0, 0.5, 0.25),
                eps: float = 1e-3, psnr_cap_db: float = 60.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Pixel + frequency loss over one output or a list of multi-scale outputs (full resolution first).

    ``psnr_cap_db``: with ``pixel="psnr"``, the PSNR at which a sample stops counting more (see
    :func:`psnr_loss`'s ``eps``). Returns the total and its parts (as floats, for logging).
    """
    if not 10.0 <= psnr_cap_db <= 100.0:
        raise ValueError(f"loss.psnr_cap_db: expected 10-100 dB, received {psnr_cap_db}")
    if not isinstance(outputs, list | tuple):
        outputs = [outputs]
    total = outputs[0].new_zeros(())
    parts = {"pixel": 0.0, "frequency": 0.0}
    for index, output in enumerate(outputs):
        weight = scale_weights[index] if index < len(scale_weights) else scale_weights[-1]
        scaled_target = target if output.shape[-2:] == target.shape[-2:] else \
            F.adaptive_avg_pool2d(target, output.shape[-2:])
        if pixel == "charbonnier":
            pixel_loss = charbonnier(output, scaled_target, eps)
        elif pixel == "l1":
            pixel_loss = F.l1_loss(output, scaled_target)
        elif pixel == "psnr":
            pixel_loss = psnr_loss(output, scaled_target, eps=10.0 ** (-psnr_cap_db / 10.0))
        else:
            raise ValueError(f"pixel loss: expected 'charbonnier', 'l1' or 'psnr', received {pixel!r}")
        frequency_loss = frequency_l1(output, scaled_target) if frequency_weight > 0 else pixel_loss.new_zeros(())
        total = total + weight * (pixel_loss + frequency_weight * frequency_loss)
        parts["pixel"] += weight * float(pixel_loss.detach())
        parts["frequency"] += weight * float(frequency_loss.detach())
    return total, parts



def kernel_divergence(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """KL(target || softmax(logits)) over each sample's kernel grid, averaged over the batch (nats; 0 when the
    predicted kernel is the target). ``logits`` and ``target``: ``B x ... `` with the grid in the last dims,
    target summing to 1 per sample."""
    log_predicted = F.log_softmax(logits.float().flatten(1), dim=1)
    target = target.float().flatten(1)
    entropy_terms = torch.where(target > 0, target * torch.log(target.clamp_min(1e-30)), torch.zeros_like(target))
    return (entropy_terms - target * log_predicted).sum(dim=1).mean()

def standardise_channels(features: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each position's feature vector to zero mean and unit variance across channels."""
    mean = features.mean(dim=1, keepdim=True)
    centred = features - mean
    return centred / torch.sqrt((centred * centred).mean(dim=1, keepdim=True) + eps)


def feature_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between channel-standardised features; the student map is resized to the teacher's if needed."""
    if student.shape[-2:] != teacher.shape[-2:]:
        student = F.interpolate(student, size=teacher.shape[-2:], mode="bilinear", align_corners=False)
    return F.mse_loss(standardise_channels(student), standardise_channels(teacher))
