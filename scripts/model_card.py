"""Measure a trained prior model against its no-prior twin and write the model card's numbers and pictures.

For each (prior, no-prior) pair of training runs: export the EMA weights to ONNX (checked: parity, audit),
evaluate both and the blurry input on the validation sets of every severity with `deblurrt eval` (the same
backend and pre/post code as `run`), measure FP16/INT8 accuracy of the prior model with `deblurrt export`,
and draw a grid (blurry | no prior | prior | sharp) on CC0 / public-domain images blurred with the same
synthesis (so the picture can be published; the validation photos cannot).

usage: python scripts/model_card.py RUNS_DIR VAL_DIR OUT_DIR --model unet_nano [--ship weights/]
       [--calib CALIB_PAIRS]   (INT8 calibration frames; default VAL_DIR/val_mild/blur. Prefer a set made from
                                training photos, so no validation photo informs the quantization.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

SEVERITIES = ("mild", "moderate", "severe")


def deblurrt(*args: str) -> subprocess.CompletedProcess:
    """Run a deblurrt command; fail loudly with its output."""
    result = subprocess.run([sys.executable, "-m", "deblurrt", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"deblurrt {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def cc0_images() -> list[tuple[str, np.ndarray]]:
    """Public-domain / CC0 photos that ship with scikit-image (BGR uint8)."""
    from skimage import data

    images = [("coffee (CC0)", data.coffee()), ("chelsea (CC0)", data.chelsea()),
              ("astronaut (public domain)", data.astronaut())]
    return [(name, cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)) for name, image in images]


def picture_grid(models: dict[str, Path], out_png: Path, severity: str = "severe", crop: int = 256) -> None:
    """Rows: CC0 images; columns: blurry, each model, sharp. Synthetic blur of the given severity."""
    from deblurrt.runtime.backends import open_backend
    from deblurrt.runtime.prepost import FrameAdapter
    from deblurrt.synthesis import BlurConfig, synthesize_pair

    backends = {label: open_backend(path) for label, path in models.items()}
    adapters = {label: FrameAdapter.for_backend(b) for label, b in backends.items()}
    rows = []
    for index, (_, bgr) in enumerate(cc0_images()):
        height, width = bgr.shape[:2]
        top, left = (height - crop) // 2, (width - crop) // 2
        sharp_rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        blurry, sharp = synthesize_pair(sharp_rgb, 1000 + index, BlurConfig.preset(severity))
        blurry_bgr = cv2.cvtColor((blurry * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
        sharp_bgr = cv2.cvtColor((sharp * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
        cells = [blurry_bgr] + [adapters[label](backends[label].infer, blurry_bgr) for label in models] + [sharp_bgr]
        rows.append(np.hstack([c[top:top + crop, left:left + crop] for c in cells]))
    grid = np.vstack(rows)
    labels = ["blurry"] + list(models) + ["sharp"]
    header = np.full((28, grid.shape[1], 3), 255, np.uint8)
    for i, label in enumerate(labels):
        cv2.putText(header, label, (i * crop + 6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(out_png), np.vstack([header, grid]), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    for backend in backends.values():
        backend.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    parser.add_argument("val", type=Path, help="folder with val_mild/, val_moderate/, val_severe/")
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", required=True, help="the no-prior name, e.g. unet_nano")
    parser.add_argument("--ship", type=Path, help="copy the prior model's safetensors + ONNX here")
    parser.add_argument("--checkpoint", default="last.safetensors", help="last.safetensors or best.safetensors")
    parser.add_argument("--calib", type=Path, help="INT8 calibration frames (default: VAL/val_mild/blur)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = {"no prior": args.model, "prior": f"{args.model}_prior"}
    onnx = {}
    for label, name in names.items():
        checkpoint = args.runs / name / args.checkpoint
        if not checkpoint.is_file():
            raise SystemExit(f"{checkpoint} missing: train it first (scripts/train_defaults.sh)")
        onnx[label] = args.out / f"{name}.onnx"
        deblurrt("export", str(checkpoint), "--out", str(onnx[label]), "--eval", str(args.val / "val_moderate"))
    card: dict = {"model": args.model, "checkpoint": args.checkpoint, "severities": {}}
    for severity in SEVERITIES:
        row = {}
        for label in names:
            report_path = args.out / f"eval_{names[label]}_{severity}.json"
            deblurrt("eval", str(onnx[label]), "--data", str(args.val / f"val_{severity}"), "--json",
                     str(report_path), "--quiet")
            report = json.loads(report_path.read_text())
            row["input"] = {"psnr": report["input_psnr"], "ssim": report["input_ssim"]}
            row[label] = {"psnr": report["psnr"], "ssim": report["ssim"]}
        row["prior_gain_db"] = row["prior"]["psnr"] - row["no prior"]["psnr"]
        card["severities"][severity] = row
        print(f"{severity:9s} input {row['input']['psnr']:.2f} dB | no prior {row['no prior']['psnr']:.2f} | "
              f"prior {row['prior']['psnr']:.2f} | prior gain {row['prior_gain_db']:+.2f} dB")
    precision = deblurrt("export", str(args.runs / names["prior"] / args.checkpoint), "--out",
                         str(args.out / f"{names['prior']}.int8.onnx"), "--precision", "int8", "--compare-all",
                         "--eval", str(args.val / "val_moderate"), "--calib",
                         str(args.calib or args.val / "val_mild" / "blur"))
    card["precision_report"] = precision.stdout[-2500:]
    picture_grid(onnx, args.out / f"{args.model}_grid.png")
    (args.out / f"{args.model}_card.json").write_text(json.dumps(card, indent=2))
    if args.ship:
        args.ship.mkdir(parents=True, exist_ok=True)
        shutil.copy(args.runs / names["prior"] / args.checkpoint, args.ship / f"{names['prior']}.safetensors")
        shutil.copy(onnx["prior"], args.ship / f"{names['prior']}.onnx")
        shutil.copy(args.runs / names["prior"] / "config.yaml", args.ship / f"{names['prior']}.yaml")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
