"""Where an ESM-2 3B packed batch spends its time on the GPU, and what the candidate
changes to the compiled layer are worth, measured in one process on the same batches.

    PYTHONPATH=gpu-runtime python3 gpu-runtime/scripts/profile_esm2.py --device cuda:0 --out profile.json

Variants (each: median seconds of 3 passes over the same packed batches, CUDA events):
  eager         ESM2.forward_packed in bf16 (with --variants eager)
  compiled      compiled.CompiledESM2Packed (what serve runs)
  a+b+...       the compiled path with the changes VariantESM2 lists (FEATURES), e.g.
                inductor_layer, cudnn_attention, fp8, fp8_fc2
A variant that fails (a kernel this torch or GPU lacks) is recorded under "errors".
With --parity-frames N, each variant's per-frame mean embeddings of the first N frames are
compared with the fp32 eager model's (cosine min and low quantiles), since a variant that
changes the arithmetic is only worth its speed at the same parity.
On a GPU, a torch.profiler trace of the last variant (or those --profile names): kernel time
by category (matmul, attention, fused element-wise, other) and the GPU's idle share between
kernels, which bounds what CUDA graphs could recover. (Earlier variants, now in compiled.py
or dropped, are recorded in bench/results/studies/.)
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from virnucpro_runtime import compiled, packing, shards, synthetic, tokenizers  # noqa: E402
from virnucpro_runtime.measure import bench, parity  # noqa: E402
from virnucpro_runtime.models import fp8  # noqa: E402
from virnucpro_runtime.models.esm2 import mean_residues_packed  # noqa: E402


def timed(fn, device, repeats=3):
    return statistics.median(bench.timed(fn, device, repeats))


def _post_attention_to_ffn_norm(layer, x, attended):
    """The inductor_layer variant's second graph: after attention, up to the FFN's LayerNorm."""
    x = layer.attention_residual(x, attended)
    return x, layer.ffn_norm(x)


def cudnn_attention(cu_seqlens, max_seqlen, seq_index, positions):
    """cuDNN's ragged (THD) attention on the packed batch, where ``varlen_attn`` runs
    FlashAttention-2: torch's private op, the one ``varlen_attn`` would call were its cuDNN
    branch on. Forward only, no dropout, exact softmax."""
    del seq_index, positions

    def attend(q, k, v):
        return torch.ops.aten._cudnn_attention_forward(
            q, k, v, None, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, False, 0.0, False, False)[0]
    return attend


def efficient_attention(cu_seqlens, max_seqlen, seq_index, positions):
    """The CUTLASS memory-efficient kernel's variable-length mode (xformers' layout: one
    batch of [1, T, H, hd] with cu_seqlens). Its 64 x 64 tiles waste less of a 168-token
    frame than FlashAttention-2's 128 x 128 (ceil(168 / 128) = 2 tiles each way: 43% of
    the scores computed are real, against 77% with 64-wide tiles)."""
    del seq_index, positions

    def attend(q, k, v):
        return torch.ops.aten._efficient_attention_forward(
            q[None], k[None], v[None], None, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, 0.0, 0, False)[0][0]
    return attend


ATTENTIONS = {"cudnn_attention": cudnn_attention, "efficient_attention": efficient_attention}


class VariantESM2(compiled.CompiledESM2Packed):
    """The compiled path with any of these changes (a variant's name joins them with '+'):
      inductor_layer   the bf16 layer of 96d44e2 (2026-12-07): Inductor graphs before and
                       after attention (LayerNorms, rotary, residual adds), fc1's GELU in
                       cuBLASLt's epilogue; the Triton kernels replaced it
      inductor_gelu    the bf16 layer before that: the FP8 path's graphs, fc1's GELU (erf) in
                       Inductor's own pass over [T, 10240]
      cudnn_attention  cuDNN's ragged attention instead of FlashAttention-2 (cuda only)
      efficient_attention  the memory-efficient kernel's varlen mode instead (cuda only)
      fp8 | fp8_<linear>  all four linear layers of every block (or only the named one; the
                       features may repeat: fp8_fc1+fp8_fc2) in FP8 as ``predict --precision
                       fp8`` runs them (emulated off FP8 hardware)"""

    def __init__(self, esm2, attention, features: set[str]):
        for name in features & set(ATTENTIONS):
            attention = ATTENTIONS[name]
        super().__init__(esm2, attention)
        options = compiled.inductor_options()
        self._post_to_norm = None
        if self.graphs:
            return
        if "inductor_gelu" in features:
            self.graphs = True
            self._post = torch.compile(compiled._post_attention, dynamic=True, options=options)
        elif "inductor_layer" in features:
            self._post_to_norm = torch.compile(_post_attention_to_ffn_norm, dynamic=True, options=options)
        if features & {"inductor_gelu", "inductor_layer"}:
            self._pre = torch.compile(compiled._pre_attention, dynamic=True, options=options)

    def _kernel_layer(self, layer, x, delta, cos, sin, attend):
        if self._post_to_norm is None:
            return super()._kernel_layer(layer, x, delta, cos, sin, attend)
        x, q, k, v = self._pre(layer, x, delta, cos, sin)
        x, h = self._post_to_norm(layer, x, attend(q, k, v))
        return x, compiled.ffn_gelu_epilogue(layer, h)


FEATURES = ("inductor_layer", "inductor_gelu", *ATTENTIONS, "fp8", *(f"fp8_{name}" for name in fp8.ESM2_LINEARS))


def variant_features(name: str) -> set[str]:
    features = set(name.split("+"))
    unknown = features - set(FEATURES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown variant feature(s) {sorted(unknown)} in {name!r}; known: {', '.join(FEATURES)}")
    return features


def fp8_linears(features: set[str]) -> tuple[str, ...]:
    if "fp8" in features:
        return fp8.ESM2_LINEARS
    return tuple(name for name in fp8.ESM2_LINEARS if f"fp8_{name}" in features)


def category(name: str) -> str:
    lowered = name.lower()
    if "flash" in lowered or "fmha" in lowered or "attention" in lowered:
        return "attention"
    if any(k in lowered for k in ("gemm", "xmma", "cutlass", "nvjet", "matmul", "sm90_", "cublas")):
        return "matmul"
    if lowered.startswith(("triton", "_add_layer_norm_rows", "_rotate_heads")):  # Inductor's, layer_kernels.py's
        return "fused_elementwise"
    return "other"


def kernel_profile(one_pass) -> dict:
    """One pass under torch.profiler: kernel time by category and the GPU's idle share
    between kernels within the pass (what CUDA graphs could recover at most)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        torch.cuda.synchronize()
        began = time.perf_counter()
        one_pass()
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
    return {
        "wall_s": wall,
        "gpu_span_s": (spans[-1][1] - spans[0][0]) / 1e6,
        "kernel_busy_s": busy / 1e6,
        "idle_share_within_span": 1 - busy / (spans[-1][1] - spans[0][0]),
        "share_by_category": {k: v / total for k, v in by_cat.most_common()},
        "top_kernels_ms": {k: v / 1e3 for k, v in by_kernel.most_common(20)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--frames", type=int, default=3072)
    parser.add_argument("--budget", type=int, default=65536)
    parser.add_argument("--variants", nargs="*", default=["eager"],
                        help="measured besides the default compiled path: eager, "
                             f"or features joined by '+' ({', '.join(FEATURES)})")
    parser.add_argument("--parity-frames", type=int, default=0, help="cosine of each variant against fp32 on this many frames")
    parser.add_argument("--profile", nargs="*", default=None,
                        help="variants to profile (default: the last measured; 'all' for every one)")
    parser.add_argument("--size", choices=("full", "tiny"), default="full", help="tiny: a CPU smoke test of the script")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    for name in args.variants:
        if name != "eager":
            features = variant_features(name)
            if {"inductor_layer", "inductor_gelu"} <= features:
                parser.error(f"{name}: one bf16 layer at a time")
            if len(features & set(ATTENTIONS)) > 1:
                parser.error(f"{name}: one attention kernel at a time")
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
    # fp8 keeps a bf16 residual stream, so its variants need bf16 even on the CPU
    needs_bf16 = any(n != "eager" and fp8_linears(variant_features(n)) for n in args.variants)
    esm2 = esm2.to(torch.bfloat16 if cuda or needs_bf16 else torch.float32)
    shard = shards.read_frames(bench.REPO / "bench/data/frames_500bp.arrow")
    tokens = tokenizers.tokenize_proteins(shard.proteins[:args.frames])

    def device_batches(token_set, lengths):
        """(tokens, cu_seqlens, max_seqlen) of each packed batch of `lengths`' rows, on the device."""
        batches = []
        for rows in packing.plan_packed(lengths, args.budget):
            b = packing.assemble_packed(token_set, rows)
            batches.append((b.tokens.to(device), b.cu_seqlens.to(device), b.max_seqlen))
        return batches

    batches = device_batches(tokens, tokens.lengths)
    if len(batches) > 1 and batches[-1][0].numel() < args.budget // 2:
        batches.pop()  # a small last batch would weigh the rates towards launch overhead
    n_tokens = sum(int(t.numel()) for t, _, _ in batches)
    report["tokens"] = n_tokens
    report["batches"] = len(batches)
    # The next frames of the file, in batches of sizes the timed passes never saw: one pass
    # over them shows a cost paid per new batch shape (a recompile, a kernel plan built per
    # shape), which repeated passes over the same batches hide.
    unseen_tokens = tokenizers.tokenize_proteins(shard.proteins[args.frames:2 * args.frames])
    unseen = device_batches(unseen_tokens, unseen_tokens.lengths)
    n_unseen = sum(int(t.numel()) for t, _, _ in unseen)

    def run(forward, batches=batches):
        @torch.inference_mode()
        def one_pass():
            for t, cu, m in batches:
                mean_residues_packed(forward(t, cu, m), cu, max_seqlen=m)
        return one_pass

    attention = compiled.varlen_attention if cuda else compiled.padded_attention
    report["tokens_per_s"] = {}
    report["errors"] = {}
    parity_batches = []
    if reference is not None:
        report["cosine_vs_fp32"] = {}
        parity_batches = device_batches(tokens, tokens.lengths[:args.parity_frames])

    @torch.inference_mode()
    def means(forward):
        return torch.cat([mean_residues_packed(forward(t, cu, m), cu, max_seqlen=m) for t, cu, m in parity_batches]).float().cpu().numpy()

    reference_means = means(reference.forward_packed) if reference is not None else None
    del reference
    jobs = [("compiled", lambda: compiled.CompiledESM2Packed(esm2, attention=attention))]
    if "eager" in args.variants:
        jobs.insert(0, ("eager", lambda: esm2.forward_packed))
    for name in args.variants:
        if name != "eager":
            features = variant_features(name)

            def make(features=features, linears=fp8_linears(features)):
                model = esm2
                if linears:
                    model = fp8.quantize_esm2_linears_(copy.deepcopy(esm2), emulate=not cuda, linears=linears)
                return VariantESM2(model, attention, features)
            jobs.append((name, make))
    names = [name for name, _ in jobs]
    profiled = set() if not cuda else set(names) if args.profile == ["all"] else set(args.profile or names[-1:])
    report["profiles"] = {}

    for name, make_forward in jobs:
        # A variant that fails (a kernel this torch or GPU lacks) is recorded, not fatal.
        began = time.perf_counter()
        torch._dynamo.reset()  # a fresh cache per variant: no recompile limits, no leftovers
        try:
            forward = make_forward()
            seconds = timed(run(forward), device)
            if unseen:
                report.setdefault("unseen_batches_tokens_per_s", {})[name] = n_unseen / bench.timed(run(forward, unseen), device, 1, warmup=0)[0]
            if reference_means is not None:
                report["cosine_vs_fp32"][name] = parity.cosine_quantiles(means(forward), reference_means)
            if name in profiled:
                report["profiles"][name] = kernel_profile(run(forward))
        except Exception as exc:  # noqa: BLE001 - the study goes on with the other variants
            report["errors"][name] = f"{type(exc).__name__}: {str(exc)[:2000]}"
            bench.log(f"{name}: failed: {report['errors'][name][:300]}")
            args.out.write_text(json.dumps(report, indent=2) + "\n")
            continue
        finally:
            forward = None  # an fp8 copy of the model is freed before the next is made
        report["tokens_per_s"][name] = n_tokens / seconds
        cosine = f", cosine min {report['cosine_vs_fp32'][name]['min']:.6f}" if reference_means is not None else ""
        bench.log(f"{name}: {n_tokens / seconds:,.0f} tokens/s{cosine} ({time.perf_counter() - began:.0f} s with warm-up)")
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(json.dumps({k: v for k, v in report.items() if k != "profiles"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
