#!/usr/bin/env bash
# One call on the GPU machine (the device tool), from the repository root: environment
# check, a serve-protocol smoke test on CUDA, the models helper's 3B parity script, then the
# benchmark (with --tune). Everything lands in $OUT (at most 8 files come back).
#   usage: gpu-runtime/scripts/gpu_session.sh [extra bench arguments]
set -uo pipefail
OUT=${OUT:-/tmp/virnucpro-gpu-session}
mkdir -p "$OUT"
exec > >(tee "$OUT/session.log") 2>&1
export PYTHONUNBUFFERED=1 VIRNUCPRO_STATE_DIR=/tmp/virnucpro-state
# fair-esm is not on the GPU machine's image: it travels as a wheel in .whl/ (git-ignored).
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/gpu-runtime

step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
step environment
nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.sm,driver_version --format=csv
python3 -c 'import torch, transformers, pyarrow, tokenizers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "pyarrow", pyarrow.__version__)'

step serve smoke test, tiny synthetic models, cuda:0
timeout 90 python3 gpu-runtime/scripts/serve_smoke.py --device cuda:0 --synthetic tiny \
  --shard bench/data/frames_500bp.arrow --work /tmp/smoke > "$OUT/serve_smoke.jsonl" 2> "$OUT/serve_smoke.stderr"
echo "serve smoke exit $?"; tail -n 3 "$OUT/serve_smoke.jsonl"; tail -n 5 "$OUT/serve_smoke.stderr"

if [[ -f gpu-runtime/scripts/gpu_parity_3b.py && -z "${SKIP_PARITY_3B:-}" ]]; then
  step ESM-2 3B parity vs fair-esm
  timeout 170 python3 gpu-runtime/scripts/gpu_parity_3b.py --device cuda:0 --out "$OUT/parity_3b.json"
  echo "parity_3b exit $?"
fi

step benchmark
timeout "${BENCH_TIMEOUT:-400}" python3 -m virnucpro_runtime bench --device cuda:0 --out "$OUT/bench.json" "$@"
echo "bench exit $?"
cp /tmp/virnucpro-state/token-budgets.json "$OUT/" 2>/dev/null
nvidia-smi --query-gpu=memory.used,clocks.sm --format=csv
