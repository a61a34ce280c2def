#!/usr/bin/env bash
# Train unet_small_prior and its no-prior twin unet_small on one CUDA GPU with AMP for a fixed wall time, then
# evaluate them (and the shipped weights) on the same held-out pairs. Both train at the same time on the one
# GPU, under the same conditions, so their difference is the prior's.
#
#   scripts/gpu_train.sh OUT_DIR MINUTES [--dry-run] [--init CKPT] [--twin-init CKPT] [--no-twin]
#                        [--photos DIR] [--val DIR]
#
#   MINUTES      training wall time of each model (they run side by side); add ~3 min for the step-time probe
#                and the evaluation
#   --init       where unet_small_prior starts: default weights/unet_small_prior.safetensors (the shipped
#                weights); any deployable checkpoint (e.g. an earlier OUT_DIR/unet_small_prior/last.safetensors)
#                continues that state; 'none' trains from scratch
#   --twin-init  where unet_small starts: default the same checkpoint as --init (a no-prior model takes the
#                backbone of its _prior twin's checkpoint), so the two start from one point; 'none': scratch
#   --data-root  the shared data (photos/ + photos_more/; default ../shared/data next to the repository): with
#                it, training uses the quality recipe (configs/data/blur_v3.yaml) on every photo except the
#                held-out ones (configs/splits/val_photos.txt), and validation is 'deblurrt validate' (blur-only
#                sets, gain per streak length, do-no-harm), as scripts/train_quality.sh does on a CPU
#   --photos     sharp training photos, instead of --data-root (old recipe; validation on a paired set)
#   --val        with --photos: a paired set (blur/ + sharp/) to validate and evaluate on; default: made here
#                from the photos held out by 'deblurrt data split --val-fraction 0.16 --seed 0' (36 pairs,
#                moderate blur, 256x256, seed 1), and those photos are kept out of training
#   --dry-run    check the arguments and files, print the plan; train nothing
# Environment: PYTHON (default: .venv/bin/python, else python3; needs torch with CUDA and deblurrt[train]),
#   BATCH (default 16), WORKERS (data loader processes per model, default 4), PROBE_STEPS (default 60),
#   OVERRIDES (more key=value training overrides, space-separated, e.g. "optim.lr=3e-4 data.crop=192"),
#   DEVICE (default cuda; cpu runs the same flow without a GPU, to try the script itself on small settings).
#
# How the wall time is kept: the trainer runs a fixed number of steps (its cosine schedule needs the end),
# so a short probe of both models side by side measures seconds per step first, and the step count is
# MINUTES / that. A hard timeout at 1.25 x MINUTES (+3 min) stops a run that is slower than the probe; its
# last checkpoint (every ~10 % of the steps) is then what is evaluated.
# Outputs: OUT_DIR/<model>/ (last/best.safetensors, state.safetensors, metrics.csv, curves.png, config.yaml),
# OUT_DIR/eval/*.json, OUT_DIR/summary.json and summary.md, OUT_DIR/logs/.
set -uo pipefail

usage="usage: $0 OUT_DIR MINUTES [--dry-run] [--init CKPT|none] [--twin-init CKPT|none|same] [--no-twin] [--data-root DIR | --photos DIR [--val DIR]]"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "gpu_train: $*" >&2; exit 2; }

positional=() dry=0 init="$repo/weights/unet_small_prior.safetensors" twin_init=same twin=1
photos="" val="" data_root="$repo/../shared/data"
while (( $# )); do
    case $1 in
        --dry-run) dry=1 ;;
        --no-twin) twin=0 ;;
        --init|--twin-init|--photos|--val|--data-root)
            (( $# >= 2 )) || die "$1 needs a value. $usage"
            case $1 in --init) init=$2 ;; --twin-init) twin_init=$2 ;; --photos) photos=$2 ;; --val) val=$2 ;;
                --data-root) data_root=$2 ;; esac
            shift ;;
        -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$1'. $usage" ;;
        *) positional+=("$1") ;;
    esac
    shift
