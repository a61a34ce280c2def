#!/usr/bin/env bash
# Fine-tune one or more models side by side on one CUDA GPU for a fixed wall time, on the quality recipe
# (configs/data/blur_v3.yaml), and collect what a CPU machine needs to validate and ship them. Made for a
# GPU lent for minutes: no probe run, no validation there (the trainer fits its schedule into the time
# with run.time_budget_s), the data loader workers split between the models.
#
#   scripts/gpu_finetune.sh OUT_DIR SECONDS --photos DIR --model NAME=INIT [--model NAME=INIT ...]
#
#   SECONDS      wall time of the training of each model (they run at the same time); add ~30 s of start-up
#   --photos     sharp training photos (e.g. made by scripts/pack_photos.py; validation photos left out)
#   --model      a registry name and the checkpoint it starts from ('none': from scratch), e.g.
#                --model unet_small_prior=weights/unet_small_prior.safetensors
#   --dry-run    check the arguments and print the commands; train nothing
# Environment: PYTHON (default python3), BATCH (default 16), WORKERS (loader processes in all, default: the
#   CPU count minus one per model), LR (default 5e-4), REUSE (steps per loaded batch, later ones flipped or
#   turned: data.reuse; default 1. On 2026-11-30 the H200 waited for the CPU's blur recipe at 165 samples/s per
#   model, so 2-4 there trains that many more steps in the same minutes; add OVERRIDES=data.pool=1024 to draw
#   batches from a pool of recent samples instead of reusing a batch back to back), OVERRIDES (more key=value items,
#   space-separated), DEVICE (default cuda; cpu runs the same flow, to try it without a GPU).
# When 'import deblurrt.train' fails (a source tree that was not pip-installed, e.g. on a lent GPU machine
# with no package index), or with FROM_SOURCE=1 (this checkout's code even where another deblurrt is
# installed), the package is assembled under a temporary folder and put on PYTHONPATH.
# Outputs, flat, for a machine that returns only a few files: OUT_DIR/<model>.safetensors (the EMA weights
# of the last step), OUT_DIR/<model>.metrics.csv, OUT_DIR/<model>.config.yaml, OUT_DIR/<model>.log.
set -uo pipefail

usage="usage: $0 OUT_DIR SECONDS --photos DIR --model NAME=INIT [--model NAME=INIT ...] [--dry-run]"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "gpu_finetune: $*" >&2; exit 2; }

