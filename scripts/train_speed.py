"""Training throughput on this CPU: seconds per step of a model under each numeric setting, and the cost of
making one batch of synthetic data, so the trainer's defaults (run.cpu_bf16, run.channels_last, threads,
data.workers) can be chosen per machine with numbers.

    python scripts/train_speed.py --model unet_small_prior --batch 8 --crop 256 --steps 6 --json speed.json

Pause any training first (kill -STOP PID; kill -CONT PID after): a measurement shared with a training run
is void. Timings are medians over the timed steps, after two untimed warm-up steps.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU model and its bf16/int8 matrix features, for the record."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    features = [f for f in ("amx_bf16", "avx512_bf16", "avx512_vnni", "avx2") if f in text]
    return f"{name} ({', '.join(features)})"


def time_steps(model_name: str, batch: int, crop: int, steps: int, threads: int, bf16: bool,
               channels_last: bool) -> float:
    """Median seconds per optimisation step (forward, float32 loss, backward, AdamW) on random data."""
    from deblurrt.train.losses import deblur_loss
    from deblurrt.train.models.registry import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(model_name)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    blur = torch.rand(batch, 3, crop, crop)
    sharp = torch.rand(batch, 3, crop, crop)
    if channels_last:
        blur = blur.contiguous(memory_format=torch.channels_last)
    times = []
    for step in range(steps + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            output = model(blur)
        loss, _ = deblur_loss(output.float(), sharp, "charbonnier", 0.1, (1.0,))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_batch_synthesis(photos: str, batch: int, crop: int, blur_px: str, count: int) -> float:
    """Median seconds to synthesise one batch of the training recipe on one core."""
    import cv2

    from deblurrt.synthesis import BlurConfig, parse_severity
    from deblurrt.train.data.datasets import SyntheticPairs

    cv2.setNumThreads(1)
    config = BlurConfig(severity=parse_severity(blur_px), reference_size=None, sharp_prob=0.1, kernel_prob=0.3)
    dataset = SyntheticPairs(photos, crop=crop, length=10_000, config=config, seed=0)
    dataset[0]
    times = []
    for b in range(count):
        start = time.perf_counter()
        for i in range(batch):
            dataset[1 + b * batch + i]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Measure every setting and print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="unet_small_prior")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--photos", default=None, help="a folder of sharp photos: also time batch synthesis")
    parser.add_argument("--blur-px", default="4-80")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for threads in args.threads:
        for bf16, channels_last in ((False, False), (False, True), (True, False), (True, True)):
            seconds = time_steps(args.model, args.batch, args.crop, args.steps, threads, bf16, channels_last)
            rows.append({"threads": threads, "bf16": bf16, "channels_last": channels_last, "sec_per_step": seconds})
            print(f"threads {threads}  bf16 {bf16!s:5}  channels_last {channels_last!s:5}  {seconds:.3f} s/step",
                  flush=True)
    record = {"model": args.model, "batch": args.batch, "crop": args.crop, "cpu": cpu_name(),
              "torch": torch.__version__, "steps": rows}
    if args.photos:
        record["batch_synthesis_sec"] = time_batch_synthesis(args.photos, args.batch, args.crop, args.blur_px, 4)
        print(f"batch synthesis (one core): {record['batch_synthesis_sec']:.3f} s per batch of {args.batch}")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
