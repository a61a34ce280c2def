"""Building blocks shared by the backbones.

Everything here exports to ONNX opset 17 with operators TensorRT's parser supports, and avoids ops that are
slow or fragile on the deployment targets (no Pow in normalisation, no dynamic control flow).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1, bias: bool = True) -> nn.Conv2d:
    """A 3x3 convolution with 'same' padding."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=bias)


def conv1x1(in_channels: int, out_channels: int, bias: bool = True) -> nn.Conv2d:
    """A pointwise convolution."""
    return nn.Conv2d(in_channels, out_channels, 1, bias=bias)


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channel axis of an NCHW tensor (NAFNet's channel LayerNorm).

    Written with ReduceMean/Sub/Mul/Sqrt/Div only: the square is a Mul, not a Pow, because TensorRT's FP16
    Pow path is where restoration nets were seen to overflow, and every op here keeps a stable name scope
    ('.../norm*/...') so that the FP16 export can pin the whole normalisation to FP32.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        centred = x - mean
        variance = (centred * centred).mean(dim=1, keepdim=True)
        normalised = centred / torch.sqrt(variance + self.eps)
        return normalised * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class ResBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 with an identity shortcut (the plain UNet's and MIMO-UNet's block)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


class GlobalContext(nn.Module):
    """Modulate every position by the whole image's feature statistics: ``x * (1 + scale) + shift`` with
    ``scale`` and ``shift`` from the spatial mean of ``x`` through a small MLP (FiLM over a global pool).

    A uniform camera-shake streak is the same over the whole frame, while a UNet's convolutions see only their
    receptive field; pooling lets evidence of the streak's shape gathered anywhere inform every position. The
    last layer starts at zero, so a new module is the identity. The pool covers what the network is given: a
    training crop, a whole frame, or one tile of a tiled frame (``deblurrt run --tile``), so tiles of one frame
    can be modulated differently.
    """

    def __init__(self, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or max(channels // 2, 8)
        self.reduce = conv1x1(channels, hidden)
        self.expand = conv1x1(hidden, 2 * channels)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3), keepdim=True)
        scale, shift = self.expand(F.relu(self.reduce(pooled), inplace=True)).chunk(2, dim=1)
        return x * (1.0 + scale) + shift


# the BlurDescriptor's normalisation floor: a mean gradient product of one 8-bit level squared
_FLAT_FLOOR = (1.0 / 255.0) ** 2


class BlurDescriptor(nn.Module):
    """Condition a network on how long and which way the image is smeared, read from its gradients.

    A motion-blurred image's gradients are correlated along the streak over its length (the classic cue of
    blind kernel estimation: the autocorrelation of the derivatives carries the kernel's own autocorrelation),
    which a stack of 3x3 convolutions sees only within its receptive field. This module computes the grey
    image's x and y gradient autocorrelation for shifts up to ``radius`` (at 1/``stride`` resolution, so
    +-``radius * stride`` px; exact, through a zero-padded FFT), reads it with a small CNN into a code, and
    returns one FiLM ``(scale, shift)`` per entry of ``channels`` (features are then ``h * (1 + scale) + shift``).
    The FiLM layers start at zero: a new descriptor changes nothing until trained.

    Noise should not read as blur: white sensor noise adds to the zero shift and, through the differencing, to
    the shifts of one (pooled) pixel, so a map normalised by the zero shift shrinks as noise grows. Shifts within
    ``mask`` pixels of zero are therefore set to 0 and the rest divided by its largest magnitude: the map's
    shape (how far and which way the correlation reaches), independent of noise level and contrast (tested).
    Nearly flat input is the exception: a 256 px crop of plain surface (53 dB from its target) came back at 38 dB
    from a probe of the first form, whose map scaled its faint correlations up like any other's; below one 8-bit
    level squared they are no longer scaled up.
    The statistics cover what the network is given (a crop, a frame or a tile), as
    :class:`GlobalContext`'s do. A probe option: its FFT is not an op TensorRT runs.
    """

    def __init__(self, channels: tuple[int, ...] | list[int], radius: int = 24, stride: int = 2, hidden: int = 64,
                 mask: int = 1):
        super().__init__()
        if not 0 <= mask < radius:
            raise ValueError(f"BlurDescriptor: mask must be in [0, radius), received {mask} with radius {radius}")
        self.radius, self.stride, self.mask = radius, stride, mask
        self.reader = nn.Sequential(
            nn.Conv2d(2, 16, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(32, hidden, 3, stride=2, padding=1), nn.GELU())
        self.films = nn.ModuleList(nn.Linear(hidden, 2 * c) for c in channels)
        for film in self.films:
            nn.init.zeros_(film.weight)
            nn.init.zeros_(film.bias)

    def autocorrelation(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 2 x (2 radius + 1) x (2 radius + 1)``: the x and y gradient autocorrelations, shifts within
        ``mask`` of zero set to 0, the rest scaled to a largest magnitude of 1 (less where the image is nearly
        flat: correlations under one 8-bit level squared per pixel are not scaled up)."""
        radius = self.radius
        with torch.autocast(x.device.type, enabled=False):  # FFTs in float32 (no bf16 FFT on CPU)
            grey = x.float().mean(dim=1, keepdim=True)
            if self.stride > 1:
                grey = F.avg_pool2d(grey, self.stride)
            gradients = torch.cat([grey[..., :-1, 1:] - grey[..., :-1, :-1],
                                   grey[..., 1:, :-1] - grey[..., :-1, :-1]], dim=1)
            gradients = gradients - gradients.mean(dim=(2, 3), keepdim=True)
            height, width = gradients.shape[-2:]
            # zero padding by the largest shift makes the circular correlation the linear one for shifts <= radius
            size = (max(height + radius, 2 * radius + 1), max(width + radius, 2 * radius + 1))
            power = torch.fft.rfft2(gradients, s=size).abs().square()
            correlation = torch.fft.irfft2(power, s=size)
            correlation = torch.cat([correlation[..., -radius:, :], correlation[..., :radius + 1, :]], dim=-2)
            correlation = torch.cat([correlation[..., -radius:], correlation[..., :radius + 1]], dim=-1)
            low, high = radius - self.mask, radius + self.mask + 1
            correlation[..., low:high, low:high] = 0.0
            correlation = correlation / (height * width)  # mean products: comparable across sizes
            peak = correlation.abs().amax(dim=(-2, -1), keepdim=True)
            # a floor of one 8-bit level squared: a near-flat crop (sky, a wall) has no streak to read, and
            # scaling its faint correlations up to 1 once fed the network noise it read as blur
            return correlation / peak.clamp_min(_FLAT_FLOOR)

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        code = self.reader(self.autocorrelation(x)).mean(dim=(2, 3))
        return [tuple(film(code)[..., None, None].chunk(2, dim=1)) for film in self.films]

class KernelHead(nn.Module):
    """Predict the blur kernel of a training pair from a feature map: a training-time auxiliary head.

    Returns logits over a ``cells x cells`` grid (``B x 1 x cells x cells``; softmax over the grid is the kernel,
    as :func:`deblurrt.kernels.kernel_grid` lays it out). One convolution, then the spatial mean and maximum
    (where the streak shows is anywhere in the crop), then an MLP. Not part of any exported model: it only
    asks the features it reads to carry the streak's shape.
    """

    def __init__(self, channels: int, cells: int = 33, hidden: int = 256):
        super().__init__()
        self.cells = cells
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.mlp = nn.Sequential(nn.Linear(2 * channels, hidden), nn.GELU(), nn.Linear(hidden, cells * cells))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.conv(features))
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.mlp(pooled).view(-1, 1, self.cells, self.cells)

class Downsample(nn.Module):
    """Halve the resolution and change width with a 2x2 stride-2 convolution (cheap and TensorRT friendly)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double the resolution with a 2x2 stride-2 transposed convolution.

    Equivalent to a 1x1 conv followed by PixelShuffle (non-overlapping kernels, so no checkerboard), but one
    op instead of two: measured 0.6 ms vs 1.7 ms in ONNX Runtime CPU at 96x160x32, and TensorRT runs it as
    a single deconvolution.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def folded_conv(in_channels: int, out_channels: int, fold: int) -> nn.Conv2d:
    """A 3x3 conv on the ``fold``-times SpaceToDepth-folded input, written as one strided convolution.

    PixelUnshuffle(r) followed by a padded 3x3 conv is exactly a conv with kernel 3r, stride r, padding r
    on the unfolded input. Exporting that one Conv avoids the 6-D Transpose that PixelUnshuffle becomes in
    ONNX (6.8 of 34 ms per 384x640 frame in ONNX Runtime CPU).
    """
    if fold == 1:
        return conv3x3(in_channels, out_channels)
    return nn.Conv2d(in_channels, out_channels, 3 * fold, stride=fold, padding=fold)


class SpaceToDepth(nn.Module):
    """PixelUnshuffle as a fixed one-hot strided convolution (exact, exports as one Conv, no parameters)."""

    def __init__(self, channels: int, block: int):
        super().__init__()
        self.block = block
        weight = torch.zeros(channels * block * block, channels, block, block)
        for c in range(channels):
            for dy in range(block):
                for dx in range(block):
                    weight[(c * block + dy) * block + dx, c, dy, dx] = 1.0
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.block == 1:
            return x
        return F.conv2d(x, self.weight, stride=self.block)


def resample(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Resize by a power-of-two factor: bilinear up (factor > 1), average pooling down (factor < 1).

    Using constant factors rather than a target size keeps the exported Resize free of Shape arithmetic;
    it is exact because inputs are padded to the model's multiple.
    """
    if factor == 1:
        return x
    if factor > 1:
        return F.interpolate(x, scale_factor=float(factor), mode="bilinear", align_corners=False)
    kernel = round(1 / factor)
    return F.avg_pool2d(x, kernel_size=kernel, stride=kernel)
