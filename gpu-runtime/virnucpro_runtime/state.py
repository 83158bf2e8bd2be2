"""What the runtime keeps between runs, in one state directory: ``$VIRNUCPRO_STATE_DIR``
(the CLI sets it to its own state directory), else ``$XDG_STATE_HOME/virnucpro``, else
``~/.local/state/virnucpro``.

    compile/torch-<version>/   Inductor's and Triton's caches: compiled kernels, so a warm
                               start does not compile again
    pycache/                   Python bytecode of torch (and what it imports), only where the
                               installation keeps none beside its sources (use_bytecode_cache)
    weights/                   checkpoints converted once to safetensors in the run's dtype
                               (weights_cache.py)
    synthetic/<kind>-<code>/   the synthetic checkpoints (synthetic.py), written once
    token-budgets.json         budgets found by ``bench --tune`` (tuning.py)

Every entry is keyed by what makes it valid (the source files' identity, the code that
wrote it, the torch version), so a change of any of them makes a new entry instead of
reusing a stale one. Removing the directory is always safe: it only costs a cold start.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path


def state_dir() -> Path:
    explicit = os.environ.get("VIRNUCPRO_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "virnucpro"


def torch_version() -> str:
    """Read from the package metadata, so callers can use it before importing torch."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        import torch

        return torch.__version__


def use_compile_caches() -> Path:
    """Point Inductor and Triton at the state directory (a user's own setting wins). Must run
    before torch compiles anything; ``serve`` calls it at start."""
    root = state_dir() / "compile" / f"torch-{torch_version()}"
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(root / "inductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", str(root / "triton"))
    return root


def use_bytecode_cache() -> Path | None:
    """Keep Python's bytecode in the state directory when torch's installation has none beside
    its sources (installed without it, read-only, or PYTHONDONTWRITEBYTECODE set): Python then
    compiles torch's sources on every start, ~12 s of a runtime's start on the H200 host we
    measured (bench/results/2026-12-07-nvidia-h200-imports.txt), ~3 s from this cache. Nothing
    is written beside the sources. Each file is checked against its source's size and time,
    so a changed torch is compiled again. A user's own PYTHONPYCACHEPREFIX wins. Must run
    before torch is imported; ``serve`` calls it at start."""
    if sys.pycache_prefix is not None:
        return None
    spec = importlib.util.find_spec("torch")  # finds the package without importing it
    if spec is None or spec.origin is None or os.path.exists(importlib.util.cache_from_source(spec.origin)):
        return None
    prefix = state_dir() / "pycache"
    sys.pycache_prefix = str(prefix)
    sys.dont_write_bytecode = False
    return prefix


def code_digest(*modules) -> str:
    """A short digest of the source files of ``modules``: entries written by that code are
    keyed by it, so editing the code invalidates them without anyone bumping a number."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def exclusive(path: Path):
    """Hold an exclusive lock on ``path`` (created): two runtimes on one host (one per GPU)
    then never build the same cache entry at the same time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
