"""Where an ESM-2 3B packed batch spends its time on the GPU, and what the candidate
changes to the compiled layer are worth, measured in one process on the same batches.

    PYTHONPATH=gpu-runtime python3 gpu-runtime/scripts/profile_esm2.py --device cuda:0 --out profile.json

Variants (each: median seconds of 3 passes over the same packed batches, CUDA events):
  eager         ESM2.forward_packed in bf16 (with --variants eager)
  compiled      compiled.CompiledESM2Packed (what serve runs)
  max_autotune  the same with Inductor's GEMM autotuning (INDUCTOR_VARIANTS)
  gelu_epilogue the compiled path with fc1's bias and GELU in cuBLASLt's epilogue
                (``torch._addmm_activation``: the tanh approximation of GELU, fp32 on the
                accumulator) instead of Inductor's separate GELU pass over [T, 10240]
  qkv_stacked   the compiled path with q, k, v rotated and made dense in one pass
With --parity-frames N, each variant's per-frame mean embeddings of the first N frames are
compared with the fp32 eager model's (cosine min and low quantiles), since a variant that
changes the arithmetic is only worth its speed at the same parity.
Then a torch.profiler trace of the last variant: kernel time by category (matmul,
attention, fused element-wise, other) and the GPU's idle share between kernels, which
bounds what CUDA graphs could recover. (Earlier variants, now in compiled.py or dropped,
are recorded in bench/results/studies/.)
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from virnucpro_runtime import compiled, packing, shards, synthetic, tokenizers  # noqa: E402
from virnucpro_runtime.measure import bench, parity  # noqa: E402
from virnucpro_runtime.models.esm2 import mean_residues_packed  # noqa: E402


def timed(fn, device, repeats=3):
    return statistics.median(bench.timed(fn, device, repeats))


# Inductor settings on top of compiled.py's own (kernel choice only, no change of arithmetic).
INDUCTOR_VARIANTS = {
    # Triton GEMM templates compete with cuBLAS; a template can take the FFN's bias + GELU
    # into its epilogue, which cuBLAS (exact erf GELU) cannot.
    "max_autotune": {"max_autotune": True, "max_autotune_gemm_backends": "TRITON,ATEN"},
}


def _attention_residual_and_norm(layer, x, attended):
    x = layer.attention_residual(x, attended)
    return x, layer.ffn_norm(x)


class GeluEpilogueESM2(compiled.CompiledESM2Packed):
    """The compiled path with the FFN's first matmul, bias and GELU as one cuBLASLt call. It
    runs outside the graphs: Inductor decomposes ``_addmm_activation`` back into a matmul
    and a separate GELU pass, the very pass this removes."""

    def __init__(self, esm2, attention):
        super().__init__(esm2, attention)
        norm = torch.compile(_attention_residual_and_norm, dynamic=True, options=compiled.inductor_options())

        def post(layer, x, attended):
            x, h = norm(layer, x, attended)
            hidden = torch._addmm_activation(layer.fc1.bias, h, layer.fc1.weight.t(), use_gelu=True)
            return x, F.linear(hidden, layer.fc2.weight, layer.fc2.bias)

        self._post = post


def _pre_attention_stacked(layer, x, delta, cos, sin):
    x = x + delta
    q, k, v = layer.attention_inputs(x, cos, sin)
    return (x, *torch.stack((q, k, v)).unbind(0))


class StackedQkvESM2(compiled.CompiledESM2Packed):
    """The compiled path with rotated q, k and v written into one [3, T, H, hd] buffer, so
    each is dense for the varlen kernel: Inductor then emits one pointwise kernel where it
    now emits two (rotary on q and k, a copy making v dense). Same arithmetic."""

    def __init__(self, esm2, attention):
        super().__init__(esm2, attention)
        self._pre = torch.compile(_pre_attention_stacked, dynamic=True, options=compiled.inductor_options())


FORWARD_VARIANTS = {"gelu_epilogue": GeluEpilogueESM2, "qkv_stacked": StackedQkvESM2}


def category(name: str) -> str:
    lowered = name.lower()
    if "flash" in lowered or "fmha" in lowered or "attention" in lowered:
        return "attention"
    if any(k in lowered for k in ("gemm", "xmma", "cutlass", "nvjet", "matmul", "sm90_", "cublas")):
        return "matmul"
    if lowered.startswith("triton"):
        return "fused_elementwise"
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--frames", type=int, default=3072)
    parser.add_argument("--budget", type=int, default=65536)
    parser.add_argument("--variants", nargs="*", default=["eager"], choices=["eager", *INDUCTOR_VARIANTS, *FORWARD_VARIANTS],
                        help="measured besides the default compiled path")
    parser.add_argument("--parity-frames", type=int, default=0, help="cosine of each variant against fp32 on this many frames")
    parser.add_argument("--size", choices=("full", "tiny"), default="full", help="tiny: a CPU smoke test of the script")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    report: dict = {"gpu": torch.cuda.get_device_name(device) if cuda else "cpu", "torch": torch.__version__, "commit": bench.git_commit(), "budget": args.budget}

    with torch.device(device):
        esm2 = synthetic.ESM2(synthetic.KINDS[args.size]["esm2"])
    esm2 = synthetic.randomize_(esm2, seed=1).eval()
    reference = None
    if args.parity_frames:
        reference = esm2
        esm2 = copy.deepcopy(esm2)
    esm2 = esm2.to(torch.bfloat16 if cuda else torch.float32)
    shard = shards.read_frames(bench.REPO / "bench/data/frames_500bp.arrow")
    tokens = tokenizers.tokenize_proteins(shard.proteins[:args.frames])
    batches = []
    for rows in packing.plan_packed(tokens.lengths, args.budget):
        b = packing.assemble_packed(tokens, rows)
        batches.append((b.tokens.to(device), b.cu_seqlens.to(device), b.max_seqlen))
    if len(batches) > 1 and batches[-1][0].numel() < args.budget // 2:
        batches.pop()  # a small last batch would weigh the rates towards launch overhead
    n_tokens = sum(int(t.numel()) for t, _, _ in batches)
    report["tokens"] = n_tokens
    report["batches"] = len(batches)

    def run(forward):
        @torch.inference_mode()
        def one_pass():
            for t, cu, m in batches:
                mean_residues_packed(forward(t, cu, m), cu, max_seqlen=m)
        return one_pass

    attention = compiled.varlen_attention if cuda else compiled.padded_attention
    report["tokens_per_s"] = {}
    parity_batches = []
    if reference is not None:
        report["cosine_vs_fp32"] = {}
        for rows in packing.plan_packed(tokens.lengths[:args.parity_frames], args.budget):
            b = packing.assemble_packed(tokens, rows)
            parity_batches.append((b.tokens.to(device), b.cu_seqlens.to(device), b.max_seqlen))

    @torch.inference_mode()
    def means(forward):
        return torch.cat([mean_residues_packed(forward(t, cu, m), cu, max_seqlen=m) for t, cu, m in parity_batches]).cpu().numpy()

    reference_means = means(reference.forward_packed) if reference is not None else None
    del reference

    def measure(name, forward, patch=None):
        began = time.perf_counter()
        with torch._inductor.config.patch(patch or {}):
            seconds = timed(run(forward), device)
            if reference_means is not None:
                report["cosine_vs_fp32"][name] = parity.cosine_quantiles(means(forward), reference_means)
        report["tokens_per_s"][name] = n_tokens / seconds
        cosine = f", cosine min {report['cosine_vs_fp32'][name]['min']:.6f}" if reference_means is not None else ""
        bench.log(f"{name}: {n_tokens / seconds:,.0f} tokens/s{cosine} ({time.perf_counter() - began:.0f} s with warm-up)")
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        return forward

    if "eager" in args.variants:
        measure("eager", esm2.forward_packed)
    last = measure("compiled", compiled.CompiledESM2Packed(esm2, attention=attention))
    for name in args.variants:
        if name in INDUCTOR_VARIANTS:
            torch._dynamo.reset()  # dynamo caches per code object: a new setting needs a fresh cache
            last = measure(name, compiled.CompiledESM2Packed(esm2, attention=attention), INDUCTOR_VARIANTS[name])
        elif name in FORWARD_VARIANTS:
            last = measure(name, FORWARD_VARIANTS[name](esm2, attention=attention))

    if not cuda:
        print(json.dumps(report, indent=2))
        return 0
    one = run(last)
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
    report["profiled_variant"] = list(report["tokens_per_s"])[-1]
    report["profile"] = {
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
