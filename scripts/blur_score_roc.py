"""How well does each cheap blur score (deblurrt.runtime.blurscore) separate blurry from sharp frames?

ROC AUC (the probability that a blurry frame scores higher than a sharp one; 0.5 = chance, 1 = perfect) of
each score (detail, reblur, gradient), absolute and, in streams, relative to the running reference (score
minus the minimum of the last 30 frames: what the --skip-sharp gate compares), on:

- the blur-only validation sets (``deblurrt validate --build``): ``sharp`` against each blur set; independent
  images, so only absolute scores apply;
- mostly-sharp synthetic streams with blurry bursts (``synthetic://PHOTO?bursts=0.25&burst=12``) over every
  fourth shared photo, mild and moderate shake, every frame labelled: per-stream AUC (mean and worst) and
  pooled over all streams (what one threshold faces), and the gate's verdicts at the default threshold;
- real footage without labels: real blurry photos (real/blur_only_photos, gopro_blur_only, handheld) against
  the sharp photos (absolute AUC, independent images), and the share of frames the gate judges blurry on the
  two real videos (video_car: hand-held, blurry throughout with varying blur; vtest: a static street camera).

The score's cost is CPU time of the scoring thread (time.thread_time), which a busy machine does not inflate.

usage: python scripts/blur_score_roc.py [--sets ~/.cache/deblurrt/val_v1] [--data ../shared/data]
       [--frames 120] [--threshold 0.10] [--md out.md] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from deblurrt.runtime.blurscore import DEFAULT_THRESHOLD, SCORES, BlurScoreConfig, BlurScorer, PassThroughGate
from deblurrt.runtime.sources import IMAGE_SUFFIXES, open_source

BLUR_SETS = ("warp_mild", "warp_moderate", "warp_severe", "kernel_moderate", "kernel_severe")


def auc(positive, negative) -> float:
    """Mann-Whitney ROC AUC: P(positive > negative) + 0.5 P(tie)."""
    pos, neg = np.asarray(positive, np.float64)[:, None], np.asarray(negative, np.float64)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def absolute_scores(images: list[np.ndarray]) -> dict[str, list[float]]:
    """Every score of unrelated images (no running reference)."""
    return {method: [BlurScorer(BlurScoreConfig(method=method))(image) for image in images] for method in SCORES}


def read_folder(folder: Path) -> list[np.ndarray]:
    """Every image of a folder (sorted), BGR uint8."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return [image for p in paths if (image := cv2.imread(str(p), cv2.IMREAD_COLOR)) is not None]


def independent_rows(args) -> list[dict]:
    """Absolute AUC on the validation sets and on real blurry vs sharp photos."""
    rows = []
    if args.sets.is_dir() and (args.sets / "sharp").is_dir():
        sharp = absolute_scores(read_folder(args.sets / "sharp" / "blur"))
        for name in BLUR_SETS:
            if (args.sets / name / "blur").is_dir():
                blurry = absolute_scores(read_folder(args.sets / name / "blur"))
                rows.append({"data": f"val_v1 {name} vs sharp", "n": f"{len(blurry['detail'])}+{len(sharp['detail'])}",
                             **{m: round(auc(blurry[m], sharp[m]), 3) for m in SCORES}})
    blurry_photos = []
    for sub in ("real/blur_only_photos", "real/gopro_blur_only", "real/handheld"):
        if (args.data / sub).is_dir():
            blurry_photos += read_folder(args.data / sub)
    sharp_photos = read_folder(args.data / "photos") if (args.data / "photos").is_dir() else []
    if blurry_photos and sharp_photos:
        b, s = absolute_scores(blurry_photos), absolute_scores(sharp_photos)
        rows.append({"data": "real blurry photos vs sharp photos", "n": f"{len(blurry_photos)}+{len(sharp_photos)}",
                     **{m: round(auc(b[m], s[m]), 3) for m in SCORES}})
    return rows


