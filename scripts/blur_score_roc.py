"""How well does each cheap blur score (deblurrt.runtime.blurscore) separate blurry from sharp frames?

ROC AUC (the probability that a blurry frame scores higher than a sharp one; 0.5 = chance, 1 = perfect) per
score, and for the ``reblur`` score the share of frames judged blurry at the gate's threshold, on:

- the blur-only validation sets (``deblurrt validate --build``): ``sharp`` against each blur set (independent
  images, so the running reference of ``relative`` does not apply and is left out);
- a mostly-sharp synthetic stream with blurry bursts over a photo (``synthetic://PHOTO?bursts=0.25``), every
  frame labelled, all three scores in stream order;
- real footage without labels: real blurry photos (real/blur_only_photos, gopro_blur_only, handheld) against
  the sharp photos (photos/), and the share judged blurry on the two real videos (video_car: hand-held,
  blurry throughout; vtest: a static street camera, mostly sharp).

usage: python scripts/blur_score_roc.py [--sets ~/.cache/deblurrt/val_v1] [--data ../shared/data]
       [--frames 160] [--threshold 0.40] [--md out.md] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from deblurrt.runtime.blurscore import DEFAULT_THRESHOLD, BlurScoreConfig, BlurScorer
from deblurrt.runtime.sources import IMAGE_SUFFIXES, open_source

BLUR_SETS = ("warp_mild", "warp_moderate", "warp_severe", "kernel_moderate", "kernel_severe")


def auc(positive: list[float], negative: list[float]) -> float:
    """Mann-Whitney ROC AUC: P(positive > negative) + 0.5 P(tie)."""
    pos, neg = np.asarray(positive, np.float64)[:, None], np.asarray(negative, np.float64)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def independent_scores(images: list[np.ndarray]) -> dict[str, list[float]]:
    """``reblur`` and ``gradient`` of unrelated images (no running reference)."""
    scores: dict[str, list[float]] = {"reblur": [], "gradient": []}
    for image in images:
        for method in scores:
            scores[method].append(BlurScorer(BlurScoreConfig(method=method))(image))
    return scores


def read_folder(folder: Path, limit: int | None = None) -> list[np.ndarray]:
    """Every image of a folder (sorted), BGR uint8."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    return [image for p in paths if (image := cv2.imread(str(p), cv2.IMREAD_COLOR)) is not None]


def validation_sets(root: Path) -> list[dict]:
    """AUC of sharp vs each blur set."""
    sharp = independent_scores(read_folder(root / "sharp" / "blur"))
    rows = []
    for name in BLUR_SETS:
        if not (root / name / "blur").is_dir():
            continue
        blurry = independent_scores(read_folder(root / name / "blur"))
        rows.append({"data": f"val_v1 {name} vs sharp", "n": f"{len(blurry['reblur'])}+{len(sharp['reblur'])}",
                     **{m: round(auc(blurry[m], sharp[m]), 3) for m in ("reblur", "gradient")},
                     "relative": None, "blurry_judged": _share(blurry["reblur"]),
                     "sharp_judged_blurry": _share(sharp["reblur"])})
    return rows


_threshold = DEFAULT_THRESHOLD


def _share(reblur: list[float]) -> float:
    return round(float(np.mean(np.asarray(reblur) >= _threshold)), 3)


def burst_stream(photo: Path | None, frames: int, severity: str) -> dict:
    """All three scores in stream order on a labelled mostly-sharp stream with bursts."""
    uri = f"synthetic://{photo or ''}?size=640x360&frames={frames}&bursts=0.25&burst=12&severity={severity}"
    scorers = {m: BlurScorer(BlurScoreConfig(method=m)) for m in ("reblur", "gradient", "relative")}
    scores: dict[str, list[float]] = {m: [] for m in scorers}
    labels = []
    with open_source(uri) as source:
        for frame in source:
            labels.append(source.options.is_blurry(frame.index))
            for method, scorer in scorers.items():
                scores[method].append(scorer(frame.image))
    labels_arr = np.array(labels)
    row = {"data": f"synthetic bursts ({'photo ' + photo.name if photo else 'procedural'}, {severity})",
           "n": f"{labels_arr.sum()}+{(~labels_arr).sum()}"}
    for method, values in scores.items():
        values_arr = np.array(values)
        row[method] = round(auc(values_arr[labels_arr].tolist(), values_arr[~labels_arr].tolist()), 3)
    reblur = np.array(scores["reblur"])
    row["blurry_judged"] = _share(reblur[labels_arr].tolist())
    row["sharp_judged_blurry"] = _share(reblur[~labels_arr].tolist())
    return row


