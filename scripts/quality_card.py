"""The model card's quality section: blur-only validation of candidates beside the shipped models and the
baselines, learning curves per blur set, and real footage before/after.

    python scripts/quality_card.py --models CAND.safetensors unet_small_prior unsharp identity \
        --runs ~/.cache/deblurrt/runs/unet_small_prior_v2 ~/.cache/deblurrt/runs/unet_small_v2 \
        --real ../shared/data/real --out docs/quality --tag 2026-11-29

Writes into --out: validation_<tag>.json (per image) and .md (the table), curves_<tag>.png (gain per set and
do-no-harm against step, one line per run), cc0_<tag>.png (scikit-image's CC0 photos blurred by both recipes:
blurry | each model | sharp; publishable), real_<tag>.png (crops of real blurry footage: input | each model),
real_<tag>.json (no-reference sharpness in/out per real image), and worst/best pictures per set. Pictures
of the validation photos and of the real footage are for looking at, not for committing (their licences).
The validation sets are those of `deblurrt validate` (built with --build there).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from deblurrt.validation import (
    NO_HARM_SETS,
    SET_NAMES,
    Restorer,
    family_of,
    format_markdown,
    score_sets,
    verdict,
    write_pictures,
)

REAL_PICKS = ("handheld/01.png", "handheld/4c6.png", "gopro_blur_only/GOPR0384_11_00-000010.png",
              "video_car/frames/0021.jpg", "blur_only_photos/hanzi.jpg", "blur_only_photos/postcard.png")


def plot_curves(runs: list[str], out: Path) -> None:
    """Gain per blur set and do-no-harm PSNR against step, from each run's metrics.csv. A run given as
    ``DIR@N`` started from another run's step ``N`` (``model.init``): its steps are shifted by ``N``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [s for s in SET_NAMES if s not in NO_HARM_SETS]
    keys = [f"val_gain/{s}" for s in sets] + [f"val_noharm/{s}" for s in NO_HARM_SETS]
    figure, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.2), squeeze=False)
    for spec in runs:
        folder, _, offset = spec.partition("@")
        run, start = Path(folder).expanduser(), int(offset or 0)
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        for axis, key in zip(axes[0], keys, strict=True):
            points = [(start + int(r["step"]), float(r[key])) for r in rows if r.get(key)]
            if points:
                axis.plot(*zip(*points, strict=True), marker=".", label=run.name)
            axis.set_title(key.split("/")[1] + (" (dB gain)" if "gain" in key else " (PSNR dB)"), fontsize=9)
            axis.set_xlabel("step", fontsize=8)
            axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)


