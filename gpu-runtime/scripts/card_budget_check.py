"""Issue 11's budget rule checked on a GPU: the token budgets a smaller card gets from its own
memory (engine.default_esm2_budget / default_dnabert_budget with that card's size), run on
this GPU with PyTorch's allocator capped at that size, next to this card's own budgets.

A card passes when its shard runs with no out-of-memory retry and its peak allocation stays
under the cap. Full-size synthetic weights (ESM-2 3B in bf16, compiled as `serve` does).

    python3 gpu-runtime/scripts/card_budget_check.py --shard FRAMES.arrow --cards 24,48 --out check.json
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from virnucpro_runtime import engine as engine_mod
from virnucpro_runtime.compiled import enable_compiled_esm2
from virnucpro_runtime.models_api import load_models
from virnucpro_runtime.weights_cache import WeightsCache

GIB = 1024**3


def run_card(models, shard: str, total: int, cap: bool) -> dict:
    esm2_budget = engine_mod.default_esm2_budget(models, total)
    dnabert_budget = engine_mod.default_dnabert_budget(models, esm2_budget, total)
    device_total = torch.cuda.get_device_properties(models.device).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, total / device_total) if cap else 1.0, models.device)
    torch.cuda.reset_peak_memory_stats(models.device)
    engine = engine_mod.Engine(models, esm2_budget=esm2_budget, dnabert_budget=dnabert_budget)
    prepared = engine.prepare(shard)
    started = time.perf_counter()
    output = engine.run(prepared)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(models.device)
    return {
        "card_gib": round(total / GIB, 1),
        "allocator_capped": cap,
        "esm2_token_budget": esm2_budget,
        "dnabert_token_budget": dnabert_budget,
        "frames": len(prepared),
        "seconds": round(seconds, 2),
        "frames_per_s": round(len(prepared) / seconds, 1),
        "oom_retries": output.oom_retries,
        "peak_allocated_gib": round(peak / GIB, 2),
        "fits": output.oom_retries == 0 and peak <= total,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard", required=True)
    parser.add_argument("--cards", default="24,48", help="card sizes in GiB to emulate")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    device = torch.device("cuda:0")
    models = load_models(device, torch.bfloat16, synthetic="full", cache=WeightsCache())
    enable_compiled_esm2(models)
    engine_mod.Engine(models).warm_up()
    own = torch.cuda.get_device_properties(device).total_memory
    cards = [run_card(models, args.shard, own, cap=False)]
    cards += [run_card(models, args.shard, int(float(gib) * GIB), cap=True) for gib in args.cards.split(",")]
    result = {
        "what": "token budgets from each card's own memory (issue 11, LOAD-03), run on this GPU with the allocator capped at the card's size",
        "gpu": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "weights_gib": round(models.weight_bytes() / GIB, 2),
        "cards": cards,
    }
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
    print(json.dumps(result, indent=1))
    return 0 if all(card["fits"] for card in cards) else 1


if __name__ == "__main__":
    raise SystemExit(main())
