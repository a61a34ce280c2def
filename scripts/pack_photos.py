#!/usr/bin/env python3
"""Pack a folder of sharp training photos into a small one that fits a size budget, to carry to a GPU
machine that cannot see the shared data (the device tool sends at most 64 MiB with the repository).

Each photo is scaled down (INTER_AREA) so its long side is at most --max-side (its short side kept at least
--min-short), then written as WebP at the highest quality that keeps the whole folder under --budget-mib.
Downscaling also makes the photos denser in detail per pixel, which is what a deblurring target should be;
the quality used is printed and written to the folder's PACK.txt, with the photo count and size.

    python scripts/pack_photos.py ~/.cache/deblurrt/train_photos .gpu_data/photos --budget-mib 27
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from deblurrt.train.data.photos import list_images


def downscaled(path: Path, max_side: int, min_short: int) -> np.ndarray:
    """The photo at ``path``, its long side at most ``max_side`` unless that would take the short side below
    ``min_short`` (a panorama keeps enough height for the training crop and its blur margin)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"pack_photos: cannot read {path} (not an image OpenCV decodes); remove it or fix it")
    height, width = image.shape[:2]
    scale = min(1.0, max(max_side / max(height, width), min_short / min(height, width)))
    if scale < 1:
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    return image


def encode_all(images: list[np.ndarray], quality: int) -> list[bytes]:
    """Each image as WebP bytes at ``quality``."""
    encoded = []
    for image in images:
        ok, buffer = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, quality])
        if not ok:
            raise SystemExit("pack_photos: this OpenCV build cannot write WebP; install opencv-python-headless")
        encoded.append(buffer.tobytes())
    return encoded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="folder of sharp photos (symbolic links are followed)")
    parser.add_argument("out", type=Path, help="folder to write; it must not exist or be empty")
    parser.add_argument("--max-side", type=int, default=512, help="long side cap in pixels (default 512)")
    parser.add_argument("--min-short", type=int, default=320,
                        help="never scale the short side below this (default 320: a 256 crop and its margin)")
    parser.add_argument("--budget-mib", type=float, default=27.0, help="size cap of the folder (default 27)")
    parser.add_argument("--min-quality", type=int, default=70,
                        help="refuse to go below this WebP quality (default 70): pack fewer or smaller photos")
    args = parser.parse_args(argv)
    photos = list_images(args.source) if args.source.is_dir() else []
    if not photos:
        print(f"pack_photos: no photos in '{args.source}'. Fix: a folder of .jpg/.png photos", file=sys.stderr)
        return 2
    stems: dict[str, Path] = {}
    for path in photos:
        if path.stem in stems:
            print(f"pack_photos: {stems[path.stem].name} and {path.name} would both be written as {path.stem}.webp. "
                  "Fix: rename one of them", file=sys.stderr)
            return 2
        stems[path.stem] = path
    if args.out.exists() and any(args.out.iterdir()):
        print(f"pack_photos: '{args.out}' is not empty. Fix: remove it or choose another folder", file=sys.stderr)
        return 2
    images = [downscaled(path, args.max_side, args.min_short) for path in photos]
    budget = args.budget_mib * 2**20
    # the highest quality under the budget, by bisection over WebP's 0-100 scale
    low, high, best = args.min_quality, 95, None
    while low <= high:
        quality = (low + high) // 2
        encoded = encode_all(images, quality)
        if sum(map(len, encoded)) <= budget:
            best, low = (quality, encoded), quality + 1
        else:
            high = quality - 1
    if best is None:
        print(f"pack_photos: {len(photos)} photos do not fit {args.budget_mib} MiB even at quality "
              f"{args.min_quality}. Fix: a smaller --max-side or a larger --budget-mib", file=sys.stderr)
        return 2
    quality, encoded = best
    args.out.mkdir(parents=True, exist_ok=True)
    for path, data in zip(photos, encoded, strict=True):
        (args.out / f"{path.stem}.webp").write_bytes(data)
    size = sum(map(len, encoded)) / 2**20
    summary = (f"{len(photos)} photos from {args.source}, long side <= {args.max_side} px (short side >= "
               f"{args.min_short} px where the photo had it), WebP quality "
               f"{quality}, {size:.1f} MiB")
    (args.out / "PACK.txt").write_text(summary + "\n")
    print(f"pack_photos: {summary} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
