#!/usr/bin/env bash
# One-time (idempotent) set-up of a checkout: Node dependencies, the TypeScript build,
# a Python virtual environment (.venv) with PyTorch, the GPU runtime and the Temporal CLI.
# Usage: scripts/setup.sh [--test]   (--test also installs the test-only references)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

command -v node >/dev/null || { echo "setup: Node.js >= 20 is required (node not found)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "setup: Python >= 3.10 is required (python3 not found)" >&2; exit 1; }

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "installing Node dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "building TypeScript"
npm run --silent build

if [[ ! -x .venv/bin/python ]]; then
  log "creating Python environment .venv"
  python3 -m venv .venv
fi
py=.venv/bin/python
if ! "$py" -c 'import torch' 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    log "installing PyTorch (CUDA build)"
    "$py" -m pip install -q "$(grep -E '^torch[<>=]' gpu-runtime/requirements.txt)"
  else
    log "installing PyTorch (CPU build: no NVIDIA driver found)"
    "$py" -m pip install -q 'torch==2.13.0' || "$py" -m pip install -q --index-url https://download.pytorch.org/whl/cpu 'torch>=2.10'
  fi
fi
log "installing the GPU runtime and its dependencies"
"$py" -m pip install -q -r gpu-runtime/requirements.txt
"$py" -m pip install -q --no-deps -e gpu-runtime
if [[ $want_test == 1 ]]; then
  log "installing test references (fair-esm, transformers, pytest)"
  "$py" -m pip install -q -r gpu-runtime/requirements-test.txt
fi
log "ready: $(.venv/bin/temporal --version | head -1); torch $("$py" -c 'import torch; print(torch.__version__)')"
