"""Where an ESM-2 3B packed batch spends its time on the GPU, and what the candidate
changes to the compiled layer are worth, measured in one process on the same batches.

    PYTHONPATH=gpu-runtime python3 gpu-runtime/scripts/profile_esm2.py --device cuda:0 --out profile.json

Variants (each: median seconds of 3 passes over the same packed batches, CUDA events):
  eager       ESM2.forward_packed in bf16
  compiled    compiled.CompiledESM2Packed (what serve runs)
  fp32_resid  the compiled layer with an fp32 residual stream (bf16 matmul inputs)
Then a torch.profiler trace of the compiled variant: kernel time by category (matmul,
attention, fused element-wise, other) and the GPU's idle share between kernels, which
bounds what CUDA graphs could recover.
"""
from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from virnucpro_runtime import bench, compiled, packing, shards, synthetic  # noqa: E402
from virnucpro_runtime.models.esm2 import mean_residues_packed  # noqa: E402


def timed(fn, device, repeats=3):
    return statistics.median(bench.timed(fn, device, repeats))


def category(name: str) -> str:
    lowered = name.lower()
    if any(k in lowered for k in ("gemm", "xmma", "cutlass", "nvjet", "matmul", "sm90_", "cublas")):
        return "matmul"
    if "flash" in lowered or "fmha" in lowered or "attention" in lowered:
        return "attention"
    if lowered.startswith("triton"):
        return "fused_elementwise"
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--frames", type=int, default=3072)
    parser.add_argument("--budget", type=int, default=65536)
    parser.add_argument("--size", choices=("full", "tiny"), default="full", help="tiny: a CPU smoke test of the script")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    report: dict = {"gpu": torch.cuda.get_device_name(device) if cuda else "cpu", "torch": torch.__version__, "budget": args.budget}

    with torch.device(device):
        esm2 = synthetic.ESM2(synthetic.KINDS[args.size]["esm2"])
    esm2 = synthetic.randomize_(esm2, seed=1).to(torch.bfloat16 if cuda else torch.float32).eval()
    shard = shards.read_frames(bench.REPO / "bench/data/frames_500bp.arrow")
    tokens = bench.models_tokenize_proteins(shard.proteins[:args.frames])
    batches = []
    for rows in packing.plan_packed(tokens.lengths, args.budget):
        b = packing.assemble_packed(tokens, rows, pin=False)
        batches.append((b.tokens.to(device), b.cu_seqlens.to(device), b.max_seqlen))
    n_tokens = int(tokens.lengths.sum())
    report["tokens"] = n_tokens
    report["batches"] = len(batches)

    def run(forward):
        @torch.inference_mode()
        def one_pass():
            for t, cu, m in batches:
                mean_residues_packed(forward(t, cu, m), cu, max_seqlen=m)
        return one_pass

    attention = compiled.varlen_attention if cuda else compiled.padded_attention
    low = torch.bfloat16 if cuda else torch.float32
    variants = {
        "eager": esm2.forward_packed,
        "compiled": compiled.CompiledESM2Packed(esm2, attention=attention),
    }

    def post_fp32_residual(layer, x, attended):
        x = x + layer.out_proj(attended.reshape(x.shape[0], -1)).float()
        h = F.layer_norm(x, (x.shape[-1],), layer.ffn_norm.weight.float(), layer.ffn_norm.bias.float(), layer.ffn_norm.eps)
        return x + layer.fc2(F.gelu(layer.fc1(h.to(low)))).float()

    def pre_fp32_residual(layer, x, cos, sin):
        n = x.shape[0]
        h = F.layer_norm(x, (x.shape[-1],), layer.attn_norm.weight.float(), layer.attn_norm.bias.float(), layer.attn_norm.eps)
        q, k, v = layer.qkv(h.to(low)).view(n, 3, layer.num_heads, layer.head_dim).unbind(1)
        from virnucpro_runtime.models.esm2 import _apply_rotary
        return _apply_rotary(q, cos, sin), _apply_rotary(k, cos, sin), v.contiguous()

    class Fp32Residual(compiled.CompiledESM2Packed):
        def __init__(self, model):
            super().__init__(model, attention=attention)
            self._pre = torch.compile(pre_fp32_residual, dynamic=True)
            self._post = torch.compile(post_fp32_residual, dynamic=True)

        def __call__(self, tokens, cu_seqlens, max_seqlen):
            from virnucpro_runtime.models.esm2 import packed_positions, rotary_tables
            model = self.esm2
            seq_index, positions = packed_positions(cu_seqlens, tokens.numel())
            x = model._embed(tokens, seq_index, cu_seqlens.numel() - 1).float()
            cos, sin = rotary_tables(positions, model.cfg.head_dim)
            attend = self.attention(cu_seqlens.to(torch.int32), max_seqlen, seq_index, positions)
            for layer in model.layers:
                q, k, v = self._pre(layer, x, cos, sin)
                x = self._post(layer, x, attend(q, k, v))
            return model.final_norm(x.to(low))

    variants["fp32_resid"] = Fp32Residual(esm2)
    report["tokens_per_s"] = {}
    for name, forward in variants.items():
        began = time.perf_counter()
        seconds = timed(run(forward), device)
        report["tokens_per_s"][name] = n_tokens / seconds
        bench.log(f"{name}: {n_tokens / seconds:,.0f} tokens/s ({time.perf_counter() - began:.0f} s with warm-up)")
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    if not cuda:
        print(json.dumps(report, indent=2))
        return 0
    one = run(variants["compiled"])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        torch.cuda.synchronize()
        began = time.perf_counter()
        one()
        torch.cuda.synchronize()
        wall = time.perf_counter() - began
    by_cat, by_kernel = collections.Counter(), collections.Counter()
    spans = []
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            by_cat[category(event.name)] += event.device_time
            by_kernel[event.name[:90]] += event.device_time
            spans.append((event.time_range.start, event.time_range.end))
    spans.sort()
    busy, end = 0.0, None
    for s, e in spans:  # union of kernel intervals
        if end is None or s > end:
            busy += e - s
            end = e
        elif e > end:
            busy += e - end
            end = e
    total = sum(by_cat.values())
    report["profile_compiled"] = {
        "wall_s": wall,
        "gpu_span_s": (spans[-1][1] - spans[0][0]) / 1e6,
        "kernel_busy_s": busy / 1e6,
        "idle_share_within_span": 1 - busy / (spans[-1][1] - spans[0][0]),
        "share_by_category": {k: v / total for k, v in by_cat.most_common()},
        "top_kernels_ms": {k: v / 1e3 for k, v in by_kernel.most_common(20)},
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