def real_photos(data: Path) -> dict | None:
    """Real blurry photos vs the sharp photos (independent images, each reduced to 640 px wide)."""
    blurry = []
    for sub in ("real/blur_only_photos", "real/gopro_blur_only", "real/handheld"):
        if (data / sub).is_dir():
            blurry += read_folder(data / sub)
    sharp = read_folder(data / "photos") if (data / "photos").is_dir() else []
    if not blurry or not sharp:
        return None
    b, s = independent_scores(blurry), independent_scores(sharp)
    return {"data": "real blurry photos vs sharp photos", "n": f"{len(blurry)}+{len(sharp)}",
            **{m: round(auc(b[m], s[m]), 3) for m in ("reblur", "gradient")}, "relative": None,
            "blurry_judged": _share(b["reblur"]), "sharp_judged_blurry": _share(s["reblur"])}


def real_video(path: Path, limit: int) -> dict:
    """Distribution of the reblur score on a real video (no labels)."""
    scorer = BlurScorer()
    values, elapsed = [], []
    with open_source(str(path)) as source:
        for frame in source:
            start = time.perf_counter()
            values.append(scorer(frame.image))
            elapsed.append((time.perf_counter() - start) * 1e3)
            if len(values) >= limit:
                break
    array = np.array(values)
    return {"video": path.name, "frames": len(values), "size": f"{frame.image.shape[1]}x{frame.image.shape[0]}",
            "reblur_p10": round(float(np.percentile(array, 10)), 3), "reblur_p50": round(float(np.median(array)), 3),
            "reblur_p90": round(float(np.percentile(array, 90)), 3), "judged_blurry": _share(values),
            "score_ms_p50": round(float(np.median(elapsed)), 2)}


def main() -> int:
    global _threshold
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=Path, default=Path.home() / ".cache" / "deblurrt" / "val_v1")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--frames", type=int, default=160, help="frames of the synthetic burst stream")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    _threshold = args.threshold
    rows = validation_sets(args.sets) if args.sets.is_dir() else []
    photos = sorted((args.data / "photos").glob("*.jpg")) if (args.data / "photos").is_dir() else []
    for severity in ("mild", "moderate"):
        rows.append(burst_stream(photos[0] if photos else None, args.frames, severity))
    rows.append(burst_stream(None, args.frames, "mild"))
    real = real_photos(args.data)
    if real:
        rows.append(real)
    videos = [p for p in (args.data / "real" / "video_car" / "car_blur_1280x720.mp4",
                          args.data / "real" / "vtest_static_camera.avi") if p.is_file()]
    video_rows = [real_video(p, 200) for p in videos]
    lines = [f"ROC AUC (1 = blurry always scores higher than sharp; 0.5 = chance); 'judged' columns: the reblur "
             f"score's share of frames judged blurry at threshold {_threshold}", "",
             "| data | n blurry+sharp | reblur | gradient | relative | blurry judged blurry | sharp judged blurry |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['data']} | {row['n']} | {row['reblur']} | {row['gradient']} | "
                     f"{row['relative'] if row['relative'] is not None else '-'} | {row['blurry_judged']:.0%} | "
                     f"{row['sharp_judged_blurry']:.0%} |")
    if video_rows:
        lines += ["", "| real video | frames | size | reblur p10 / p50 / p90 | judged blurry | score ms (p50) |",
                  "|---|---|---|---|---|---|"]
        for row in video_rows:
            lines.append(f"| {row['video']} | {row['frames']} | {row['size']} | {row['reblur_p10']} / "
                         f"{row['reblur_p50']} / {row['reblur_p90']} | {row['judged_blurry']:.0%} | "
                         f"{row['score_ms_p50']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        args.md.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"threshold": _threshold, "rows": rows, "videos": video_rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
