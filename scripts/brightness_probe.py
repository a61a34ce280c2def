"""Do-no-harm and brightness outside the validation sets, for any models: the CC0 crops that
tests/test_shipped_quality.py uses (PSNR of output vs input, mean brightness shift) and real blurry photos
(median shift of the output's mean in 8-bit levels, median no-reference sharpness out / in).

    python scripts/brightness_probe.py weights/unet_small_prior.onnx RUN/last.safetensors \\
        --real ../shared/data/real/blur_only_photos

Real photos are reduced to at most 640 px on their long side first (what the models see at camera sizes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from deblurrt.metrics import psnr
from deblurrt.validation import Restorer, cc0_sharp_crops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_card import sharpness  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="shipped names or model files")
    parser.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
                        / "blur_only_photos")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    photos = []
    for path in sorted(args.real.glob("*")) if args.real.is_dir() else []:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        scale = 640 / max(image.shape[:2])
        photos.append(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1
                      else image)
    print("| model | CC0 astronaut / cat / coffee: dB, shift | real photos: shift | real photos: sharpness |")
    print("|---|---|---|---|")
    for model in args.models:
        restorer = Restorer(model, threads=args.threads)
        try:
            cc0 = []
            for crop in cc0_sharp_crops():
                out = restorer(crop)
                cc0.append(f"{psnr(out[..., ::-1], crop[..., ::-1]):.1f} {float(out.mean() - crop.mean()):+.2f}")
            shifts, ratios = [], []
            for image in photos:
                out = restorer(image)
                shifts.append(float(out.astype(np.float64).mean() - image.mean()))
                ratios.append(sharpness(out) / sharpness(image))
        finally:
            restorer.close()
        real = (f"{np.median(shifts):+.2f} | x{np.median(ratios):.2f}" if photos else "- | -")
        print(f"| {Path(model).name} | {' / '.join(cc0)} | {real} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