done
(( ${#positional[@]} == 2 )) || die "expected OUT_DIR and MINUTES, received ${#positional[@]} argument(s). $usage"
out=${positional[0]} minutes=${positional[1]}
[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] && awk "BEGIN {exit !($minutes >= 1)}" \
    || die "MINUTES must be a number >= 1 (received '$minutes'), e.g. 30"
batch=${BATCH:-16} workers=${WORKERS:-4} probe_steps=${PROBE_STEPS:-60}
for pair in "BATCH=$batch" "WORKERS=$workers" "PROBE_STEPS=$probe_steps"; do
    [[ ${pair#*=} =~ ^[0-9]+$ ]] && (( ${pair#*=} >= 1 )) || die "${pair%%=*} must be a whole number >= 1 (received '${pair#*=}')"
done
(( probe_steps >= 30 )) || die "PROBE_STEPS must be >= 30 (the first logged steps include start-up), received $probe_steps"
config="$repo/weights/unet_small_prior.yaml"
[[ -f $config ]] || die "the shipped training config $config is missing"
[[ $twin_init == same ]] && twin_init=$init
# the quality recipe when the shared data is there and no --photos was given
quality=0
if [[ -z $photos ]]; then
    [[ -d $data_root/photos && -d $data_root/photos_more ]] \
        || die "--data-root '$data_root' lacks photos/ and photos_more/. Fix: --data-root DIR (the shared data), or --photos DIR"
    quality=1 data_root=$(realpath "$data_root")
    cache=${DEBLURRT_CACHE:-$HOME/.cache/deblurrt}
    photos=$data_root/photos
fi
for name in init twin_init; do
    value=${!name}
    [[ $value == none || -f $value ]] || die "--${name//_/-} '$value' does not exist. Fix: a .safetensors checkpoint written by 'deblurrt train' (last.safetensors), or 'none'"
done
[[ -d $photos ]] || die "--photos '$photos' is not a folder. Fix: --photos DIR with the sharp training photos"
shopt -s nullglob nocaseglob
images=("$photos"/*.{png,jpg,jpeg,bmp,tif,tiff})
shopt -u nocaseglob
(( ${#images[@]} >= 2 )) || die "--photos '$photos' holds ${#images[@]} image(s); training needs a folder of sharp photos"
if [[ -n $val ]]; then
    [[ -d $val/blur && -d $val/sharp ]] || die "--val '$val' needs blur/ and sharp/ subfolders (e.g. made by 'deblurrt data synth')"
fi
# absolute paths: the training runs from the repository root
photos=$(realpath "$photos")
[[ -n $val ]] && val=$(realpath "$val")
[[ $init == none ]] || init=$(realpath "$init")
[[ $twin_init == none ]] || twin_init=$(realpath "$twin_init")
python=${PYTHON:-$( [[ -x $repo/.venv/bin/python ]] && echo "$repo/.venv/bin/python" || echo python3)}
[[ -e $out && ! -d $out ]] && die "OUT_DIR '$out' exists and is not a folder"
parent=$out
while [[ ! -e $parent ]]; do parent=$(dirname "$parent"); done
[[ -w $parent ]] || die "cannot write under '$parent' (OUT_DIR '$out')"
out=$(realpath -m "$out")
train_s=$(awk "BEGIN {printf \"%d\", $minutes * 60}")
hard_s=$(( train_s * 5 / 4 + 180 ))
models=(unet_small_prior)
(( twin )) && models+=(unet_small)
val_dir=${val:-$out/val_moderate}
(( quality )) && val_dir=$cache/val_v1

# >>> VALIDATION (issue 11): the integrator replaces the one marked line in validate() with the blur-only
# validation command of the quality issue. Contract: validate CHECKPOINT OUT_JSON, exit 0 on success; the
# JSON's top-level "psnr" / "gain_db" / "ssim" are read into the summary when present.
validate() {
    if (( quality )); then
        "$python" -m deblurrt validate "$1" --sets "$val_dir" --backend torch --json "$2" --quiet   # <<< VALIDATION COMMAND (issue 11)
    else
        "$python" -m deblurrt eval "$1" --data "$val_dir" --backend torch --json "$2"
    fi
}

init_args() {  # init_args MODEL: the model.init override for MODEL
    local start=$init
    [[ $1 == unet_small ]] && start=$twin_init
    [[ $start == none ]] && echo "model.init=" || echo "model.init=$start"
}

device=${DEVICE:-cuda}
[[ $device == cuda || $device == cpu ]] || die "DEVICE must be cuda or cpu (received '$device')"
read -r -a extra_overrides <<< "${OVERRIDES:-}"
for item in "${extra_overrides[@]}"; do
    [[ $item == *=* ]] || die "OVERRIDES takes key=value items, received '$item'"
done
common=("run.device=$device" run.amp=true run.threads=0 "data.root=$photos" "data.batch_size=$batch"
        "data.workers=$workers" run.log_every=10 "${extra_overrides[@]}")

plan() {
    echo "gpu_train plan: ${models[*]} side by side on one $([[ $device == cuda ]] && echo "CUDA GPU (AMP)" || echo "CPU (DEVICE=cpu)"), ${minutes} min of training each"
    echo "  photos      $photos (${#images[@]} images)"
    if (( quality )); then
        echo "  recipe      configs/data/blur_v3.yaml on $data_root minus configs/splits/val_photos.txt"
        echo "  validation  $val_dir (deblurrt validate's blur-only sets, built there if missing)"
    else
        echo "  validation  $val_dir$([[ -z $val ]] && echo " (made from the held-out photos: deblurrt data split + data synth, 36 moderate pairs)")"
    fi
    for model in "${models[@]}"; do echo "  $model from: $(init_args "$model" | sed 's/^model.init=$/scratch/; s/^model.init=//')"; done
    echo "  1. probe    $probe_steps steps of each, side by side -> seconds per step -> steps = ${train_s} s / (s/step)"
    echo "  2. train    deblurrt train ${config#"$repo"/} model.name=MODEL model.init=... run.steps=N ${common[*]}"
    echo "              (hard stop after ${hard_s} s; checkpoints every ~10 % of the steps)"
    echo "  3. validate CHECKPOINT JSON for weights/unet_small_prior.safetensors and each trained model:"
    if (( quality )); then
        echo "              deblurrt validate CHECKPOINT --sets $val_dir --backend torch --json JSON (blur-only sets, do-no-harm)"
    else
        echo "              deblurrt eval CHECKPOINT --data $val_dir --backend torch --json JSON"
    fi
    echo "  4. summary  $out/summary.json, summary.md; curves: $out/<model>/curves.png"
}

if (( dry )); then
    echo "gpu_train (dry run): nothing is trained"
    plan
    exit 0
fi

mkdir -p "$out/logs" "$out/eval"
plan | tee "$out/logs/plan.txt"
[[ $device == cpu ]] || "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)' \
    || die "torch with CUDA is needed ($python: torch missing or torch.cuda.is_available() is False). Fix: PYTHON=... a venv with a CUDA build of torch and 'pip install -e .[train,export]'"
cd "$repo" || exit 2

overrides=()
if (( quality )); then
    DEBLURRT="$python -m deblurrt" "$repo/scripts/prepare_quality_data.sh" "$data_root" "$cache" \
        > "$out/logs/data.log" 2>&1 || die "preparing the quality data failed (see $out/logs/data.log)"
    photos=$cache/train_photos
    overrides+=("$repo/configs/data/blur_v3.yaml" "data.root=$photos")
elif [[ -z $val ]]; then
    if [[ ! -f $val_dir/synth.json ]]; then
        "$python" -m deblurrt data split "$photos" --val-fraction 0.16 --seed 0 --out "$out/lists" \
            > "$out/logs/data.log" 2>&1 || die "deblurrt data split failed (see $out/logs/data.log)"
        rm -rf "$val_dir"
        "$python" -m deblurrt data synth "$photos" "$val_dir" --photos-list "$out/lists/val_photos.txt" \
            --severity moderate --count 36 --size 256x256 --seed 1 >> "$out/logs/data.log" 2>&1 \
            || die "deblurrt data synth failed (see $out/logs/data.log)"
    fi
    overrides+=("data.exclude=[$(paste -sd, "$out/lists/val_photos.txt")]")
fi

train_argv() {  # train_argv MODEL OUT_SUBDIR STEPS EXTRA...: sets argv to one training run's command
    local model=$1 dir=$2 steps=$3; shift 3
    argv=("$python" -m deblurrt train "$config" "model.name=$model" "$(init_args "$model")" "run.out_dir=$dir"
          "run.steps=$steps" "${common[@]}" "${overrides[@]}" "$@" --no-progress)
    # a run of an earlier call with the same OUT_DIR continues where it stopped
    [[ -f $dir/state.safetensors ]] && argv+=(--resume)
}

# 1. the probe: both models side by side, as they will train
pids=()
for model in "${models[@]}"; do
    rm -rf "$out/probe/$model"
    train_argv "$model" "$out/probe/$model" "$probe_steps" data.val_root= run.ckpt_every=100000
    timeout 900 "${argv[@]}" > "$out/logs/probe.$model.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || die "the probe failed (see $out/logs/probe.*.log)"; done
seconds_per_step() {  # the median sec_per_step of a metrics.csv, start-up rows left out
    "$python" - "$1" <<'PY'
import csv, statistics, sys
rows = [float(r["sec_per_step"]) for r in csv.DictReader(open(sys.argv[1])) if r.get("sec_per_step")]
print(statistics.median(rows[2:] or rows))
PY
}
declare -A steps
for model in "${models[@]}"; do
    sps=$(seconds_per_step "$out/probe/$model/metrics.csv") || die "no step time in $out/probe/$model/metrics.csv"
    steps[$model]=$("$python" -c "import sys; print(max(100, int(float(sys.argv[1]) / float(sys.argv[2]))))" "$train_s" "$sps")
    echo "gpu_train: $model: $sps s/step side by side -> ${steps[$model]} steps in ${train_s} s" | tee -a "$out/logs/plan.txt"
done

# 2. training, side by side, each with a hard stop
pids=()
for model in "${models[@]}"; do
    n=${steps[$model]}
    train_argv "$model" "$out/$model" "$n" "run.ckpt_every=$(( n / 10 > 50 ? n / 10 : 50 ))" \
        "run.val_every=$(( n / 5 > 100 ? n / 5 : 100 ))" "data.val_root=$val_dir"
    echo "\$ ${argv[*]}" > "$out/logs/train.$model.log"
    timeout --signal=TERM "$hard_s" "${argv[@]}" >> "$out/logs/train.$model.log" 2>&1 &
    pids+=($!)
done
failed=0
for index in "${!pids[@]}"; do
    wait "${pids[$index]}" || { failed=1; echo "gpu_train: ${models[$index]} stopped early (see $out/logs/train.${models[$index]}.log); evaluating its last checkpoint" >&2; }
done

# 3. evaluation of the shipped weights and of each trained model on the same pairs
declare -A checkpoints=([shipped_unet_small_prior]="$repo/weights/unet_small_prior.safetensors")
for model in "${models[@]}"; do
    for kind in last best; do
        [[ -f $out/$model/$kind.safetensors ]] && checkpoints[${model}_$kind]=$out/$model/$kind.safetensors
    done
done
for name in "${!checkpoints[@]}"; do
    validate "${checkpoints[$name]}" "$out/eval/$name.json" > "$out/logs/eval.$name.log" 2>&1 \
        || { failed=1; echo "gpu_train: validation of $name failed (see $out/logs/eval.$name.log)" >&2; }
done

# 4. summary
"$python" - "$out" "$minutes" "${models[@]}" <<'PY'
import csv, json, sys
from pathlib import Path

out, minutes, models = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
summary = {"minutes_each": minutes, "runs": {}, "eval": {}}
for model in models:
    metrics = out / model / "metrics.csv"
    if metrics.is_file() and not (out / model / "curves.png").is_file():
        # a run stopped by the hard timeout never drew its curves: draw them from what it logged
        try:
            from deblurrt.train.trainer import plot_curves

            plot_curves(metrics, out / model / "curves.png")
        except (ImportError, OSError, ValueError) as error:
            print(f"gpu_train: no curves for {model}: {error}", file=sys.stderr)
    rows = list(csv.DictReader(open(metrics))) if metrics.is_file() else []
    steps = [int(r["step"]) for r in rows if r.get("step")]
    losses = [float(r["loss"]) for r in rows if r.get("loss")]
    vals = [(int(r["step"]), float(r["val_psnr"])) for r in rows if r.get("val_psnr")]
    seconds = [float(r["sec_per_step"]) for r in rows if r.get("sec_per_step")]
    summary["runs"][model] = {"steps": max(steps, default=0), "last_loss": losses[-1] if losses else None,
                              "val_psnr": vals, "best_val_psnr": max((v for _, v in vals), default=None),
                              "median_sec_per_step": sorted(seconds)[len(seconds) // 2] if seconds else None,
                              "curves": str(out / model / "curves.png")}
for path in sorted((out / "eval").glob("*.json")):
    data = json.loads(path.read_text())
    summary["eval"][path.stem] = {key: data.get(key) for key in ("psnr", "ssim", "input_psnr", "gain_db", "n")}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
lines = [f"# gpu_train: {', '.join(models)}, {minutes:g} min each", "",
         "| run | steps | s/step | last loss | best val PSNR dB |", "|---|---|---|---|---|"]
for model, run in summary["runs"].items():
    lines.append(f"| {model} | {run['steps']} | {run['median_sec_per_step']} | {run['last_loss']} | {run['best_val_psnr']} |")
lines += ["", "| checkpoint | PSNR dB | SSIM | input PSNR dB | gain dB | pairs |", "|---|---|---|---|---|---|"]
for name, e in summary["eval"].items():
    lines.append(f"| {name} | {e['psnr']} | {e['ssim']} | {e['input_psnr']} | {e['gain_db']} | {e['n']} |")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "gpu_train: done; $out/summary.md"
exit "$failed"
