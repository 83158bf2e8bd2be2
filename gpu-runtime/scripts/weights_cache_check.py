"""The converted-weights cache on a CUDA device, quickly: convert the tiny synthetic ESM-2 and
DNABERT-S once (writing the cache), load them again from it onto the GPU, and compare every
tensor with the CPU conversion bit for bit. Prints the seconds of each load.

    PYTHONPATH=gpu-runtime python3 gpu-runtime/scripts/weights_cache_check.py --device cuda:0
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from virnucpro_runtime import synthetic, weights  # noqa: E402
from virnucpro_runtime.weights_cache import WeightsCache  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--full-esm2", action="store_true", help="also time a cache hit of ESM-2 3B's 5.7 GB of bf16 weights")
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoints = synthetic.write_checkpoints("tiny", Path(tmp) / "ckpt")
        cache_dir = Path(tmp) / "cache"
        failures = 0
        for name, load in (("esm2", lambda c: weights.load_esm2(checkpoints["esm2"], device, torch.bfloat16, cache=c)),
                           ("dnabert", lambda c: weights.load_dnabert_s(checkpoints["dnabert"], device, torch.float32, cache=c)[0])):
            writer = WeightsCache(cache_dir)
            converted = load(writer)
            writer.wait_for_writes()
            reader = WeightsCache(cache_dir)
            started = time.perf_counter()
            cached = load(reader)
            torch.cuda.synchronize(device) if device.type == "cuda" else None
            seconds = time.perf_counter() - started
            same = all(torch.equal(a, b) for a, b in zip(converted.state_dict().values(), cached.state_dict().values(), strict=True))
            on_device = all(t.device == device for t in cached.state_dict().values())
            print(f"{name}: from cache {reader.hits}, {seconds:.3f} s, bit-identical {same}, on {device} {on_device}")
            failures += not (same and on_device and reader.hits)
        if args.full_esm2:
            failures += not _time_full_esm2(device, Path(tmp))
    return 1 if failures else 0


def _time_full_esm2(device: torch.device, tmp: Path) -> bool:
    """ESM-2 3B's 5.7 GB of bf16 weights (random, made on the device) through the cache: written
    once, then the timed load a warm host does (the file in the page cache)."""
    from virnucpro_runtime.models.esm2 import ESM2, ESM2_3B

    with torch.device(device):
        model = ESM2(ESM2_3B).to(torch.bfloat16)
    source = tmp / "source.pt"
    source.write_bytes(b"stands for the checkpoint")
    writer = WeightsCache(tmp / "full-cache")
    writer.store("esm2", [source], torch.bfloat16, "check", {}, model.state_dict())
    writer.wait_for_writes()
    reader = WeightsCache(tmp / "full-cache")
    started = time.perf_counter()
    hit = reader.load("esm2", [source], torch.bfloat16, device, "check")
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    seconds = time.perf_counter() - started
    gigabytes = sum(t.numel() * t.element_size() for t in hit.state.values()) / 1e9
    same = all(torch.equal(hit.state[name], tensor) for name, tensor in model.state_dict().items())
    print(f"esm2 3B bf16 from cache: {gigabytes:.2f} GB in {seconds:.2f} s = {gigabytes / seconds:.1f} GB/s, bit-identical {same}")
    return same


if __name__ == "__main__":
    sys.exit(main())
