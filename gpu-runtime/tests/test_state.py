"""state.py's bytecode cache: used only where torch's installation keeps no bytecode beside its
sources, written under the state directory, never beside the sources."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from virnucpro_runtime import state

RUNTIME = Path(__file__).resolve().parents[1]


def test_left_alone_where_torch_has_its_bytecode(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "pycache_prefix", None)
    monkeypatch.setattr(importlib.util, "cache_from_source", lambda origin: __file__)  # "exists"
    assert state.use_bytecode_cache() is None
    assert sys.pycache_prefix is None


def test_a_users_own_prefix_wins(monkeypatch):
    monkeypatch.setattr(sys, "pycache_prefix", "/somewhere/else")
    assert state.use_bytecode_cache() is None
    assert sys.pycache_prefix == "/somewhere/else"


def test_a_torch_without_bytecode_compiles_once_into_the_state_directory(tmp_path):
    """A stand-in `torch` package with no __pycache__, imported under -B (as
    PYTHONDONTWRITEBYTECODE does): its bytecode lands under <state>/pycache, none beside it,
    and a second start reads it from there."""
    site = tmp_path / "site"
    (site / "torch").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text("VALUE = 42\n")
    state_dir = tmp_path / "state"
    script = textwrap.dedent(
        """
        import sys
        from virnucpro_runtime import state
        print(state.use_bytecode_cache())
        import torch
        assert torch.VALUE == 42
        """
    )
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{RUNTIME}", "VIRNUCPRO_STATE_DIR": str(state_dir)}
    env.pop("PYTHONPYCACHEPREFIX", None)
    def start() -> dict[Path, int]:
        out = subprocess.run([sys.executable, "-B", "-c", script], env=env, capture_output=True, text=True, check=True).stdout
        assert out.strip() == str(state_dir / "pycache")
        return {p: p.stat().st_mtime_ns for p in (state_dir / "pycache").rglob("*.pyc") if str(site / "torch") in str(p)}

    first = start()
    assert len(first) == 1, first
    assert start() == first  # read, not written again
    assert not (site / "torch" / "__pycache__").exists()
