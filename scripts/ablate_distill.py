"""Ablation of the distillation links, and a check of the method's premise, on a held-out paired set.

1. Premise: in a classifier's feature space, a blurry image is close to its sharp version. Prints, per
   teacher level, the channel-standardised feature distance teacher(blurry) vs teacher(sharp) next to that
   of unrelated image pairs (the scale of "far").
2. Ablation: trains the student prior encoder twice for the same steps and data — with the cross-level and
   fused links (the default) and with same-level links only — and reports, on the held-out set, how well
   each student's same-level predictions match the teacher's features of the SHARP image.

usage: python scripts/ablate_distill.py PHOTOS VAL_PAIRS OUT_DIR [--steps 300] [--model unet_nano_prior]
       [--exclude a.jpg,b.jpg]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from deblurrt.config import load_config
from deblurrt.train.config import TrainConfig
from deblurrt.train.data.datasets import PairedFolder
from deblurrt.train.distill import DistillationHeads
from deblurrt.train.losses import feature_distance
from deblurrt.train.models import create_model
from deblurrt.train.teacher import build_teacher
from deblurrt.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


def load_student(run_dir: Path, model_name: str, teacher_channels) -> tuple[torch.nn.Module, DistillationHeads]:
    """The student encoder and heads from a distillation run's state file."""
    from safetensors.torch import load_file

    tensors = load_file(str(run_dir / "state.safetensors"))
    model = create_model(model_name)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    heads = DistillationHeads(model.prior_encoder.feature_channels, teacher_channels)
    heads.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("heads.")})
    return model.prior_encoder.eval(), heads.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path)
    parser.add_argument("val", type=Path, help="paired folder (blur/ + sharp/) of held-out photos")
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--model", default="unet_nano_prior")
    parser.add_argument("--exclude", default="", help="comma-separated photo names held out of training")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    teacher = build_teacher("efficientnet_lite0")
    pairs = PairedFolder(args.val)
    items = [pairs[i] for i in range(len(pairs))]
    blur = torch.stack([it["blur"] for it in items])
    sharp = torch.stack([it["sharp"] for it in items])
    with torch.no_grad():
        t_sharp, t_blur = teacher(sharp), teacher(blur)
        t_other = teacher(sharp.roll(1, dims=0))
    results = {"premise": [], "students": {}}
    print("premise: channel-standardised feature distance to teacher(sharp), per teacher level")
    print(f"{'level':>6} {'blurry':>9} {'unrelated':>10} {'ratio':>7}")
    for level, (s, b, o) in enumerate(zip(t_sharp, t_blur, t_other, strict=True)):
        near, far = float(feature_distance(b, s)), float(feature_distance(o, s))
        results["premise"].append({"level": level, "blurry": near, "unrelated": far})
        print(f"{level:>6} {near:9.3f} {far:10.3f} {near / far:7.2f}")
    pixel_near = float(((blur - sharp) ** 2).mean())
    pixel_far = float(((sharp.roll(1, dims=0) - sharp) ** 2).mean())
    print(f" pixel {pixel_near:9.4f} {pixel_far:10.4f} {pixel_near / pixel_far:7.2f}   (MSE in [0,1] RGB)")
    results["premise_pixel"] = {"blurry": pixel_near, "unrelated": pixel_far}

    variants = {"cross+fused": [], "same-level only": ["distill.cross_level_weight=0", "distill.fused_weight=0"]}
    for label, extra in variants.items():
        out_dir = args.out / label.replace(" ", "_").replace("+", "_")
        overrides = [f"model.name={args.model}", f"data.root={args.photos}", "data.val_root=",
                     f"data.exclude=[{args.exclude}]", "run.stage=distill", f"run.steps={args.steps}",
                     "optim.warmup_steps=50", f"run.out_dir={out_dir}", f"run.threads={args.threads}",
                     "data.workers=1", *extra]
        config = load_config(TrainConfig, REPO / "configs" / f"{args.model}.yaml", overrides)
        if not (out_dir / "state.safetensors").exists():
            Trainer(config, progress=True).fit()
        encoder, heads = load_student(out_dir, args.model, teacher.feature_channels)
        with torch.no_grad():
            predicted = heads(encoder(blur))["same"]
        distances = [float(feature_distance(p, t)) for p, t in zip(predicted, t_sharp, strict=True)]
        results["students"][label] = distances
    print(f"\nstudent(blurry) same-level match to teacher(sharp), {args.steps} steps each, {len(items)} held-out pairs")
    print(f"{'level':>6} " + " ".join(f"{label:>16}" for label in variants))
    for level in range(len(t_sharp)):
        print(f"{level:>6} " + " ".join(f"{results['students'][label][level]:16.3f}" for label in variants))
    (args.out / "ablation.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
