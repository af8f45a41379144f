#!/usr/bin/env bash
# Edit the expression of every video in a folder with one driver: a thin example of `dpe batch`.
#
#   examples/batch_edit.sh INPUT_DIR DRIVER OUTPUT_DIR
#
# Writes OUTPUT_DIR/<name>-expression.mp4 for each video in one process (one model load, the
# driver encoded once) and one JSON record per video under OUTPUT_DIR/results/. Run it again
# after an interruption: finished videos are skipped. Exits 0 when every video succeeded, 1
# when some failed (`dpe batch status OUTPUT_DIR/results` counts the reasons), 2 for bad
# arguments. Extra dpe options go in $DPE_ARGS, e.g. DPE_ARGS="--weights weights/dpe.safetensors -O crf=20".
set -euo pipefail

if [[ $# -ne 3 ]]; then
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
dpe=${DPE:-dpe}
command -v "$dpe" >/dev/null || { echo "error: '$dpe' not found (activate .venv or set DPE=path/to/dpe)" >&2; exit 2; }
mkdir -p "$3"
# shellcheck disable=SC2086  # DPE_ARGS is a list of options on purpose
exec "$dpe" batch --folder "$1" --driver "$2" --out-dir "$3" --results "$3/results" ${DPE_ARGS:-}
