#!/usr/bin/env bash
# The offline bundle as an air-gapped host gets it (run by scripts/test.sh; needs root for the
# namespaces): build it, then, in a network namespace with no network and the system `node`
# hidden under a bind mount, check the pieces, unpack, install with a Python that has PyTorch and
# nothing else, and run `virnucpro predict` on the example reads with tiny synthetic weights.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
log() { printf '\033[1m[test-bundle]\033[0m %s\n' "$*" >&2; }

[[ $(id -u) == 0 ]] || { echo "test-bundle.sh: needs root (unshare -n -m)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/virnucpro-test-bundle.XXXXXX")
trap 'rm -rf "$work"' EXIT
python_version=$(python3 -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')

log "building the bundle (wheels for Python ${python_version})"
scripts/bundle.sh --python "$python_version" "$work/pieces"

log "a host Python with PyTorch and nothing else"
python3 -m venv "$work/host-python"
torch_spec=$("$repo/.venv/bin/python" -c 'import torch; print("torch==" + torch.__version__.split("+")[0])')
"$work/host-python/bin/python" -m pip install -q --disable-pip-version-check "$torch_spec"

node_binary=$(readlink -f "$(command -v node)")
printf '#!/bin/sh\necho "the system node is hidden in this test" >&2\nexit 127\n' > "$work/no-node"
chmod +x "$work/no-node"

log "offline: no network, no system node"
unshare -n -m env WORK="$work" NODE_BINARY="$node_binary" REPO="$repo" bash -euo pipefail -c '
  ip link set lo up
  mount --bind "$WORK/no-node" "$NODE_BINARY"
  if node --version >/dev/null 2>&1; then echo "the system node is still visible" >&2; exit 1; fi
  if python3 -c "import urllib.request; urllib.request.urlopen(\"https://pypi.org\", timeout=5)" 2>/dev/null; then
    echo "the network is still reachable" >&2; exit 1
  fi
  cd "$WORK/pieces"
  sha256sum -c --quiet SHA256SUMS
  mkdir "$WORK/host" && cd "$WORK/host"
  cat "$WORK"/pieces/virnucpro-*-linux-x64.tar.part-* | tar x
  bundle=$(echo "$WORK"/host/virnucpro-*-linux-x64)
  VIRNUCPRO_PYTHON="$WORK/host-python/bin/python" "$bundle/install.sh"
  test -d "$bundle/lib/python/pyarrow" || { echo "install.sh did not install pyarrow from the wheels" >&2; exit 1; }
  ln -s "$bundle/bin/virnucpro" "$WORK/virnucpro-on-path"
  XDG_STATE_HOME="$WORK/state" "$WORK/virnucpro-on-path" predict "$bundle/examples/example_reads.fa" \
    -o "$WORK/results" --synthetic-weights tiny --no-progress
  XDG_STATE_HOME="$WORK/state" "$bundle/bin/virnucpro" server stop >/dev/null 2>&1 || true
  for file in prediction_results.txt prediction_results_highestscore.csv sequence_summary.tsv run_report.json; do
    test -s "$WORK/results/$file" || { echo "predict did not write $file" >&2; exit 1; }
  done
  frames=$(($(wc -l < "$WORK/results/prediction_results.txt") - 2))
  echo "offline predict scored $frames frames"
  test "$frames" -gt 0
  # The GPU hosts end-to-end script (issues 8 and 10) against this installed bundle, as a dry run
  # on the CPU: its phases keep working where CI has no GPU.
  genomes="$REPO/../shared/data"
  if [[ -d "$genomes" ]]; then
    PYTHONPATH="$bundle/lib/python" XDG_STATE_HOME="$WORK/state" "$WORK/host-python/bin/python" \
      "$REPO/gpu-runtime/scripts/gpu_predict_e2e.py" --bundle "$bundle" --genomes "$genomes" --work "$WORK/e2e" \
      --device cpu --synthetic tiny --scale 0.005 --out "$WORK/e2e/scaling.json" reads scaling 1,2 faults 2
    "$WORK/host-python/bin/python" -c "import json, sys; r = json.load(open(sys.argv[1])); assert r[\"identical_to_one_gpu\"] == {\"2\": True}, r; assert {k: f[\"identical\"] for k, f in r[\"faults\"].items()} == {\"runtime\": True, \"runtime-stop\": True}, r[\"faults\"]; print(\"e2e dry run: 1 and 2 devices, and 2 with one runtime killed or stopped: identical results\")" "$WORK/e2e/scaling.json"
  else
    echo "no shared/data beside the checkout: the e2e dry run is skipped"
  fi
'
log "ok: the bundle installs and predicts offline"
