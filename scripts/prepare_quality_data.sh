#!/usr/bin/env bash
# Prepare the quality recipe's data: training photos = every shared photo except the held-out validation ones
# (configs/splits/val_photos.txt), as a folder of links (nothing copied), and the blur-only validation sets of
# `deblurrt validate` (built once, reused).
#   scripts/prepare_quality_data.sh DATA_ROOT CACHE_DIR      -> CACHE_DIR/train_photos/, CACHE_DIR/val_v1/
# DATA_ROOT holds photos/ and photos_more/ (../shared/data). DEBLURRT: the deblurrt command (default: deblurrt).
set -euo pipefail
if (( $# != 2 )); then echo "usage: $0 DATA_ROOT CACHE_DIR" >&2; exit 2; fi
data_root=$(cd "$1" && pwd); cache=$2
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
read -r -a deblurrt <<< "${DEBLURRT:-deblurrt}"  # may be several words: "python -m deblurrt"
if [[ ! -d "$data_root/photos" || ! -d "$data_root/photos_more" ]]; then
    echo "$data_root must hold photos/ and photos_more/ (the shared sharp photos)" >&2; exit 2
fi
photos="$cache/train_photos"
mkdir -p "$photos"
held_out=$(grep -v '^#' "$repo/configs/splits/val_photos.txt" | sed 's#.*/##')
for f in "$data_root"/photos/* "$data_root"/photos_more/*.jpg; do
    name=$(basename "$f")
    if grep -qxF "$name" <<<"$held_out"; then rm -f "$photos/$name"; continue; fi
    [[ -e "$photos/$name" ]] || ln -s "$f" "$photos/$name"
done
# building is skipped for complete sets; --limit 1 keeps the identity scoring that follows cheap
"${deblurrt[@]}" validate identity --build --data-root "$data_root" --sets "$cache/val_v1" --limit 1 --quiet > /dev/null 2>&1 \
    || { echo "building the validation sets failed: run '${deblurrt[*]} validate identity --build --data-root $data_root --sets $cache/val_v1' to see why" >&2; exit 1; }
