#!/usr/bin/env bash
# The demo: set up the checkout, then classify the bundled example reads (examples/example_reads.fa,
# 300 reads of 300/500 bp from phage, RNA-virus and Klebsiella genomes) with `virnucpro predict`.
# Uses the real VirNucPro, ESM-2 and DNABERT-S weights when they are in place; otherwise says which
# files are missing and where to put them, and does a dry run with tiny synthetic weights.
# Usage: scripts/demo.sh [extra predict options, e.g. -d cpu or --gpus 0,1]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
export VIRNUCPRO_PYTHON="${VIRNUCPRO_PYTHON:-$PWD/.venv/bin/python}"

weights="${VIRNUCPRO_WEIGHTS:-$PWD/weights}"
missing=()
[[ -f "$weights/500_model.pth" ]] || missing+=("$weights/500_model.pth  (VirNucPro classifier, from https://github.com/Li-Jing-1997/VirNucPro)")
[[ -e "$weights/esm2_t36_3B_UR50D.pt" || -d "$weights/esm2_t36_3B_UR50D" ]] ||
  missing+=("$weights/esm2_t36_3B_UR50D.pt  (ESM-2 3B: fair-esm download, or the Hugging Face folder facebook/esm2_t36_3B_UR50D)")
[[ -d "$weights/DNABERT-S" ]] || missing+=("$weights/DNABERT-S/  (Hugging Face zhihan1996/DNABERT-S)")

reads=examples/example_reads.fa
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "[demo] real weights found in $weights"
  exec bin/virnucpro predict "$reads" -m 500 -o demo-output "$@"
fi

echo "[demo] the real model weights are not here; missing:"
printf '         %s\n' "${missing[@]}"
echo "[demo] put them there (or set VIRNUCPRO_WEIGHTS to their folder) and run scripts/demo.sh again."
echo "[demo] meanwhile: a dry run of the whole pipeline with TINY SYNTHETIC weights (random; the scores mean nothing)."
exec bin/virnucpro predict "$reads" -m 500 -o demo-output-synthetic --synthetic-weights tiny "$@"
