"""Write weights/validation.json: every shipped model's blur-only validation gain per processing scale, the
ranking that `deblurrt run --target-fps` chooses by (format: deblurrt.runtime.adaptive's docstring).

For each model in weights/*.onnx (or --models) and each scale, the `deblurrt validate` sets are scored through
the runtime's frame code at that scale (reduce -> model -> upscale the residual onto the full frame; scale 1 is
exactly what `deblurrt validate` reports). The gain of a (model, scale) is the mean over the blur sets of
each set's mean gain in dB; the do-no-harm PSNR (the sharp set, and the soft set where it is built) is
recorded too.

--compare-upscale also scores, at scale 0.5, two alternatives to the bilinear residual: a bicubic residual,
and a plain upscale of the model's reduced OUTPUT (what the residual route avoids), for the Markdown table.

Rerun it whenever the shipped weights change (the runtime warns when a model's sha256 differs from the
table's):

    python scripts/validation_table.py                        # all shipped models, scales 1,0.75,0.5,0.25
    python scripts/validation_table.py --limit 8 --md val.md  # quicker, and the table as Markdown
    deblurrt validate unet_small_prior --build --data-root ../shared/data   # build the sets first if missing
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
BLUR_SETS = ("warp_mild", "warp_moderate", "warp_severe", "kernel_moderate", "kernel_severe")


class ScaledRestorer:
    """What `deblurrt validate` scores (name, label, __call__(bgr) -> bgr), at a processing scale."""

    def __init__(self, backend, name: str, scale: float, mode: str = "residual_linear"):
        from deblurrt.runtime.adaptive import ScaledAdapter
        from deblurrt.runtime.prepost import FrameAdapter
        from deblurrt.validation import architecture_of

        self.backend, self.scale, self.mode = backend, scale, mode
        self.name = name
        self.architecture = architecture_of(backend, name)
        self.label = f"{name}@{scale:g}" + ("" if mode == "residual_linear" else f" ({mode})")
        inner = FrameAdapter.for_backend(backend)
        self.inner = inner
        interpolation = cv2.INTER_CUBIC if mode == "residual_cubic" else cv2.INTER_LINEAR
        self.adapter = inner if scale >= 1.0 else ScaledAdapter(inner, scale, interpolation)

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        if self.mode != "output_upscale" or self.scale >= 1.0:
            return self.adapter(self.backend.infer, bgr)
        from deblurrt.runtime.adaptive import processing_size

        height, width = bgr.shape[:2]
        small = cv2.resize(bgr, processing_size(width, height, self.scale), interpolation=cv2.INTER_AREA)
        return cv2.resize(self.inner(self.backend.infer, small), (width, height), interpolation=cv2.INTER_CUBIC)


def summary(report: dict) -> dict:
    """Mean gain over the blur sets, per-set means, do-no-harm PSNR (sharp and soft sets)."""
    sets = report["sets"]
    per_set = {name: sets[name]["gain_db"]["mean"] for name in BLUR_SETS if name in sets}
    return {"gain_db": round(float(np.mean(list(per_set.values()))), 3), "sets": per_set,
            "no_harm_psnr": sets["sharp"]["output_psnr"]["mean"] if "sharp" in sets else None,
            "soft_psnr": sets["soft"]["output_psnr"]["mean"] if "soft" in sets else None}


def main() -> int:
    from deblurrt.runtime.adaptive import SCALES, file_sha256
    from deblurrt.runtime.backends import open_backend
    from deblurrt.validation import score_sets

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=Path, default=Path.home() / ".cache" / "deblurrt" / "val_v1")
    parser.add_argument("--models", nargs="+", default=None, help="model files (default: weights/*.onnx)")
    parser.add_argument("--scales", default=",".join(f"{s:g}" for s in SCALES))
    parser.add_argument("--limit", type=int, default=None, help="first N images per set")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "weights" / "validation.json")
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--compare-upscale", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    scales = sorted({float(s) for s in args.scales.split(",")}, reverse=True)
    models = [Path(m) for m in args.models] if args.models else sorted((REPO / "weights").glob("*.onnx"))
    names = [*BLUR_SETS, "sharp", "soft"]
    set_dirs = {name: args.sets / name for name in names if (args.sets / name / "set.json").is_file()}
    if not set_dirs:
        print(f"no validation sets under {args.sets}: build them with 'deblurrt validate MODEL --build "
              "--data-root ../shared/data'", file=sys.stderr)
        return 2
    table = {"version": 1,
             "metric": "mean gain in dB over the blurry input (mean of the blur sets' means), deblurrt validate "
                       "sets, through the runtime at each processing scale (residual upscaled bilinear)",
             "sets": sorted(set_dirs), "limit": args.limit, "date": date.today().isoformat(),
             "generated_by": "scripts/validation_table.py", "models": {}}
    rows = []
    for model in models:
        options = {"threads": args.threads} if args.threads else {}
        backend = open_backend(model, **options)
        try:
            entry = {"file": model.name, "sha256": file_sha256(model), "gain_db": {}, "sets": {}}
            modes = [(scale, "residual_linear") for scale in scales]
            if args.compare_upscale:
                modes += [(0.5, "residual_cubic"), (0.5, "output_upscale")]
            for scale, mode in modes:
                restorer = ScaledRestorer(backend, model.stem, scale, mode)
                result = summary(score_sets(restorer, set_dirs, limit=args.limit, progress=not args.quiet))
                rows.append((restorer.label, result))
                print(f"{restorer.label}: gain {result['gain_db']:+.3f} dB, do-no-harm {result['no_harm_psnr']} dB",
                      file=sys.stderr, flush=True)
                if mode == "residual_linear":
                    key = f"{scale:g}"
                    entry["gain_db"][key] = result["gain_db"]
                    entry["sets"][key] = result["sets"]
                    if scale == 1.0:
                        entry["no_harm_psnr"] = result["no_harm_psnr"]
                        entry["soft_psnr"] = result["soft_psnr"]
        finally:
            backend.close()
        table["models"][model.stem] = entry
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    header = "| model@scale | mean gain dB | " + " | ".join(BLUR_SETS) + " | do-no-harm PSNR | soft PSNR |"
    lines = [header, "|" + "---|" * (len(BLUR_SETS) + 4)]
    for label, result in rows:
        cells = [f"{result['sets'].get(name, float('nan')):+.2f}" for name in BLUR_SETS]
        lines.append(f"| {label} | {result['gain_db']:+.2f} | " + " | ".join(cells)
                     + f" | {result['no_harm_psnr']} | {result['soft_psnr']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        args.md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