def stream_rows(args) -> tuple[list[dict], dict]:
    """Per-stream and pooled AUC, absolute and relative, and the gate's verdicts, on burst streams."""
    photos = sorted((args.data / "photos").glob("*.jpg"))[1::4] if (args.data / "photos").is_dir() else []
    scenes = [*photos, None]
    per_stream = []
    pooled = {f"{m}{kind}": ([], []) for m in SCORES for kind in ("", "_rel")}
    gate_counts = {"blurry_flagged": 0, "blurry": 0, "sharp_passed": 0, "sharp": 0}
    cpu_ms = []
    for scene in scenes:
        for severity in ("mild", "moderate"):
            uri = (f"synthetic://{scene or ''}?size=640x360&frames={args.frames}&bursts=0.25&burst=12"
                   f"&severity={severity}&seed=1")
            scorers = {m: BlurScorer(BlurScoreConfig(method=m)) for m in SCORES}
            gate = PassThroughGate(args.threshold)
            values = {key: [] for key in pooled}
            labels = []
            with open_source(uri) as source:
                for frame in source:
                    blurry = source.options.is_blurry(frame.index)
                    labels.append(blurry)
                    for method, scorer in scorers.items():
                        start = time.thread_time()
                        score, level = scorer.level(frame.image)
                        if method == "detail":
                            cpu_ms.append((time.thread_time() - start) * 1e3)
                        values[method].append(score)
                        values[f"{method}_rel"].append(level)
                    decision = gate.decide(frame.image)
                    key = "blurry" if blurry else "sharp"
                    gate_counts[key] += 1
                    gate_counts["blurry_flagged" if blurry else "sharp_passed"] += int(decision.run_model == blurry)
            mask = np.array(labels)
            row = {"scene": scene.name if scene else "procedural", "severity": severity}
            for key, series in values.items():
                series = np.array(series)
                row[key] = auc(series[mask], series[~mask])
                pooled[key][0].extend(series[mask].tolist())
                pooled[key][1].extend(series[~mask].tolist())
            per_stream.append(row)
    summary = {"streams": len(per_stream), "frames": gate_counts["blurry"] + gate_counts["sharp"],
               "auc_mean": {k: round(float(np.mean([r[k] for r in per_stream])), 3) for k in pooled},
               "auc_worst": {k: round(float(np.min([r[k] for r in per_stream])), 3) for k in pooled},
               "auc_pooled": {k: round(auc(*pooled[k]), 3) for k in pooled},
               "gate": {"blurry_flagged": round(gate_counts["blurry_flagged"] / max(gate_counts["blurry"], 1), 3),
                        "sharp_passed": round(gate_counts["sharp_passed"] / max(gate_counts["sharp"], 1), 3)},
               "detail_cpu_ms_p50": round(float(np.median(cpu_ms)), 2) if cpu_ms else None}
    return per_stream, summary


def video_rows(args) -> list[dict]:
    """The gate's verdicts and the detail score's spread on the real videos."""
    rows = []
    for path in (args.data / "real" / "video_car" / "car_blur_1280x720.mp4",
                 args.data / "real" / "vtest_static_camera.avi"):
        if not path.is_file():
            continue
        gate = PassThroughGate(args.threshold)
        scores, flagged = [], 0
        with open_source(str(path)) as source:
            for frame in source:
                decision = gate.decide(frame.image)
                scores.append(decision.score)
                flagged += int(decision.run_model)
                if len(scores) >= 200:
                    break
        array = np.array(scores)
        rows.append({"video": path.name, "frames": len(scores), "size": f"{frame.image.shape[1]}x{frame.image.shape[0]}",
                     "detail_p10_p50_p90": [round(float(v), 3) for v in np.percentile(array, [10, 50, 90])],
                     "judged_blurry": round(flagged / len(scores), 3)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=Path, default=Path.home() / ".cache" / "deblurrt" / "val_v1")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--frames", type=int, default=120, help="frames per synthetic burst stream")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    independent = independent_rows(args)
    streams, summary = stream_rows(args)
    videos = video_rows(args)
    lines = ["ROC AUC, absolute scores on independent images (1 = every blurry image scores higher than every "
             "sharp one; 0.5 = chance)", "", "| data | n blurry+sharp | detail | reblur | gradient |", "|---|---|---|---|---|"]
    lines += [f"| {r['data']} | {r['n']} | {r['detail']} | {r['reblur']} | {r['gradient']} |" for r in independent]
    lines += ["", f"ROC AUC on {summary['streams']} mostly-sharp synthetic streams with blurry bursts "
              f"({summary['frames']} labelled frames): mean / worst per stream, and pooled (one threshold for all)",
              "", "| score | absolute: mean / worst / pooled | relative to the last 30 frames: mean / worst / pooled |",
              "|---|---|---|"]
    for method in SCORES:
        a, r = method, f"{method}_rel"
        lines.append(f"| {method} | {summary['auc_mean'][a]} / {summary['auc_worst'][a]} / {summary['auc_pooled'][a]} | "
                     f"{summary['auc_mean'][r]} / {summary['auc_worst'][r]} / {summary['auc_pooled'][r]} |")
    gate = summary["gate"]
    lines += ["", f"gate (detail, relative, threshold {args.threshold}): {gate['blurry_flagged']:.1%} of blurry frames "
              f"deblurred, {gate['sharp_passed']:.1%} of sharp frames passed through; detail score "
              f"{summary['detail_cpu_ms_p50']} ms CPU per 640x360 frame (p50)"]
    if videos:
        lines += ["", "| real video | frames | size | detail p10 / p50 / p90 | judged blurry by the gate |", "|---|---|---|---|---|"]
        lines += [f"| {r['video']} | {r['frames']} | {r['size']} | {' / '.join(map(str, r['detail_p10_p50_p90']))} | "
                  f"{r['judged_blurry']:.0%} |" for r in videos]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        args.md.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"threshold": args.threshold, "independent": independent, "streams": streams,
                                         "summary": summary, "videos": videos}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
