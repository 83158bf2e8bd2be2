"""Per-GPU-model token budgets found by ``bench --tune``, kept in a small JSON file in the
state directory (state.py), keyed by the device name so one file serves a mixed host.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .shards import write_bytes_atomically
from .state import state_dir


def tuning_file() -> Path:
    return state_dir() / "token-budgets.json"


def device_key(device: torch.device, dtype: torch.dtype) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return f"{name}|{str(dtype).removeprefix('torch.')}"


def load_all() -> dict:
    try:
        return json.loads(tuning_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def tuned_budget(device: torch.device, models) -> int | None:
    entry = load_all().get(device_key(device, models.dtype))
    if entry and entry.get("esm2_shape") == [models.esm2_layers, models.esm2_hidden]:
        return int(entry["esm2_token_budget"])
    return None


def store_budget(device: torch.device, models, budget: int, tokens_per_s: float) -> Path:
    entries = load_all()
    entries[device_key(device, models.dtype)] = {
        "esm2_token_budget": int(budget),
        "esm2_tokens_per_s": round(float(tokens_per_s), 1),
        "esm2_shape": [models.esm2_layers, models.esm2_hidden],
        "torch": torch.__version__,
    }
    path = tuning_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, (json.dumps(entries, indent=2, sort_keys=True) + "\n").encode())
    return path
