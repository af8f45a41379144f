#!/usr/bin/env bash
# Edit the expression of every video in a folder with one driver, several videos at a time.
#
#   examples/batch_edit.sh INPUT_DIR DRIVER OUTPUT_DIR [JOBS]
#
# Writes OUTPUT_DIR/<name>-expression.mp4 for each video, and one JSON line per video to
# OUTPUT_DIR/results.jsonl: dpe's --json report on success, {"source", "ok": false,
# "exit_code", "error"} on failure. Exits 0 when every video succeeded, 1 otherwise.
# Extra dpe options go in $DPE_ARGS, e.g. DPE_ARGS="--weights weights/dpe.safetensors --crf 20".
set -euo pipefail

if [[ $# -lt 3 ]]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
input_dir=$1 driver=$2 output_dir=$3 jobs=${4:-2}
dpe=${DPE:-dpe}
command -v "$dpe" >/dev/null || { echo "error: '$dpe' not found (activate .venv or set DPE=path/to/dpe)" >&2; exit 2; }
[[ -d $input_dir ]] || { echo "error: $input_dir is not a folder" >&2; exit 2; }
[[ -f $driver ]] || { echo "error: driver $driver not found" >&2; exit 2; }
mkdir -p "$output_dir"
results="$output_dir/results.jsonl"
: > "$results"

# Share the cores between the parallel jobs instead of oversubscribing them.
cores=$(nproc)
export OMP_NUM_THREADS=$(( cores / jobs > 0 ? cores / jobs : 1 ))
export DPE_BATCH_OUT="$output_dir" DPE_BATCH_DRIVER="$driver" DPE_BATCH_RESULTS="$results" DPE_BIN="$dpe"

edit_one() {
    local source=$1 name out report err code
    name=$(basename "${source%.*}")
    out="$DPE_BATCH_OUT/$name-expression.mp4"
    err=$(mktemp)
    # shellcheck disable=SC2086  # DPE_ARGS is a list of options on purpose
    if report=$("$DPE_BIN" edit-expression "$source" --driver "$DPE_BATCH_DRIVER" -o "$out" --json --quiet -y ${DPE_ARGS:-} 2>"$err"); then
        printf '%s\n' "$report" >> "$DPE_BATCH_RESULTS"   # one short line: an atomic append
    else
        code=$?
        python3 -c 'import json, sys; print(json.dumps({"source": sys.argv[1], "ok": False, "exit_code": int(sys.argv[2]), "error": sys.argv[3].strip()}))' \
            "$source" "$code" "$(tail -n 1 "$err")" >> "$DPE_BATCH_RESULTS"
        echo "failed: $source ($(tail -n 1 "$err"))" >&2
    fi
    rm -f "$err"
}
export -f edit_one

find "$input_dir" -maxdepth 1 -type f \( -iname '*.mp4' -o -iname '*.mov' -o -iname '*.mkv' -o -iname '*.avi' \) -print0 \
    | xargs -0 -r -n 1 -P "$jobs" bash -c 'edit_one "$1"' _

total=$(wc -l < "$results")
failed=$(grep -c '"ok": false' "$results" || true)
echo "$((total - failed)) of $total videos edited; results in $results" >&2
[[ $failed -eq 0 ]]
