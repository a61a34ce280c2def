#!/usr/bin/env bash
# Train a shipped default and its no-prior twin under the same budget, resumably (re-run to continue).
#   scripts/train_defaults.sh unet_nano PHOTOS_DIR VAL_DIR RUNS_DIR [DISTILL_STEPS] [DEBLUR_STEPS] [KEY=VALUE ...]
# KEY=VALUE overrides after the step counts go to every stage (e.g. data.crop=128), except the keys each stage
# sets itself (run.stage, run.steps, run.out_dir, model.name, prior.init, the distillation's warm-up).
# BRANCH=prior|twin runs only that half (two shells can then train the pair side by side, with THREADS=1
# each on a 2-core machine); THREADS sets torch's intra-op threads (default 2).
# VAL_DIR holds val_photos.txt and val_{mild,moderate,severe}/ made by:
#   deblurrt data split PHOTOS_DIR --val-fraction 0.16 --seed 0 --out VAL_DIR
#   deblurrt data synth PHOTOS_DIR VAL_DIR/val_moderate --photos-list VAL_DIR/val_photos.txt \
#       --severity moderate --count 36 --size 256x256 --seed 1        (and mild, severe)
set -euo pipefail
usage="usage: $0 MODEL PHOTOS_DIR VAL_DIR RUNS_DIR [DISTILL_STEPS] [DEBLUR_STEPS] [KEY=VALUE ...]"
if (( $# < 4 )); then echo "$usage" >&2; exit 2; fi
model=$1; photos=$2; val=$3; runs=$4; distill_steps=${5:-800}; deblur_steps=${6:-8000}
if ! [[ $distill_steps =~ ^[0-9]+$ && $deblur_steps =~ ^[0-9]+$ ]]; then
    echo "DISTILL_STEPS and DEBLUR_STEPS must be integers (received '$distill_steps' '$deblur_steps'); give both" \
         "before any KEY=VALUE override." >&2
    echo "$usage" >&2; exit 2
fi
branch=${BRANCH:-both}
case $branch in both|prior|twin) ;; *) echo "BRANCH must be prior, twin or both, not '$branch'" >&2; exit 2;; esac
deblurrt=${DEBLURRT:-deblurrt}
exclude="[$(paste -sd, "$val/val_photos.txt")]"
common=(data.root="$photos" "data.exclude=$exclude" data.val_root="$val/val_moderate" data.workers=1
        run.threads="${THREADS:-2}" run.ckpt_every=250 run.val_every=1000 run.log_every=25 "${@:7}")

stage() {  # stage OUT_DIR ARGS...: run, or resume when a state exists, skip when finished
    local out=$1; shift
    if [[ -f "$out/curves.png" ]]; then echo "done already: $out"; return; fi
    local resume=()
    [[ -f "$out/state.safetensors" ]] && resume=(--resume)
    "$deblurrt" train "configs/${model}_prior.yaml" "${common[@]}" run.out_dir="$out" "$@" "${resume[@]}" --no-progress
}

if [[ $branch != twin ]]; then
    stage "$runs/${model}_prior_distill" run.stage=distill run.steps="$distill_steps" optim.warmup_steps=100
    stage "$runs/${model}_prior" run.stage=deblur run.steps="$deblur_steps" \
        prior.init="$runs/${model}_prior_distill/last.safetensors"
fi
if [[ $branch != prior ]]; then
    stage "$runs/${model}" model.name="$model" run.stage=deblur run.steps="$deblur_steps"
fi
