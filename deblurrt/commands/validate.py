"""The blur-only validation every candidate model must pass: does it remove motion blur, and does it leave
sharp frames alone? Reports mean and median gain per set, per image, do-no-harm, and pictures.

Sets (480x640 crops of held-out photos, configs/splits/val_photos.txt; blur ONLY: no noise, JPEG or tone
changes, which would reward denoising and tone mapping instead of deblurring):
  warp_mild / warp_moderate / warp_severe   the training recipe's camera shake, 8-20 / 20-40 / 40-80 px
  kernel_moderate / kernel_severe           an independent recipe (uniform shake kernels), 20-40 / 40-80 px
  sharp                                     do no harm: sharp photo in, output vs input PSNR and brightness shift
  soft                                      do no harm on soft content: the photo partly out of focus (2-6 px
                                            disk over a smooth depth mask); a model that sharpens whatever looks
                                            soft passes 'sharp' and fails here
Both recipes put the sharp target at the blur's centre of mass. The sets are built once from the photos
(--build, deterministic) into --sets (default ~/.cache/deblurrt/val_v1) and reused.

MODEL: a shipped name (unet_small_prior), a file (.onnx, .engine, .safetensors), or a baseline:
identity (the input itself) or unsharp (an unsharp mask, the classic baseline a model must beat).
Models run through the same backends and frame code as 'deblurrt run'.

Targets (the quality issue): *_small*: moderate >= +3 dB, severe >= +2 dB on both recipes; *_nano*:
+1.5 / +1 dB; every model: do-no-harm >= 38 dB with |mean shift| <= 1 level, on 'sharp' and on 'soft'.
Sets added later (soft, 2026-11-30) are built by one --build run; the others are reused as they are.

examples:
  deblurrt validate unet_small_prior unsharp identity --build --data-root ../shared/data
  deblurrt validate runs/cand/best.safetensors unet_small_prior --json val.json --md val.md --pictures pics/
  deblurrt validate unet_nano_prior --sets-only warp_moderate,sharp --limit 8
  deblurrt validate runs/cand/soup.safetensors unet_nano_prior --incumbent unet_nano_prior
With several models, the last table counts per set the images on which each does better or worse than the
first model (give the candidate first, the model it would replace after it); files of the same name
(runs/A/last.safetensors, runs/B/last.safetensors) are labelled with their folders. --incumbent names the
model in service: a last table says whether each other one may replace it (the ship rule of MODELS.md).
Outputs (--json, --md, --pictures) are checked before any work; existing ones need --overwrite.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deblurrt.argtypes import positive_int
from deblurrt.errors import DeblurrtError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deblurrt validate``."""
    from deblurrt.validation import SET_NAMES

    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="shipped name, model file (.onnx/.engine/.safetensors), or baseline identity/unsharp")
    parser.add_argument("--sets", default=str(Path.home() / ".cache" / "deblurrt" / "val_v1"), metavar="DIR",
                        help="folder of the validation sets (built there with --build); default %(default)s")
    parser.add_argument("--build", action="store_true",
                        help="build missing sets from the held-out photos first (needs --data-root)")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="folder the split file's paths are relative to (e.g. ../shared/data)")
    parser.add_argument("--split", default=None, metavar="FILE",
                        help="held-out photo list (default: configs/splits/val_photos.txt)")
    parser.add_argument("--count", type=positive_int, default=24, metavar="N", help="pairs per set when building")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the crops and blurs when building (default 0, the reference sets); another "
                             "seed into another --sets folder is a fresh draw to confirm a close decision on")
    parser.add_argument("--sets-only", default=None, metavar="A,B",
                        help=f"comma-separated subset of: {', '.join(SET_NAMES)}")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N", help="first N images per set")
    parser.add_argument("--backend", choices=["ort", "trt", "torch"], default=None, help="force a backend")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N", help="inference threads")
    parser.add_argument("--json", default=None, metavar="OUT", help="full report (per image) as JSON")
    parser.add_argument("--md", default=None, metavar="OUT", help="the summary table as Markdown")
    parser.add_argument("--pictures", default=None, metavar="DIR",
                        help="write worst and best case per set and model (blurry | output | sharp) as PNG")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing --json/--md files and pictures in --pictures")
    parser.add_argument("--incumbent", default=None, metavar="MODEL",
                        help="one of the MODELs, the one in service: a last table says whether each other model "
                        "passes the ship rule against it (better on every blur set's mean, and on sharp and soft "
                        "in PSNR and |shift|)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Build or find the sets, score every model on them, print and write the reports."""
    from deblurrt.outputs import check_output_file, check_output_folder, write_json_atomic, write_text_atomic
    from deblurrt.validation import (
        SET_NAMES,
        Restorer,
        build_sets,
        compare_per_image,
        default_split_file,
        distinct_labels,
        family_of,
        format_markdown,
        format_ship_rule,
        headline,
        read_photo_list,
        score_sets,
        ship_rule,
        verdict,
        write_pictures,
    )

    if args.incumbent is not None and args.incumbent not in args.models:
        raise DeblurrtError(f"--incumbent {args.incumbent!r} is not one of the MODELs ({', '.join(args.models)}). "
                            "Fix: list the model in service among them too, written the same way, e.g. "
                            "'deblurrt validate CANDIDATE unet_nano_prior --incumbent unet_nano_prior'")
    if args.incumbent is not None and len(args.models) < 2:
        raise DeblurrtError("--incumbent needs a candidate beside it. Fix: give two or more MODELs")
    # every output is checked before the sets are built and the models run
    for option, value in (("--json", args.json), ("--md", args.md)):
        if value:
            check_output_file(value, option=option, overwrite=args.overwrite, inputs=[args.sets])
    if args.pictures:
        check_output_folder(args.pictures, option="--pictures", overwrite=args.overwrite, inputs=[args.sets])
    chosen = SET_NAMES if not args.sets_only else tuple(s.strip() for s in args.sets_only.split(",") if s.strip())
    unknown = [s for s in chosen if s not in SET_NAMES]
    if unknown:
        raise DeblurrtError(f"--sets-only: unknown set(s) {', '.join(unknown)}. Fix: choose from {', '.join(SET_NAMES)}")
    sets_root = Path(args.sets).expanduser()
    if args.build:
        if not args.data_root:
            raise DeblurrtError("--build needs --data-root: the folder the split file's photo paths are relative "
                                "to (e.g. --data-root ../shared/data)")
        photos = read_photo_list(args.split or default_split_file(), args.data_root)
        build_sets(sets_root, photos, count=args.count, seed=args.seed, sets=chosen, progress=not args.quiet)
    set_dirs = {}
    for name in chosen:
        folder = sets_root / name
        if not (folder / "set.json").is_file():
            raise DeblurrtError(f"validation set {folder} is missing or incomplete. Fix: build it with --build "
                                "--data-root DIR (the held-out photos), or point --sets at built sets")
        set_dirs[name] = folder
    reports = []
    for model, label in zip(args.models, distinct_labels(args.models), strict=True):
        restorer = Restorer(model, args.backend, args.threads, label=label)
        try:
            report = score_sets(restorer, set_dirs, limit=args.limit, keep_outputs=bool(args.pictures),
                                progress=not args.quiet)
        finally:
            restorer.close()
        if args.pictures:
            write_pictures(report, set_dirs, Path(args.pictures))
        report.pop("_pictures", None)
        report["targets"] = verdict(report, family_of(report))
        reports.append(report)
    table = format_markdown(reports)
    incumbent = reports[args.models.index(args.incumbent)] if args.incumbent is not None else None
    if incumbent is not None:
        table += "\n" + format_ship_rule(reports, incumbent)
    print(table)
    if args.md:
        write_text_atomic(args.md, table, what="--md")
    if args.json:
        record = {"sets": {n: json.loads((d / "set.json").read_text()) for n, d in set_dirs.items()},
                  "reports": reports}
        if len(reports) == 1:
            record.update(headline(reports[0]))
        else:
            record["per_image_vs_first"] = {r["label"]: compare_per_image(reports[0], r) for r in reports[1:]}
        if incumbent is not None:
            record["ship_rule"] = {"incumbent": incumbent["label"],
                                   "models": {r["label"]: ship_rule(r, incumbent) for r in reports
                                              if r is not incumbent}}
        write_json_atomic(args.json, record, what="--json")
    print("cells: mean / median gain in dB over the blurry input; sharp, soft: mean PSNR of output vs input (dB, "
          "capped at 100) / mean brightness shift (8-bit levels) (largest shift of any one image)", file=sys.stderr)
    return 0
