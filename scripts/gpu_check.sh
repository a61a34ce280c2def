#!/usr/bin/env bash
# One-shot GPU check: in at most 8 minutes on one CUDA GPU with TensorRT, measure what this project has never
# run (engines of the shipped models, their accuracy against ONNX Runtime CPU, CUDA graphs, bench, run) and
# write everything as JSON + Markdown into OUT_DIR. Made for a machine lent for minutes: it installs what it
# needs into a fresh venv, runs the most telling steps first, records every failure and goes on.
#
#   scripts/gpu_check.sh OUT_DIR [--dry-run]          (also: make gpu-check GPU_CHECK_OUT=OUT_DIR)
#
# Environment (all optional):
#   GPU_CHECK_BUDGET_S  total wall time, setup included (default 480)
#   PYTHON              interpreter for the venv (default python3; >= 3.10)
#   GPU_CHECK_VENV      where the fresh venv goes (default: a new folder under $TMPDIR, not in OUT_DIR)
#   CUDA_EXTRA          trt-cu12 or trt-cu13 (default: from the driver's CUDA version in nvidia-smi)
#   TORCH_SPEC          what pip installs for torch when the venv has none (default: torch; 'none' skips it:
#                       torch is needed only by the GPU-marked tests)
#   PIP_INDEX_URL / PIP_EXTRA_INDEX_URL  passed through to pip as usual
# The venv sees the system site-packages, so a TensorRT or torch that came with the machine (JetPack, an
# NGC container) is used as it is. Outputs: OUT_DIR/results.json, report.md, doctor.json, bench.json/.md,
# engines/, run/, gpu_tests.xml, logs/, setup.jsonl, setup.log. Exit: 0 all passed, 1 something failed,
# 2 bad arguments or missing files.
set -uo pipefail

usage="usage: $0 OUT_DIR [--dry-run]"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="" dry=0
for arg in "$@"; do
    case $arg in
        --dry-run) dry=1 ;;
        -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "gpu_check: unknown option '$arg'" >&2; echo "$usage" >&2; exit 2 ;;
        *) if [[ -n $out ]]; then echo "gpu_check: one OUT_DIR only (received '$out' and '$arg')" >&2; exit 2; fi
           out=$arg ;;
    esac
done
if [[ -z $out ]]; then echo "gpu_check: OUT_DIR is missing" >&2; echo "$usage" >&2; exit 2; fi
budget=${GPU_CHECK_BUDGET_S:-480}
if ! [[ $budget =~ ^[0-9]+$ ]] || (( budget < 60 )); then
    echo "gpu_check: GPU_CHECK_BUDGET_S must be a whole number of seconds >= 60 (received '$budget')" >&2; exit 2
