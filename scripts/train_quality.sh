#!/usr/bin/env bash
# Train a model on the quality recipe (configs/data/blur_v3.yaml; RECIPE=v2 for the earlier one), resumably
# across sessions.
#   scripts/train_quality.sh MODEL DATA_ROOT [KEY=VALUE ...]
# MODEL: a registered name (unet_small_prior, unet_small, unet_nano_prior, ...). DATA_ROOT holds photos/ and
# photos_more/ (../shared/data). Run state lives OUTSIDE the work tree, in $RUNS (default
# ~/.cache/deblurrt/runs/<MODEL>_<RECIPE>): re-run the same command to continue exactly where it stopped. With no state
# there, training starts from the shipped weights: weights/<MODEL>.safetensors, or for a no-prior twin the
# backbone of weights/<MODEL>_prior.safetensors (the prior-vs-twin comparison starts from one point).
# Every run holds out configs/splits/val_photos.txt (training photos: a folder of links to the rest) and validates
# on the blur-only sets (built on first use). THREADS (default 2) sets torch's threads; two runs side by side on a
# 2-core machine: THREADS=1 each. Each loaded sample trains 4 steps on average, drawn at random from a pool of
# the last 512 (data.reuse=4 data.pool=512): making the blur costs more than a small model's step on a CPU.
set -euo pipefail
usage="usage: $0 MODEL DATA_ROOT [KEY=VALUE ...]"
if (( $# < 2 )); then echo "$usage" >&2; exit 2; fi
model=$1; data_root=$(cd "$2" && pwd); shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
deblurrt=${DEBLURRT:-deblurrt}
cache=${DEBLURRT_CACHE:-$HOME/.cache/deblurrt}
runs=${RUNS:-$cache/runs}
recipe=${RECIPE:-v3}
[[ -f "$repo/configs/data/blur_$recipe.yaml" ]] || { echo "no recipe configs/data/blur_$recipe.yaml (RECIPE=v2 or v3)" >&2; exit 2; }
out="$runs/${model}_$recipe"
photos="$cache/train_photos"
val="$cache/val_v1"

DEBLURRT="$deblurrt" "$repo/scripts/prepare_quality_data.sh" "$data_root" "$cache"

config="$repo/configs/$model.yaml"
[[ -f "$config" ]] || { echo "no config $config: MODEL must be a registered name" >&2; exit 2; }
init=()
if [[ ! -f "$out/state.safetensors" ]]; then
    if [[ -f "$repo/weights/$model.safetensors" ]]; then init=(model.init="$repo/weights/$model.safetensors")
    elif [[ -f "$repo/weights/${model}_prior.safetensors" ]]; then init=(model.init="$repo/weights/${model}_prior.safetensors")
    fi
fi
resume=()
[[ -f "$out/state.safetensors" ]] && resume=(--resume)
exec "$deblurrt" train "$config" "$repo/configs/data/blur_$recipe.yaml" data.root="$photos" data.val_root="$val" \
    data.workers=1 data.reuse=4 data.pool=512 optim.lr=5e-4 optim.warmup_steps=100 run.steps=40000 run.val_every=250 run.ckpt_every=250 \
    run.threads="${THREADS:-2}" run.out_dir="$out" "${init[@]}" "$@" "${resume[@]}"
