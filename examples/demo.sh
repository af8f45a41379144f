#!/usr/bin/env bash
# `make demo`: dpe edit-expression end to end on a fresh clone, with nothing to download.
#
#   examples/demo.sh [OUT_DIR]          (default examples/generated)
#
# Renders two synthetic talking faces with `dpe synth` (a full-frame source video and a face
# crop of another person as the driver), then gives the source the driver's expression with
# the small model shipped in weights/ (trained on synthetic faces only). Environment:
# DPE (the dpe command, default .venv/bin/dpe or dpe), DPE_DEMO_FRAMES (default 50),
# DPE_DEMO_WEIGHTS (default weights/dpe-synthetic-64.safetensors).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/examples/generated}
frames=${DPE_DEMO_FRAMES:-50}
weights=${DPE_DEMO_WEIGHTS:-$root/weights/dpe-synthetic-64.safetensors}
dpe=${DPE:-$root/.venv/bin/dpe}
[[ -x $dpe ]] || dpe=dpe
command -v "$dpe" >/dev/null || { echo "error: dpe not found (run make install, or set DPE=path/to/dpe)" >&2; exit 2; }
[[ -f $weights ]] || { echo "error: $weights not found (the shipped default model; see weights/README.md)" >&2; exit 2; }
mkdir -p "$out"

# Identities 900000 and 900001: never seen in training (the shipped model saw identities 0-249).
echo "1/3 rendering the source: a person talking, full frame 640x360 ($frames frames)"
"$dpe" synth "$out/source.mp4" --kind full --size 640x360 --frames "$frames" --seed 900000 -y --quiet
echo "2/3 rendering the driver: another person's face crop"
"$dpe" synth "$out/driver.mp4" --kind crop --size 256 --frames "$frames" --seed 900001 -y --quiet
echo "3/3 dpe edit-expression with $(basename "$weights")"
"$dpe" edit-expression "$out/source.mp4" --driver "$out/driver.mp4" --weights "$weights" \
    --side-by-side -o "$out/edited-side-by-side.mp4" -y --quiet

cat <<EOF

Done. Source, driver and result side by side:
    $out/edited-side-by-side.mp4
(inputs: $out/source.mp4, $out/driver.mp4)

The shipped model is small (64 px) and knows synthetic faces only. For real faces, get the
official DPE weights (dpe.pt; see weights/README.md), run 'dpe weights install dpe.pt', then e.g.
    dpe edit-expression your_video.mp4 --driver smile.mp4 -o edited.mp4
EOF
