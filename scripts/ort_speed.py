"""Model-only ONNX Runtime CPU speed of registered models (random weights: speed does not depend on them).

Exports each model to ONNX (dynamic H/W), pads the frame to the model's multiple as the runtime does, warms
up, then times single-frame inference for a fixed time and prints p50/p90 latency and FPS. This is the
measurement behind the 'nano >= 25 fps at 640x360 on the CPU' target; `deblurrt bench` will supersede it.

usage: python scripts/ort_speed.py [--models unet_nano,unet_nano_prior] [--size 360x640] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"size must be HxW like 360x640, received {text!r}") from error
    return height, width


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="unet_nano,unet_nano_prior,mimo_unet_nano,mimo_unet_nano_prior,"
                        "nafnet_nano,nafnet_nano_prior")
    parser.add_argument("--size", type=parse_size, default=(360, 640), help="frame size HxW (default 360x640)")
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per model")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from deblurrt.export.onnx_export import export_onnx
    from deblurrt.train.complexity import measure_cost
    from deblurrt.train.models import create_model

    height, width = args.size
    results = []
    print(f"ONNX Runtime {ort.__version__} CPU, {args.threads} threads, {platform.processor() or platform.machine()}, "
          f"frame {height}x{width}, random weights")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            torch.manual_seed(0)
            model = create_model(name).eval()
            multiple = model.pad_multiple
            padded = (-(-height // multiple) * multiple, -(-width // multiple) * multiple)
            path = export_onnx(model, Path(folder) / f"{name}.onnx", padded)
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            frame = np.random.default_rng(0).random((1, 3, *padded), dtype=np.float32)
            for _ in range(5):
                session.run(None, {"blurry": frame})
            latencies = []
            deadline = time.perf_counter() + args.seconds
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                session.run(None, {"blurry": frame})
                latencies.append((time.perf_counter() - start) * 1000)
            p50, p90 = np.percentile(latencies, [50, 90])
            gmacs = measure_cost(name, height, width).gmacs
            row = {"model": name, "height": height, "width": width, "padded": list(padded),
                   "p50_ms": round(float(p50), 2), "p90_ms": round(float(p90), 2), "fps": round(1000 / p50, 1),
                   "gmacs": round(gmacs, 3), "gmac_per_s": round(gmacs / (p50 / 1000), 1),
                   "iterations": len(latencies)}
            results.append(row)
            print(f"{name:<24} padded {padded[0]}x{padded[1]}  p50 {p50:6.1f} ms  p90 {p90:6.1f} ms  "
                  f"{row['fps']:5.1f} fps  {gmacs:5.2f} GMAC  {row['gmac_per_s']:5.1f} GMAC/s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "onnxruntime": ort.__version__,
                                         "date": time.strftime("%Y-%m-%d"), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