positional=() models=() photos="" dry=0
while (( $# )); do
    case $1 in
        --dry-run) dry=1 ;;
        --photos|--model)
            (( $# >= 2 )) || die "$1 needs a value. $usage"
            [[ $1 == --photos ]] && photos=$2 || models+=("$2")
            shift ;;
        -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$1'. $usage" ;;
        *) positional+=("$1") ;;
    esac
    shift
done
(( ${#positional[@]} == 2 )) || die "expected OUT_DIR and SECONDS, received ${#positional[@]} argument(s). $usage"
out=${positional[0]} seconds=${positional[1]}
[[ $seconds =~ ^[0-9]+$ ]] && (( seconds >= 30 )) || die "SECONDS must be a whole number >= 30 (received '$seconds')"
(( ${#models[@]} )) || die "no --model given. $usage"
[[ -d $photos ]] || die "--photos '$photos' is not a folder. Fix: --photos DIR (scripts/pack_photos.py makes one)"
for item in "${models[@]}"; do
    [[ $item == *=* ]] || die "--model takes NAME=INIT, received '$item'"
    init=${item#*=}
    [[ -f $repo/configs/${item%%=*}.yaml ]] || die "--model $item: no configs/${item%%=*}.yaml. Fix: a registry name with a config there, e.g. unet_small_prior"
    [[ $init == none || -f $init ]] || die "--model $item: '$init' does not exist. Fix: a .safetensors checkpoint or 'none'"
done
names_seen=" "
for item in "${models[@]}"; do
    [[ $names_seen == *" ${item%%=*} "* ]] && die "--model ${item%%=*} is given twice; each model trains once (its run folder is named after it)"
    names_seen+="${item%%=*} "
done
# absolute paths now: the training may run from another folder (the shim below)
for index in "${!models[@]}"; do
    item=${models[$index]}
    [[ ${item#*=} == none ]] || models[$index]="${item%%=*}=$(realpath "${item#*=}")"
done
python=${PYTHON:-python3}
# a relative interpreter path must survive the change of folder below
[[ $python == */* ]] && python=$(realpath -s "$python")  # -s: a venv's python is a link to keep
device=${DEVICE:-cuda}
[[ $device == cuda || $device == cpu ]] || die "DEVICE must be cuda or cpu (received '$device')"
batch=${BATCH:-16} lr=${LR:-5e-4} reuse=${REUSE:-1}
[[ $reuse =~ ^[0-9]+$ ]] && (( reuse >= 1 )) || die "REUSE must be a whole number >= 1 (received '$reuse')"
cpus=$(nproc)
workers=${WORKERS:-$(( cpus - ${#models[@]} ))}
(( workers >= ${#models[@]} )) || workers=${#models[@]}
per_model=$(( workers / ${#models[@]} ))
read -r -a extra <<< "${OVERRIDES:-}"
photos=$(realpath "$photos")
out=$(realpath -m "$out")

argv_of() {  # argv_of NAME INIT: the training command of one model, in the array argv
    local name=$1 init=$2
    [[ $init == none ]] && init=""
    argv=("$python" -m deblurrt train "$repo/configs/$name.yaml" "$repo/configs/data/blur_v3.yaml"
          "model.name=$name" "model.init=$init" "data.root=$photos" "data.val_root=" "data.batch_size=$batch"
          "data.workers=$per_model" "data.reuse=$reuse" "optim.lr=$lr" "optim.warmup_steps=100" "run.steps=1000000"
          "run.time_budget_s=$seconds" "run.ckpt_every=500" "run.log_every=25" "run.device=$device"
          "run.amp=true" "run.threads=0" "run.out_dir=$out/runs/$name" "${extra[@]}" --no-progress)
}

echo "gpu_finetune: ${#models[@]} model(s) side by side on $device for $seconds s, batch $batch, lr $lr, reuse $reuse, $per_model loader workers each"
for item in "${models[@]}"; do
    argv_of "${item%%=*}" "${item#*=}"
    echo "  \$ ${argv[*]}"
done
(( dry )) && { echo "gpu_finetune (dry run): nothing is trained"; exit 0; }

cd "$repo" || exit 2
if [[ ${FROM_SOURCE:-0} == 1 ]] || ! "$python" -c 'import deblurrt.train' >/dev/null 2>&1; then
    # deblurrt's subpackages live in top-level folders (pyproject's package-dir): assemble them
    shim=$(mktemp -d)
    trap 'rm -rf "$shim"' EXIT
    cp -r "$repo/deblurrt" "$shim/deblurrt"
    for part in train export runtime bench; do cp -r "$repo/$part" "$shim/deblurrt/$part"; done
    export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}"
    # python puts the working folder first on sys.path: the repository's own deblurrt/ would shadow the shim
    cd "$shim" || exit 2
    "$python" -c 'import deblurrt.train' || die "deblurrt does not import with $python, even from $shim"
    echo "gpu_finetune: deblurrt from the source tree ($shim)"
fi
[[ $device == cpu ]] || "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)' \
    || die "torch with CUDA is needed ($python sees no GPU)"
mkdir -p "$out/runs"
pids=() names=()
for item in "${models[@]}"; do
    name=${item%%=*}
    argv_of "$name" "${item#*=}"
    rm -rf "$out/runs/$name"
    rm -f "$out/$name".{safetensors,metrics.csv,config.yaml,log}  # no stale result of an earlier call
    # the run's own deadline ends it; the timeout only catches a hang (workers that never start)
    timeout --signal=TERM $(( seconds + 120 )) "${argv[@]}" > "$out/$name.log" 2>&1 &
    pids+=($!) names+=("$name")
done
failed=0
for index in "${!pids[@]}"; do
    name=${names[$index]}
    if wait "${pids[$index]}"; then
        echo "gpu_finetune: $name done: $(grep -o 'run.steps set to [0-9]*' "$out/$name.log" | tail -1)"
    else
        failed=1
        echo "gpu_finetune: $name failed (last lines of $out/$name.log):" >&2
        tail -5 "$out/$name.log" >&2
    fi
    run=$out/runs/$name
    # what comes back from a lent machine: a few flat files (the optimiser state stays behind)
    [[ -f $run/last.safetensors ]] && cp "$run/last.safetensors" "$out/$name.safetensors"
    [[ -f $run/metrics.csv ]] && cp "$run/metrics.csv" "$out/$name.metrics.csv"
    [[ -f $run/config.yaml ]] && cp "$run/config.yaml" "$out/$name.config.yaml"
done
exit "$failed"
