#!/usr/bin/env bash
# End a 30 dB-cap training run the way the shipped nano was made (MODELS.md, "Session 7"): two short polishing
# phases at the 60 dB cap from the run's weights, side by side, then their equal-weight average, then the
# blur-only validation of all of them beside the shipped model.
#   scripts/polish.sh MODEL RUN_WEIGHTS OUT [KEY=VALUE ...]
# MODEL: the registered name (unet_nano_prior, unet_small_prior, ...); RUN_WEIGHTS: the run's EMA weights (its
# last.safetensors, "R"); OUT: a new folder for the phases, the soup and the validation report.
#   A: R + STEPS steps at loss.psnr_cap_db=60, lr 1e-4 (20 warm-up steps, cosine to zero)
#   B: the same with data.sharp_share=B_SHARE (default 0.4; more near-sharp samples: do no harm) and
#      data.defocus_share=B_DEFOCUS (default 0.15; defocused samples: soft content is not blur) and, when
#      B_DEFOCUS_PX is set (e.g. 2-10), data.defocus_px=B_DEFOCUS_PX (their disk radii; unset: the recipe's 1.5-6)
#   soup: (A + B) / 2 (scripts/soup.py)
# The 30 dB cap is what lets a network learn to deconvolve; the 60 dB phase buys back sharp frames (3.5 dB on
# sharp photos for 0.02-0.07 dB of blur gain, measured in session 7); the average of the two phases trades between
# them (session 7's soup beat the weights it replaced on every blur set, which neither phase did alone).
# Session 11 shipped B alone at B_SHARE=0.4: on that run every soup lost on the soft set (MODELS.md), so read
# all rows of the validation, not only the soup's. Session 12's defocused samples in B (its "D40") fixed the
# soft set and mild blur together, and that soup shipped: hence B's defaults (session 7's B was B_SHARE=0.25,
# B_DEFOCUS=0).
# Extra KEY=VALUE overrides go to both phases. STEPS (default 800); THREADS per phase (default 1: two phases on
# a 2-core machine). Data and validation sets as scripts/train_quality.sh prepares them (DEBLURRT_CACHE).
# Then: OUT/validation.json and the tables it prints; the last one says which of them passes the ship rule against
# the shipped model (better on every blur set and on do-no-harm, MODELS.md): ship only those.
set -euo pipefail
usage="usage: $0 MODEL RUN_WEIGHTS OUT [KEY=VALUE ...]"
if (( $# < 3 )); then echo "$usage" >&2; exit 2; fi
model=$1; init=$2; out=$3; shift 3
repo=$(cd "$(dirname "$0")/.." && pwd)
deblurrt=${DEBLURRT:-deblurrt}
python=${PYTHON:-python}
cache=${DEBLURRT_CACHE:-$HOME/.cache/deblurrt}
steps=${STEPS:-800}
threads=${THREADS:-1}
b_share=${B_SHARE:-0.4}
b_defocus=${B_DEFOCUS:-0.15}
b_defocus_px=${B_DEFOCUS_PX:-}
config="$repo/configs/$model.yaml"
[[ -f "$config" ]] || { echo "no config $config: MODEL must be a registered name (deblurrt models)" >&2; exit 2; }
[[ -f "$init" ]] || { echo "run weights $init not found: give the run's last.safetensors" >&2; exit 2; }
shipped="$repo/weights/$model.onnx"
[[ -f "$shipped" ]] || { echo "no shipped $shipped to compare with: polish a shipped model's lineage" >&2; exit 2; }
[[ -d "$cache/train_photos" && -d "$cache/val_v1" ]] || {
    echo "no prepared data under $cache: run scripts/prepare_quality_data.sh ../shared/data first" >&2; exit 2; }
if [[ -e "$out" ]]; then echo "$out exists: give a new folder (nothing is overwritten)" >&2; exit 2; fi
mkdir -p "$out"

phase() {  # phase NAME [KEY=VALUE ...]
    local name=$1; shift
    "$deblurrt" train "$config" "$repo/configs/data/blur_v3.yaml" model.init="$init" \
        data.root="$cache/train_photos" data.val_root="$cache/val_v1" data.workers=1 data.reuse=4 data.pool=512 \
        loss.psnr_cap_db=60 optim.lr=1e-4 optim.warmup_steps=20 run.steps="$steps" run.val_every=100000 \
        run.ckpt_every=200 run.threads="$threads" run.out_dir="$out/$name" "$@" --no-progress > "$out/$name.log" 2>&1
}
echo "polishing $init: phases A and B, $steps steps each (logs in $out/A.log, $out/B.log)"
phase A "$@" & pid_a=$!
phase B data.sharp_share="$b_share" data.defocus_share="$b_defocus" \
    ${b_defocus_px:+data.defocus_px="$b_defocus_px"} "$@" & pid_b=$!
trap 'kill $pid_a $pid_b 2>/dev/null || true' INT TERM  # a stopped polish stops both phases
status=0
wait $pid_a || status=$?
wait $pid_b || status=$?
if (( status != 0 )); then
    echo "a polishing phase failed (exit $status): see $out/A.log and $out/B.log" >&2; exit "$status"
fi
"$python" "$repo/scripts/soup.py" "$out/soup.safetensors" "$out/A/last.safetensors" "$out/B/last.safetensors"
"$deblurrt" validate "$out/soup.safetensors" "$out/A/last.safetensors" "$out/B/last.safetensors" "$init" \
    "$shipped" --incumbent "$shipped" --sets "$cache/val_v1" --threads 2 --json "$out/validation.json" \
    --md "$out/validation.md" --quiet
echo "candidate: $out/soup.safetensors (report $out/validation.json)"