fi
start=$(date +%s)
deadline=$((start + budget))
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "gpu_check: $python is missing or older than Python 3.10. Fix: PYTHON=/path/to/python3.10+" >&2; exit 2
fi
shopt -s nullglob
models=("$repo"/weights/*.onnx)
if (( ${#models[@]} == 0 )); then
    echo "gpu_check: no shipped model in $repo/weights/*.onnx (the check builds engines of them)" >&2; exit 2
fi

# The driver's CUDA major picks the wheels: cuda-python 13.x fails on drivers older than R580.
cuda_major=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
extra=${CUDA_EXTRA:-$([[ -n $cuda_major ]] && (( cuda_major >= 13 )) && echo trt-cu13 || echo trt-cu12)}
case $extra in trt-cu12) pin="cuda-python>=12.3,<13" ;; trt-cu13) pin="cuda-python>=13,<14" ;;
    *) echo "gpu_check: CUDA_EXTRA must be trt-cu12 or trt-cu13 (received '$extra')" >&2; exit 2 ;; esac
torch_spec=${TORCH_SPEC:-torch}
venv=${GPU_CHECK_VENV:-$(mktemp -d -u "${TMPDIR:-/tmp}/deblurrt-gpu-check-venv.XXXXXX")}

if (( dry )); then
    echo "gpu_check (dry run): nothing is installed or run"
    echo "  repo        $repo"
    echo "  OUT_DIR     $out"
    echo "  budget      $budget s (deadline $(date -d "@$deadline" '+%H:%M:%S' 2>/dev/null || echo "$deadline"))"
    echo "  driver CUDA ${cuda_major:-unknown (no nvidia-smi)} -> extra [$extra] ($pin)"
    echo "  setup       $python -m venv --system-site-packages $venv"
    echo "              pip install -e '$repo[export,bench,$extra]' pytest   (or '$pin' alone where TensorRT is already importable)"
    echo "              torch: '$torch_spec' if the venv has none (for the GPU-marked tests)"
    exec "$python" "$repo/scripts/gpu_check.py" "$out" --deadline "$deadline" --dry-run
fi

mkdir -p "$out" || { echo "gpu_check: cannot create $out" >&2; exit 2; }
out=$(cd "$out" && pwd)
setup_json=$out/setup.jsonl
setup_log=$out/setup.log
: > "$setup_json"
: > "$setup_log"

left() { echo $((deadline - $(date +%s))); }
# step NAME TIMEOUT_S COMMAND...: run with a timeout, log it, append one JSON line to setup.jsonl
step() {
    local name=$1 limit=$2; shift 2
    local t0 rc note=""
    t0=$(date +%s)
    if (( limit < 5 )); then
        printf '{"name": "%s", "ok": false, "seconds": 0, "note": "skipped: out of time"}\n' "$name" >> "$setup_json"
        return 1
    fi
    echo "\$ $*" >> "$setup_log"
    timeout "$limit" "$@" >> "$setup_log" 2>&1
    rc=$?
    (( rc == 124 )) && note="timed out after ${limit} s"
    (( rc != 0 && rc != 124 )) && note="exit $rc (see setup.log)"
    printf '{"name": "%s", "ok": %s, "seconds": %d, "rc": %d, "note": "%s"}\n' "$name" \
        "$( (( rc == 0 )) && echo true || echo false)" $(( $(date +%s) - t0 )) "$rc" "$note" >> "$setup_json"
    echo "gpu_check: setup: $name: $( (( rc == 0 )) && echo ok || echo "failed ($note)")"
    return "$rc"
}
min_left() { local value; value=$(left); (( value - $1 < $2 )) && echo $((value - $1)) || echo "$2"; }

# Setup leaves the driver at least 240 s: engines and their checks are what this machine is lent for.
reserve=240
vpy=$python
if step "venv" "$(min_left $reserve 60)" "$python" -m venv --system-site-packages "$venv"; then
    vpy=$venv/bin/python
    if "$vpy" -c 'import tensorrt' >/dev/null 2>&1; then
        step "pip install (TensorRT already here)" "$(min_left $reserve 200)" "$vpy" -m pip install -q -e \
            "$repo[export,bench]" "$pin" pytest
    else
        step "pip install [$extra]" "$(min_left $reserve 200)" "$vpy" -m pip install -q -e \
            "$repo[export,bench,$extra]" pytest
    fi
    if [[ $torch_spec != none ]] && ! "$vpy" -c 'import torch' >/dev/null 2>&1; then
        step "pip install $torch_spec" "$(min_left $reserve 180)" "$vpy" -m pip install -q "$torch_spec"
    fi
fi
if ! "$vpy" -c 'import deblurrt, numpy, onnx, onnxruntime' >/dev/null 2>&1; then
    # The venv is unusable: run what can run with the interpreter given, from the source tree.
    printf '{"name": "fallback", "ok": false, "seconds": 0, "note": "venv unusable: running with %s and PYTHONPATH=%s"}\n' \
        "$python" "$repo" >> "$setup_json"
    vpy=$python
    export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
fi
cd "$repo" || exit 2
"$vpy" "$repo/scripts/gpu_check.py" "$out" --deadline "$deadline" --setup "$setup_json"
status=$?
echo "gpu_check: $(( $(date +%s) - start )) s in all; report: $out/report.md"
exit "$status"
