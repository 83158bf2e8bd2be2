"""ESM-2 3B attention alone at 500 bp frame lengths: the packed varlen kernel the engine
uses vs dense SDPA backends on equal-length sequences (what length-sorted batches mostly
hold). Decides whether grouping equal lengths for a dense kernel would pay.

    PYTHONPATH=gpu-runtime python3 gpu-runtime/scripts/attention_microbench.py --out attention.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.varlen import varlen_attn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from virnucpro_runtime.measure import bench  # noqa: E402


def timed(fn) -> float:
    return statistics.median(bench.timed(fn, torch.device("cuda"), repeats=20, warmup=3))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=168)
    parser.add_argument("--tokens", type=int, default=65536)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    heads, hd, length = 40, 64, args.length
    n = args.tokens // length
    t = n * length
    q, k, v = (torch.randn(t, heads, hd, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    cu = torch.arange(0, t + 1, length, device="cuda", dtype=torch.int32)
    flops = 4 * n * heads * length * length * hd
    report = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "commit": bench.git_commit(), "sequences": n, "length": length, "seconds": {}}
    report["seconds"]["varlen_attn"] = timed(lambda: varlen_attn(q, k, v, cu, cu, length, length))
    reference = varlen_attn(q, k, v, cu, cu, length, length)
    dense = [x.view(n, length, heads, hd).transpose(1, 2) for x in (q, k, v)]
    for name, backend in (("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION), ("sdpa_flash", SDPBackend.FLASH_ATTENTION),
                          ("sdpa_efficient", SDPBackend.EFFICIENT_ATTENTION)):
        try:
            with sdpa_kernel(backend):
                out = F.scaled_dot_product_attention(*dense)
                report["seconds"][name] = timed(lambda: F.scaled_dot_product_attention(*dense))
            report[f"{name}_max_abs_diff"] = float((out.transpose(1, 2).reshape(t, heads, hd) - reference).abs().max())
        except RuntimeError as exc:
            report[f"{name}_error"] = str(exc)[:300]
    report["tflops"] = {name: flops / s / 1e12 for name, s in report["seconds"].items()}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
