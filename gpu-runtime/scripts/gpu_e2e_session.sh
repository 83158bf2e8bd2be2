#!/usr/bin/env bash
# Issue 8's GPU session on the device machine, one step per call (the machine keeps /tmp while
# it stays warm, so consecutive calls build on each other):
#   probe          the runtime from this checkout on CUDA: serve smoke test twice (cold, then
#                  with the compile and converted-weights caches warm) and the determinism probe
#   smoke          the serve smoke tests only (a minute)
#   startup-fp8    without the bundle, one call: the cache check with ESM-2 3B's weights timed,
#                  the serve smoke tests, then fp8_bench.sh
#   cache          weights_cache_check.py: the converted-weights cache onto CUDA (seconds: worth
#                  it in the first `receive` call)
#   receive NN     copy the carried bundle piece .device/pieces/part-NN into /tmp/vp/pieces
#   install        check SHA256SUMS, cat the pieces | tar x, install.sh with the machine's python3
#   e2e PHASE...   gpu_predict_e2e.py phases against the installed bundle (its JSON goes to $OUT)
#   budgets        card_budget_check.py on a shard of the warm run (smaller cards emulated)
#   scaling N,M    issue 10: the scaling read set through predict on the first N, M GPUs (JSON to $OUT/scaling.json)
#   faults N       issue 10: the same on N GPUs with one runtime SIGKILLed, then one SIGSTOPped (after `scaling`)
#
# Before the calls, here (`.device/` is git-ignored, so each call names what it needs in `carry`):
#   scripts/bundle.sh --python 3.12 /tmp/bundle-out
#   for i in 00 01 02 03; do mkdir -p .device/pieces/part-$i; cp /tmp/bundle-out/*.part-$i .device/pieces/part-$i/; done
#   cp /tmp/bundle-out/SHA256SUMS .device/pieces/part-03/       # with the last piece
#   mkdir -p .device/genomes && cp ../shared/data/*.{gz,xz} .device/genomes/
# then, back to back (the machine goes cold 30 s after a call): `receive 00` carrying
# .device/pieces/part-00 and .device/genomes, ..., `receive 03 && install && e2e reads synthetic cold`,
# `e2e warm alone crash-clean`, `e2e crash runtime crash worker crash server`, `e2e crash cli report`.
set -uo pipefail
OUT=${OUT:-/tmp/vp-out}
VP=/tmp/vp
mkdir -p "$OUT" "$VP"
export PYTHONUNBUFFERED=1
step=${1:?usage: gpu_e2e_session.sh probe|receive NN|install|e2e PHASE...}
shift
case "$step" in
  probe|smoke)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c 'import torch, torch._inductor.config as c; print("torch", torch.__version__, "| Inductor deterministic mode:", hasattr(c, "deterministic"))'
    export VIRNUCPRO_STATE_DIR=$VP/probe-state PYTHONPATH=$PWD/gpu-runtime
    for i in 1 2; do
      timeout 200 python3 gpu-runtime/scripts/serve_smoke.py --device cuda:0 --synthetic tiny \
        --shard bench/data/frames_500bp.arrow --work "$VP/smoke$i" > "$OUT/smoke$i.jsonl" 2> "$OUT/smoke$i.stderr"
      echo "serve smoke $i: exit $?"
      grep -o '"seconds":[0-9.]*,"numerics":{[^}]*}[^}]*},"phases":{[^}]*}' "$OUT/smoke$i.jsonl" | head -1
      grep -c '"ok":false' "$OUT/smoke$i.jsonl" | sed 's/^/error replies: /'
      tail -n 3 "$OUT/smoke$i.stderr"
    done
    # The second serve loads the converted weights from the cache the first wrote: same scores?
    sha256sum "$VP"/smoke1/results-a.arrow "$VP"/smoke2/results-a.arrow
    [[ $step == probe ]] && timeout 420 python3 gpu-runtime/scripts/determinism_probe.py --frames 3072 --out "$OUT/determinism.json" | tail -40
    ;;
  startup-fp8)
    export VIRNUCPRO_STATE_DIR=$VP/probe-state PYTHONPATH=$PWD/gpu-runtime
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    timeout 120 python3 gpu-runtime/scripts/weights_cache_check.py --device cuda:0 --full-esm2 | tee "$OUT/weights-cache-check.txt"
    bash "$0" smoke
    BENCH_TIMEOUT=${BENCH_TIMEOUT:-250} bash gpu-runtime/scripts/fp8_bench.sh 2>&1 | tail -25
    ;;
  cache)
    PYTHONPATH=$PWD/gpu-runtime timeout 120 python3 gpu-runtime/scripts/weights_cache_check.py --device cuda:0 --full-esm2
    ;;
  receive)
    mkdir -p "$VP/pieces"
    cp ".device/pieces/part-$1"/* "$VP/pieces/" && ls -l "$VP/pieces"
    ;;
  install)
    (cd "$VP/pieces" && sha256sum -c SHA256SUMS) || exit 1
    rm -rf "$VP/host" && mkdir -p "$VP/host"
    (cd "$VP/host" && cat "$VP"/pieces/virnucpro-*-linux-x64.tar.part-* | tar x) || exit 1
    VIRNUCPRO_PYTHON=$(command -v python3) "$VP"/host/virnucpro-*-linux-x64/install.sh
    ;;
  e2e)
    python3 gpu-runtime/scripts/gpu_predict_e2e.py --bundle "$(echo "$VP"/host/virnucpro-*-linux-x64)" --genomes .device/genomes \
      --work "$VP/e2e" --out "$OUT/predict-e2e.json" "$@"
    status=$?
    cp "$VP/e2e/e2e-state.json" "$OUT/" 2>/dev/null
    # The warm run's own report (issue 12's example from a GPU host) and its run log.
    warm=$(ls -d "$VP"/e2e/runs/warm-* 2>/dev/null | tail -1)
    if [[ -n "$warm" ]]; then
      mkdir -p "$OUT/warm-run"
      cp "$warm"/report.html "$warm"/run_report.json "$warm"/run_report.md "$warm"/trace.tsv "$warm"/telemetry.tsv "$warm"/.virnucpro/virnucpro.log "$OUT/warm-run/" 2>/dev/null
    fi
    tail -n 30 "$VP"/e2e/*.log > "$OUT/e2e-logs.txt" 2>/dev/null
    exit $status
    ;;
  scaling|faults)
    # Issue 10 on a host of several GPUs: `scaling 1,2[,4,8]` runs the same reads on the first N GPUs
    # for each N; `faults N` then runs them on N GPUs with one runtime killed, then one stopped.
    python3 gpu-runtime/scripts/gpu_predict_e2e.py --bundle "$(echo "$VP"/host/virnucpro-*-linux-x64)" --genomes .device/genomes \
      --work "$VP/e2e" --out "$OUT/scaling.json" synthetic "$step" "${1:?usage: gpu_e2e_session.sh scaling 1,2[,4,8] | faults N}"
    status=$?
    cp "$VP/e2e/e2e-state.json" "$OUT/" 2>/dev/null
    exit $status
    ;;
  budgets)
    # Issue 11: a smaller card's budgets from its own memory, on this GPU with the allocator capped.
    shard=$(ls "$VP"/e2e/runs/warm-*/.virnucpro/work/prepare/*/frames-00000.arrow | tail -1)
    VIRNUCPRO_STATE_DIR=$VP/e2e/xdg-state/virnucpro PYTHONPATH=$PWD/gpu-runtime:$(echo "$VP"/host/virnucpro-*-linux-x64)/lib/python \
      timeout 400 python3 gpu-runtime/scripts/card_budget_check.py --shard "$shard" --cards "${CARDS:-24,48}" --out "$OUT/card-budgets.json"
    ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac
