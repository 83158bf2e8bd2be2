"""Where the ESM-2 and DNABERT-S weights are found when no path is given: the standard Hugging
Face hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)
`models--<org>--<name>/snapshots/*/`, and for ESM-2 also the torch hub cache ($TORCH_HOME, else
$XDG_CACHE_HOME/torch, else ~/.cache/torch) `hub/checkpoints/esm2_t36_3B_UR50D.pt`.

Declared once, here, for the runtime (weights.py) and for `virnucpro predict`, which asks
`python -m virnucpro_runtime find-weights` before a run starts; no torch import, so that
answer comes quickly.
"""
from __future__ import annotations

import os
from pathlib import Path

ESM2_HUB_REPO = "facebook/esm2_t36_3B_UR50D"
ESM2_TORCH_HUB_FILE = "esm2_t36_3B_UR50D.pt"
DNABERT_HUB_REPO = "zhihan1996/DNABERT-S"

# model -> its Hugging Face repository (the models this runtime looks up in the caches)
HUB_REPOS = {"esm2": ESM2_HUB_REPO, "dnabert": DNABERT_HUB_REPO}


def hf_hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    hf_home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(hf_home) / "hub"


def torch_hub_checkpoints() -> Path:
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints"


def _hub_snapshots(repo: str) -> Path:
    return hf_hub_cache() / f"models--{repo.replace('/', '--')}" / "snapshots"


def hub_snapshot(repo: str) -> Path | None:
    """The newest complete-looking snapshot of ``repo`` in the Hugging Face cache."""
    snapshots = _hub_snapshots(repo)
    found = sorted(p for p in snapshots.glob("*") if (p / "config.json").is_file()) if snapshots.is_dir() else []
    return found[-1] if found else None


def searched(model: str) -> list[Path]:
    """The places looked in for ``model`` ("esm2" or "dnabert"), in order."""
    places = [_hub_snapshots(HUB_REPOS[model])]
    if model == "esm2":
        places.append(torch_hub_checkpoints() / ESM2_TORCH_HUB_FILE)
    return places


def cached(model: str) -> Path | None:
    """The weights of ``model`` ("esm2" or "dnabert") in the caches, or None."""
    snapshot = hub_snapshot(HUB_REPOS[model])
    if snapshot is not None:
        return snapshot
    return next((p for p in searched(model)[1:] if p.exists()), None)


def describe() -> dict:
    """What `find-weights` prints: per model, the path found (or null) and the places searched."""
    return {model: {"found": str(found) if (found := cached(model)) else None, "searched": [str(p) for p in searched(model)]} for model in HUB_REPOS}
