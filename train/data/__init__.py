"""deblurrt.train.data: training data for deblurring.

- :mod:`~deblurrt.synthesis` (numpy + OpenCV): motion-blur synthesis from sharp photos
  (:func:`synthesize_pair`, :class:`BlurConfig`, severity presets) and the GoPro frame-averaging recipe.
- :mod:`~deblurrt.train.data.photos` (numpy + OpenCV): image I/O and the photo pool that samples textured,
  in-focus crops.
- :mod:`~deblurrt.train.data.datasets` (torch): ``PairedFolder``, ``GoProFolder``, ``RealBlurList`` and
  ``SyntheticPairs``, each yielding ``{"blur": CHW, "sharp": CHW, "name": str}``.

The torch datasets are imported on first use, so the synthesis works without torch.
"""

from __future__ import annotations

import importlib

from deblurrt.synthesis import (
    SEVERITY_PRESETS,
    BlurConfig,
    average_frames,
    linear_to_srgb,
    parse_severity,
    shake_trajectory,
    srgb_to_linear,
    synthesize_pair,
)
from deblurrt.train.data.photos import PhotoPool, load_image, read_image, save_png, split_photos

_LAZY = {name: "deblurrt.train.data.datasets" for name in
         ("PairedFolder", "GoProFolder", "RealBlurList", "SyntheticPairs")}

__all__ = ["SEVERITY_PRESETS", "BlurConfig", "PhotoPool", "average_frames", "linear_to_srgb", "load_image",
           "parse_severity", "read_image", "save_png", "shake_trajectory", "split_photos", "srgb_to_linear",
           "synthesize_pair", *_LAZY]


def __getattr__(name: str):
    # the torch datasets load lazily so that `import deblurrt.train.data` stays torch-free
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