def sharpness(bgr: np.ndarray) -> float:
    """Mean Sobel gradient magnitude of the luma (no reference; noise and ringing raise it too)."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    return float(np.sqrt(gx * gx + gy * gy).mean())


def real_footage(restorers: list[Restorer], real: Path, out_png: Path, out_json: Path, crop: int = 300) -> None:
    """Run every restorer on every real blurry image: sharpness in/out (JSON) and a picture of a few crops."""
    files = sorted(p for p in real.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    record: dict = {}
    rows = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        name = str(path.relative_to(real))
        outputs = [r(image) for r in restorers]
        record[name] = {"input": round(sharpness(image), 3),
                        **{r.label: round(sharpness(o), 3) for r, o in zip(restorers, outputs, strict=True)},
                        "mean_shift_levels": {r.label: round(float(o.mean() - image.mean()), 2)
                                              for r, o in zip(restorers, outputs, strict=True)}}
        if name in REAL_PICKS:
            height, width = image.shape[:2]
            y, x = max((height - crop) // 2, 0), max((width - crop) // 2, 0)
            tiles = []
            for label, picture in [("input", image)] + [(r.label, o) for r, o in zip(restorers, outputs, strict=True)]:
                tile = cv2.resize(picture[y:y + crop, x:x + crop], (crop, crop))
                text = f"{label[:22]}"
                cv2.putText(tile, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
                cv2.putText(tile, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
                tiles.append(tile)
            rows.append(np.hstack(tiles))
    if rows:
        cv2.imwrite(str(out_png), np.vstack(rows))
    ratios = {r.label: float(np.median([v[r.label] / v["input"] for v in record.values()])) for r in restorers}
    out_json.write_text(json.dumps({"median_sharpness_ratio": ratios, "per_image": record}, indent=1))


def cc0_grid(restorers: list[Restorer], out_png: Path, crop: int = 256) -> None:
    """Rows: scikit-image's CC0 / public-domain photos blurred by the kernel recipe (50 px) and the warp recipe
    (35 px); columns: blurry, each restorer, sharp. Publishable, unlike the validation photos."""
    from skimage import data

    from deblurrt.kernels import KernelRecipe, synthesize_kernel_pair
    from deblurrt.synthesis import BlurConfig, synthesize_pair

    rows = []
    for index, image in enumerate((data.coffee(), data.chelsea(), data.astronaut())):
        for recipe in ("kernel", "warp"):
            if recipe == "kernel":
                blurry, sharp, _ = synthesize_kernel_pair(image, 100 + index, KernelRecipe(length_px=(50, 50)))
            else:
                blurry, sharp = synthesize_pair(image, 100 + index, BlurConfig.clean((35, 35), reference_size=None))
            to_bgr = lambda x: cv2.cvtColor(np.clip(np.rint(x * 255), 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)  # noqa: E731
            blurry_bgr, sharp_bgr = to_bgr(blurry), to_bgr(sharp)
            height, width = blurry_bgr.shape[:2]
            top, left = (height - crop) // 2, (width - crop) // 2
            cells = [blurry_bgr] + [r(blurry_bgr) for r in restorers] + [sharp_bgr]
            rows.append(np.hstack([c[top:top + crop, left:left + crop] for c in cells]))
    grid = np.vstack(rows)
    header = np.full((28, grid.shape[1], 3), 255, np.uint8)
    for i, label in enumerate(["blurry"] + [r.label.replace(".safetensors", "") for r in restorers] + ["sharp"]):
        cv2.putText(header, label[:30], (i * crop + 4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(out_png), np.vstack([header, grid]), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main() -> None:
    """Validate, plot, look at real footage; write everything into --out."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--sets", default=str(Path.home() / ".cache" / "deblurrt" / "val_v1"))
    parser.add_argument("--runs", nargs="*", default=[], help="run folders (metrics.csv); DIR@N for a run that "
                        "continued another from its step N")
    parser.add_argument("--real", default=None, help="folder of real blurry footage (../shared/data/real)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cc0-only", action="store_true", help="only the publishable CC0 picture grid")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    set_dirs = {name: Path(args.sets) / name for name in SET_NAMES if (Path(args.sets) / name / "set.json").is_file()}
    missing = sorted(set(SET_NAMES) - set(set_dirs))
    if missing:  # sets added after the cache was built (e.g. soft): say so, score the others
        print(f"quality_card: sets not built under {args.sets}: {', '.join(missing)} (build them with 'deblurrt "
              "validate identity --build --data-root ../shared/data'); scoring the others", file=sys.stderr)
    reports = []
    restorers = [Restorer(m, None, args.threads) for m in args.models]
    cc0_grid([r for r in restorers if r.name != "identity"], out / f"cc0_{args.tag}.png")
    if args.cc0_only:
        return
    for restorer in restorers:
        report = score_sets(restorer, set_dirs, keep_outputs=True)
        write_pictures(report, set_dirs, out / f"cases_{args.tag}")
        report.pop("_pictures")
        report["targets"] = verdict(report, family_of(report))
        reports.append(report)
        print(format_markdown([report]).splitlines()[-1], flush=True)
    (out / f"validation_{args.tag}.json").write_text(json.dumps({"reports": reports}, indent=1))
    (out / f"validation_{args.tag}.md").write_text(format_markdown(reports))
    if args.runs:
        plot_curves(args.runs, out / f"curves_{args.tag}.png")
    if args.real:
        models = [r for r in restorers if r.name != "identity"]
        real_footage(models, Path(args.real), out / f"real_{args.tag}.png", out / f"real_{args.tag}.json")
    for restorer in restorers:
        restorer.close()
    print(format_markdown(reports))


if __name__ == "__main__":
    main()
