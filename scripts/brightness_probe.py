"""Do-no-harm and brightness outside the validation sets, for any models: the CC0 crops that
tests/test_shipped_quality.py uses (PSNR of output vs input, mean brightness shift) and real blurry photos
(median shift of the output's mean in 8-bit levels, median no-reference sharpness out / in); with --stream
PHOTO also a virtual camera over that photo (`synthetic://PHOTO?size=640x360&bursts=0.25&burst=12`, moderate
shake): 10 still frames spread over its pan (PSNR of output vs input: mean and worst, mean shift) and its first 12
blurry frames (mean gain in dB over the blurry input, against the truth).

    python scripts/brightness_probe.py weights/unet_small_prior.onnx RUN/last.safetensors \\
        --real ../shared/data/real/blur_only_photos --stream ../shared/data/photos/Aqua.jpg

Real photos are reduced to at most 640 px on their long side first (what the models see at camera sizes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from deblurrt.metrics import psnr
from deblurrt.runtime.synthetic import SyntheticCamera, parse_synthetic_uri
from deblurrt.validation import Restorer, cc0_sharp_crops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_card import sharpness  # noqa: E402


def stream_frames(photo: Path, still: int = 10, blurry: int = 12) -> tuple[list, list]:
    """``still`` sharp frames spread over a mostly steady virtual camera's pan over ``photo`` (the still frames
    among every 12th; neighbours are near copies) and its first ``blurry`` (blurry, truth) pairs."""
    camera = SyntheticCamera(parse_synthetic_uri(f"synthetic://{photo}?size=640x360&bursts=0.25&burst=12&live=0"
                                                 "&severity=moderate"))
    stills, index = [], 0
    while len(stills) < still:
        if not camera.options.is_blurry(index):
            stills.append(camera.render(index)[1])
        index += 12
    pairs, index = [], 0
    while len(pairs) < blurry:
        if camera.options.is_blurry(index):
            pairs.append(camera.render(index))
        index += 1
    return stills, pairs


def stream_cells(restorer: Restorer, stills: list, pairs: list) -> str:
    """``still: mean (worst) dB, shift | blurry: gain`` of one model on :func:`stream_frames`."""
    outputs = [restorer(frame) for frame in stills]
    scores = [psnr(out[..., ::-1], frame[..., ::-1]) for out, frame in zip(outputs, stills, strict=True)]
    shift = np.mean([float(out.astype(np.float64).mean() - frame.mean()) for out, frame in zip(outputs, stills,
                                                                                                  strict=True)])
    gains = [psnr(restorer(frame)[..., ::-1], truth[..., ::-1]) - psnr(frame[..., ::-1], truth[..., ::-1])
             for frame, truth in pairs]
    return f"{np.mean(scores):.1f} ({min(scores):.1f}) {shift:+.2f} | {np.mean(gains):+.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="shipped names or model files")
    parser.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
                        / "blur_only_photos")
    parser.add_argument("--stream", type=Path, default=None, help="a photo for the virtual-camera columns")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.stream is not None and not args.stream.is_file():
        print(f"brightness_probe: --stream {args.stream} is not a file. Fix: a photo, e.g. "
              "../shared/data/photos/Aqua.jpg", file=sys.stderr)
        return 2
    stills, pairs = stream_frames(args.stream) if args.stream is not None else ([], [])
    photos = []
    for path in sorted(args.real.glob("*")) if args.real.is_dir() else []:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        scale = 640 / max(image.shape[:2])
        photos.append(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1
                      else image)
    stream_head = " stream still frames: dB (worst), shift | stream blurry frames: gain |" if pairs else ""
    print("| model | CC0 astronaut / cat / coffee: dB, shift | real photos: shift | real photos: sharpness |"
          + stream_head)
    print("|---|---|---|---|" + ("---|---|" if pairs else ""))
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
            stream = f" {stream_cells(restorer, stills, pairs)} |" if pairs else ""
        finally:
            restorer.close()
        real = (f"{np.median(shifts):+.2f} | x{np.median(ratios):.2f}" if photos else "- | -")
        print(f"| {Path(model).name} | {' / '.join(cc0)} | {real} |{stream}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
