#!/bin/sh
# Installs this virnucpro bundle where it lies, offline: no network, no system Node.js.
# It needs a Python (>= 3.10) with PyTorch (the one your GPU jobs use): VIRNUCPRO_PYTHON, else
# python3 on PATH. Python packages the runtime needs and that Python lacks come from wheels/.
#   ./install.sh                  then   ./bin/virnucpro predict reads.fa -o results
#   VIRNUCPRO_PYTHON=/path/to/python ./install.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${VIRNUCPRO_PYTHON:-$(command -v python3 || true)}
if [ -z "$python" ]; then
  echo "install.sh: no Python found: put python3 (>= 3.10, with PyTorch) on PATH or set VIRNUCPRO_PYTHON" >&2
  exit 2
fi
exec "$python" "$here/install.py" "$here"
