"""``python -m virnucpro_runtime bench``: throughput and parity on one device, one process.

Full-size random-weight models (synthetic.py's recipe; ESM-2 3B 36 x 2560, DNABERT-S
12 x 768) on the frame shard in bench/data (real reads cut from real genomes), three ways:

1. original: fp32, ESM-2 in fair-esm-style padded batches of <= 2048 tokens, DNABERT-S one
   sequence at a time (our fp32 reference path, reference.py); timed on a small sample,
   whose outputs are also the yardstick for parity;
2. hf_bf16: Hugging Face transformers ``EsmModel`` / ``BertModel`` (random weights, same
   sizes), bf16, SDPA, length-sorted padded batches of <= 64k tokens;
3. ours: the engine's packed bf16 path (optionally with the layer under torch.compile),
   per-model rates and end to end (shard read + tokenise + both models + classifier);
4. ours_fp8 (``--precision fp8``, opt-in): the same with ESM-2's linear layers in FP8
   (models/fp8.py), where the device has FP8 matmuls (``--fp8-emulate``: the CPU emulation,
   for smoke tests; its rate means nothing); its parity against the fp32 engine on the
   ``--parity-frames`` frames beside ours.

Token rates count real tokens (<cls>/<eos> and [CLS]/[SEP] included, padding excluded),
so every method is credited with the same work. Times are medians over repeats measured
with CUDA events after a warm-up pass. ``--tune`` tries several ESM-2 token budgets and
stores the best for this GPU model (tuning.py), which ``serve`` then uses.
"""
from __future__ import annotations

import argparse
import dataclasses
import copy
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .. import engine as engine_mod
from .. import packing, shards, synthetic, tokenizers, tuning
from ..models import fp8
from ..models_api import LoadedModels, use_fp8_esm2
from ..telemetry import DeviceMonitor, UtilizationSampler
from . import parity, reference

REPO = Path(__file__).resolve().parents[3]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=Path, default=REPO / "bench/data/frames_500bp.arrow")
    parser.add_argument("--size", choices=("full", "tiny"), default="full", help="model sizes (tiny: a CPU smoke test)")
    parser.add_argument("--sample-frames", type=int, default=4096, help="frames per throughput measurement")
    parser.add_argument("--original-frames", type=int, default=1024, help="frames run the original's way (timing + embedding parity)")
    parser.add_argument("--parity-frames", type=int, default=4096, help="frames for label parity (fp32 engine as reference; half held out)")
    parser.add_argument("--e2e-frames", type=int, default=16384, help="frames in the end-to-end shard")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=int, default=None, help="ESM-2 token budget (default: tuned, else from free memory)")
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto", help="torch.compile the ESM-2 layers (auto: on CUDA)")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: original,hf,e2e,fp8")
    parser.add_argument("--fp8-emulate", action="store_true", help="measure the FP8 path by its CPU emulation (smoke tests only)")
    parser.add_argument("--tune", action="store_true", help="try several ESM-2 token budgets and store the best")
    parser.add_argument("--out-dir", type=Path, default=REPO / "bench/results")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: <out-dir>/<date>-<gpu>-<readlen>.json)")


# ---- timing -------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn``: CUDA events on a GPU, a synchronised host clock on CPU."""
    for _ in range(warmup):
        fn()
    _sync(device)
    seconds = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) / 1000)
        else:
            began = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - began)
    return seconds


def rate(amount: float, seconds: list[float]) -> float:
    return amount / statistics.median(seconds)


# ---- models ---------------------------------------------------------------------------------
def build_models(size: str, device: torch.device) -> LoadedModels:
    """fp32 synthetic random-weight models of the given size on the device (synthetic.py's
    recipe and its calibrated classifier, whose scores spread over (0, 1))."""
    log(f"building {size} fp32 models on {device}")
    with torch.device(device):  # allocate on the device; fill outside (randomize_ draws on the CPU)
        esm2 = synthetic.ESM2(synthetic.KINDS[size]["esm2"])
        dnabert = synthetic.DNABERTS(synthetic.KINDS[size]["dnabert"])
    esm2 = synthetic.randomize_(esm2, seed=1).eval()
    dnabert = synthetic.randomize_(dnabert, seed=2).eval()
    dna_tokenizer = tokenizers.DnaTokenizer(synthetic.build_dna_tokenizer(synthetic.KINDS[size]["dnabert"].vocab_size))
    classifier = synthetic.calibrated_classifier(esm2, dnabert, dna_tokenizer).to(device).eval()
    return LoadedModels(device, torch.float32, esm2, dnabert, dna_tokenizer, classifier, {"synthetic": size})


def with_dtype(models: LoadedModels, dtype: torch.dtype) -> LoadedModels:
    """ESM-2's weights in another dtype; DNABERT-S (always fp32, TF32 matmuls on the fast
    path: models_api.dnabert_uses_tf32), the classifier and the tokenizer are shared."""
    return LoadedModels(models.device, dtype, copy.deepcopy(models.esm2).to(dtype), models.dnabert,
                        models.dna_tokenizer, models.classifier, models.sources)


# ---- (1) the original's way -------------------------------------------------------------------
def bench_original(ref_models: LoadedModels, frames: shards.FrameShard, n: int, parts: int = 4) -> tuple[dict, reference.ReferenceOutput]:
    """Time the original's way on ``parts`` equal slices (median of their rates); the
    outputs of all slices together are the parity reference."""
    rows = np.arange(n)
    esm_rates, dna_rates, dna_outs, esm_outs = [], [], [], []
    for part in np.array_split(rows, parts):
        proteins = [frames.proteins[r] for r in part]
        nucleotides = [frames.nucleotides[r] for r in part]
        esm_tokens = int(tokenizers.tokenize_proteins(proteins).lengths.sum())
        dna_tokens = int(ref_models.dna_tokenizer.tokenize(nucleotides).lengths.sum())
        _sync(ref_models.device)
        began = time.perf_counter()
        esm_outs.append(reference.esm2_padded_means(ref_models, proteins))
        _sync(ref_models.device)
        esm_rates.append(esm_tokens / (time.perf_counter() - began))
        began = time.perf_counter()
        dna_outs.append(reference.dnabert_one_at_a_time(ref_models, nucleotides))
        _sync(ref_models.device)
        dna_rates.append(dna_tokens / (time.perf_counter() - began))
    dnabert, esm2 = np.concatenate(dna_outs), np.concatenate(esm_outs)
    ref = reference.ReferenceOutput(dnabert, esm2, reference.classify(ref_models, dnabert, esm2))
    # the first slice includes warm-up (allocator, cuBLAS handles): the median ignores it
    return {"esm2_tokens_per_s": statistics.median(esm_rates), "dnabert_tokens_per_s": statistics.median(dna_rates),
            "frames": n, "esm2_toks_per_batch": reference.FAIR_ESM_TOKS_PER_BATCH}, ref


# ---- (2) Hugging Face transformers, bf16 SDPA, sorted 64k-token batches -------------------------
def bench_hf(size: str, device: torch.device, frames: shards.FrameShard, n: int, repeats: int, budget: int = 65536) -> dict:
    from transformers import EsmConfig, EsmModel

    esm_cfg, dna_cfg = synthetic.KINDS[size]["esm2"], synthetic.KINDS[size]["dnabert"]
    results = {"padded_tokens_per_batch": budget}
    proteins = frames.proteins[:n]
    esm_tokens = tokenizers.tokenize_proteins(proteins)
    config = EsmConfig(vocab_size=33, hidden_size=esm_cfg.embed_dim, num_hidden_layers=esm_cfg.num_layers,
                       num_attention_heads=esm_cfg.num_heads, intermediate_size=esm_cfg.ffn_dim,
                       position_embedding_type="rotary", token_dropout=True, mask_token_id=tokenizers.ESM_MASK,
                       pad_token_id=tokenizers.ESM_PAD, max_position_embeddings=1026, layer_norm_eps=1e-5,
                       emb_layer_norm_before=False)
    if esm_cfg.attn_dim == esm_cfg.embed_dim:  # HF ties the attention width to the hidden size
        model = _hf_model(EsmModel, config, device, add_pooling_layer=False)
        batches = _hf_batches(esm_tokens, budget, tokenizers.ESM_PAD, device)
        seconds = timed(lambda: _hf_esm_pass(model, batches), device, repeats)
        results["esm2_tokens_per_s"] = rate(esm_tokens.lengths.sum(), seconds)
        del model, batches
        torch.cuda.empty_cache() if device.type == "cuda" else None
    return results | {"dnabert_tokens_per_s": _hf_bert(dna_cfg, device, frames, n, repeats, budget)}


def _hf_model(cls, config, device, **kwargs):
    torch.manual_seed(0)
    config._attn_implementation = "sdpa"
    with torch.device(device):
        model = cls(config, **kwargs)
    model.config._attn_implementation = "sdpa"
    return model.to(torch.bfloat16).eval()


def _hf_batches(tokens: tokenizers.TokenizedSet, budget: int, pad_id: int, device: torch.device):
    batches = []
    for rows in packing.plan_padded(tokens.lengths, budget):
        batch = packing.assemble_padded(tokens, rows, pad_id)
        ids = batch.input_ids.to(device)
        batches.append((ids, (ids != pad_id).long() if pad_id >= 0 else None, batch.lengths.to(device)))
    return batches


@torch.inference_mode()
def _hf_esm_pass(model, batches) -> None:
    for ids, mask, lengths in batches:
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        positions = torch.arange(ids.shape[1], device=ids.device)[None, :]
        residues = (positions >= 1) & (positions <= (lengths - 2)[:, None])
        (hidden.float() * residues[..., None]).sum(1) / (lengths - 2)[:, None]


def _hf_bert(dna_cfg, device, frames, n, repeats, budget) -> float:
    from transformers import BertConfig, BertModel

    tokenizer = tokenizers.DnaTokenizer(synthetic.build_dna_tokenizer(dna_cfg.vocab_size))
    tokens = tokenizer.tokenize(frames.nucleotides[:n])
    config = BertConfig(vocab_size=dna_cfg.vocab_size, hidden_size=dna_cfg.hidden_size, num_hidden_layers=dna_cfg.num_layers,
                        num_attention_heads=dna_cfg.num_heads, intermediate_size=dna_cfg.intermediate_size,
                        max_position_embeddings=1024)
    model = _hf_model(BertModel, config, device, add_pooling_layer=False)
    batches = _hf_batches(tokens, budget, tokenizer.pad_id, device)

    @torch.inference_mode()
    def one_pass():
        for ids, mask, lengths in batches:
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            (hidden.float() * mask[..., None]).sum(1) / lengths[:, None]

    seconds = timed(one_pass, device, repeats)
    return rate(tokens.lengths.sum(), seconds)


# ---- (3) ours ---------------------------------------------------------------------------------
def bench_ours_models(models: LoadedModels, frames: shards.FrameShard, n: int, budget: int, dnabert_budget: int, repeats: int) -> dict:
    """Per-model device throughput of the engine's batches (assembled ahead, on the device)."""
    esm_tokens = tokenizers.tokenize_proteins(frames.proteins[:n])
    esm_batches = []
    for rows in packing.plan_packed(esm_tokens.lengths, budget):
        b = packing.assemble_packed(esm_tokens, rows)
        esm_batches.append((b.tokens.to(models.device), b.cu_seqlens.to(models.device), b.max_seqlen))
    dna_tokens = models.dna_tokenizer.tokenize(frames.nucleotides[:n])
    dna_batches = []
    for rows in packing.plan_padded(dna_tokens.lengths, dnabert_budget):
        b = packing.assemble_padded(dna_tokens, rows, models.dnabert_pad_id)
        dna_batches.append((b.input_ids.to(models.device), b.lengths.to(models.device)))

    @torch.inference_mode()
    def esm_pass():
        for tokens, cu, max_len in esm_batches:
            models.embed_proteins_packed(tokens, cu, max_len)

    @torch.inference_mode()
    def dna_pass():
        for ids, lengths in dna_batches:
            models.embed_nucleotides_padded(ids, lengths)

    esm_seconds = timed(esm_pass, models.device, repeats)
    dna_seconds = timed(dna_pass, models.device, repeats)
    return {
        "esm2_tokens_per_s": rate(esm_tokens.lengths.sum(), esm_seconds),
        "esm2_seconds": esm_seconds,
        "dnabert_tokens_per_s": rate(dna_tokens.lengths.sum(), dna_seconds),
        "esm2_batches": len(esm_batches),
        "dnabert_batches": len(dna_batches),
        "esm2_tokens_per_frame": float(esm_tokens.lengths.mean()),
    }


def _engine_on_frames(fast: engine_mod.Engine, frames: shards.FrameShard, n: int) -> engine_mod.RunOutput:
    """The engine on the first n frames, with embeddings."""
    with tempfile.TemporaryDirectory() as tmp:
        subset = shards.FrameShard(frames.keys.take(np.arange(n)), frames.nucleotides[:n], frames.proteins[:n])
        path = replicate_shard(subset, n, Path(tmp) / "parity.arrow")
        return fast.run(fast.prepare(path), embeddings=True)


def replicate_shard(frames: shards.FrameShard, n: int, path: Path) -> Path:
    """An n-frame shard cycling through the frame set (ids made unique per cycle)."""
    rows = np.arange(n) % len(frames)
    keys = frames.keys.take(rows)
    keys = dataclasses.replace(keys, frame_ids=[f"{frame_id}#{i // len(frames)}" for i, frame_id in enumerate(keys.frame_ids)])
    shards.write_frames(path, keys, [frames.nucleotides[r] for r in rows], [frames.proteins[r] for r in rows])
    return path


def bench_end_to_end(fast: engine_mod.Engine, shard_path: Path, monitor: DeviceMonitor) -> dict:
    """One shard through prepare + run (warm-up on a copy first); GPU busy from NVML."""
    prepared = fast.prepare(shard_path)
    if fast.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(fast.device)
    with UtilizationSampler(monitor) as sampler:
        began = time.perf_counter()
        output = fast.run(prepared)
        run_seconds = time.perf_counter() - began
    peak = torch.cuda.max_memory_allocated(fast.device) / 2**30 if fast.device.type == "cuda" else None
    return {
        "frames": len(prepared),
        "prepare_seconds": prepared.prepare_seconds,
        "run_seconds": run_seconds,
        "frames_per_s": len(prepared) / run_seconds,
        "esm2_tokens_per_s": output.esm2_tokens / run_seconds,
        "gpu_busy_fraction": sampler.mean,
        "peak_memory_gib": peak,
        "esm2_token_budget": fast.esm2_budget,
        "dnabert_token_budget": fast.dnabert_budget,
    }


def tune(models: LoadedModels, frames: shards.FrameShard, n: int, dnabert_budget: int, repeats: int) -> dict:
    found = {}
    for budget in (16384, 32768, 65536, 131072, 262144):
        try:
            found[budget] = bench_ours_models(models, frames, n, budget, dnabert_budget, repeats)["esm2_tokens_per_s"]
        except torch.OutOfMemoryError:
            break
        log(f"tune: budget {budget}: {found[budget]:,.0f} ESM-2 tokens/s")
    best = max(found, key=found.get)
    path = tuning.store_budget(models.device, models, best, found[best])
    return {"tried": {str(k): v for k, v in found.items()}, "best": best, "stored_in": str(path)}


# ---- (4) ours with FP8 linear layers ------------------------------------------------------------
def bench_fp8(models: LoadedModels, fast: engine_mod.Engine, frames: shards.FrameShard, args, compile_esm2: bool,
              exact: engine_mod.RunOutput | None, original_ref: reference.ReferenceOutput | None) -> dict:
    """ESM-2 with FP8 linears (a bf16 copy of ``models``' ESM-2, quantised), under the same
    token budgets as ours: eager and, where ours compiles, compiled (what ``serve`` runs);
    then, given the fp32 engine's outputs (``exact``), its parity on the same frames."""
    device = models.device
    quantised = with_dtype(models, torch.bfloat16)
    use_fp8_esm2(quantised, emulate=args.fp8_emulate)
    result: dict = {"precision": quantised.precision()}
    log(f"ours (fp8, eager): per-model throughput on {args.sample_frames} frames")
    result["eager"] = bench_ours_models(quantised, frames, args.sample_frames, fast.esm2_budget, fast.dnabert_budget, args.repeats)
    best = result["eager"]
    if compile_esm2:
        from ..compiled import enable_compiled_esm2

        try:
            began = time.perf_counter()
            enable_compiled_esm2(quantised)
            result["compiled"] = bench_ours_models(quantised, frames, args.sample_frames, fast.esm2_budget, fast.dnabert_budget, args.repeats)
            result["compiled"]["compile_and_warmup_seconds"] = time.perf_counter() - began - sum(result["compiled"]["esm2_seconds"])
            best = result["compiled"]
        except Exception as exc:  # as for ours: a compile failure must not cost the rest of the run
            result["compile_error"] = f"{type(exc).__name__}: {exc}"[:2000]
            log(f"fp8 compile failed, staying eager: {result['compile_error'][:300]}")
            quantised.esm2_packed_forward = None
    result["compiled_esm2"] = quantised.esm2_packed_forward is not None
    result["esm2_tokens_per_s"] = best["esm2_tokens_per_s"]
    log(f"ours (fp8, {'compiled' if result['compiled_esm2'] else 'eager'}): ESM-2 {best['esm2_tokens_per_s']:,.0f} tokens/s")
    if exact is not None:
        log(f"fp8 parity on {args.parity_frames} frames")
        engine = engine_mod.Engine(quantised, esm2_budget=fast.esm2_budget, dnabert_budget=fast.dnabert_budget)
        out = _engine_on_frames(engine, frames, args.parity_frames)
        result["parity"] = parity.parity_report(out, exact, original_ref, frames.frame_ids[:args.parity_frames], device)
    return result


# ---- report -----------------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def git_commit() -> str | None:
    """VIRNUCPRO_COMMIT when set (the GPU machine's copy of the tree may carry a stale .git),
    else the checkout's HEAD."""
    if os.environ.get("VIRNUCPRO_COMMIT"):
        return os.environ["VIRNUCPRO_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def table(report: dict) -> str:
    methods = ("ours", "ours_fp8", "hf_bf16", "original")
    rows = [("", *methods)]
    for key in ("esm2_tokens_per_s", "dnabert_tokens_per_s"):
        values = report[key]
        rows.append((key, *(f"{values[m]:,.0f}" if values.get(m) is not None else "-" for m in methods)))
    width = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(width[i]) for i, cell in enumerate(r)) for r in rows]
    e2e = report.get("end_to_end") or {}
    lines.append(f"end to end: {report.get('end_to_end_frames_per_s') or 0:,.1f} frames/s, GPU busy {e2e.get('gpu_busy_fraction')}, "
                 f"{report.get('end_to_end_vs_esm2_alone')} of ESM-2-alone, peak {report.get('peak_memory_gib')} GiB")
    if report.get("parity"):
        p = report["parity"]
        lines.append(f"parity vs the original's way ({p['frames_vs_original']} frames): ESM-2 cos min {p['esm2_cosine_min']:.5f} "
                     f"median {p['esm2_cosine_median']:.6f}; DNABERT-S cos min {p['dnabert_cosine_min']:.6f}")
        lines.append(f"labels on {p['held_out_frames']} held-out frames: trained stand-in {p['label_agreement']:.4%} "
                     f"({p['labels_changed']} changed; virus score diff max {p['virus_score_diff_max']:.4f} p99 {p['virus_score_diff_p99']:.4f}), "
                     f"random-direction worst case {p['label_agreement_random_direction']:.4%}")
    fp8_report = report.get("fp8") or {}
    if fp8_report.get("skipped"):
        lines.append(f"fp8: not measured: {fp8_report['skipped']}")
    for name, p in ((f"ours ({report['dtype_ours']})", report.get("parity")), ("ours_fp8", fp8_report.get("parity"))):
        if p:
            c, trained = p["esm2_cosine_vs_fp32_engine"], p["classifiers"]["trained"]
            lines.append(f"{name} vs the fp32 engine: ESM-2 cos min {c['min']:.6f} q0.001 {c['q0.001']:.6f} q0.01 {c['q0.01']:.6f} "
                         f"({c['frames']} frames); labels {p['label_agreement']:.4%} of {p['held_out_frames']} held-out "
                         f"({p['labels_changed']} changed; {trained['labels_changed_fast_esm2_only']} with only ESM-2's fast path, "
                         f"{trained['labels_changed_fast_dnabert_only']} with only DNABERT-S's), one-sided 95% lower bound {p['label_agreement_lower_95']:.4%}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    skip = {s for s in args.skip.split(",") if s}
    frames = shards.read_frames(args.frames)
    if "original" not in skip and args.parity_frames > len(frames):
        raise SystemExit(f"bench: --parity-frames {args.parity_frames} is more than the {len(frames)} distinct frames of {args.frames}; "
                         "make a larger frame file (gpu-runtime/scripts/make_bench_frames.py --frames N) and pass --frames")
    read_length = int(re.search(r"(\d+)bp", args.frames.name).group(1)) if re.search(r"(\d+)bp", args.frames.name) else None
    fast_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    report: dict = {
        "gpu": gpu, "torch": torch.__version__, "commit": git_commit(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "read_length": read_length,
        "model_size": args.size, "frames_file": args.frames.name, "dtype_ours": str(fast_dtype).removeprefix("torch."),
        "esm2_tokens_per_s": {}, "dnabert_tokens_per_s": {},
    }
    monitor = DeviceMonitor(device)
    out = args.out or args.out_dir / f"{dt.date.today().isoformat()}-{_slug(gpu)}-{read_length}.json"

    def save() -> None:
        """After every stage, so a run stopped at a time limit still leaves its figures."""
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=float) + "\n")

    ref_models = build_models(args.size, device)
    exact = original_ref = None
    if "original" not in skip:
        log(f"original's way on {args.original_frames} frames (fp32, padded 2048-token ESM-2 batches, DNABERT-S one at a time)")
        original, original_ref = bench_original(ref_models, frames, args.original_frames)
        report["original"] = original
        report["esm2_tokens_per_s"]["original"] = original["esm2_tokens_per_s"]
        report["dnabert_tokens_per_s"]["original"] = original["dnabert_tokens_per_s"]
        save()
        # The engine in fp32 on this device is the reference for labels on more frames than
        # the original's way can afford; its own agreement with the original's way is recorded.
        log(f"fp32 engine on {args.parity_frames} parity frames")
        exact = _engine_on_frames(engine_mod.Engine(ref_models), frames, args.parity_frames)
        n = min(args.original_frames, args.parity_frames)
        report["parity_fp32_engine"] = {
            "frames": n, **parity.cosine_figures("esm2", exact.esm2[:n], original_ref.esm2[:n]),
            **parity.cosine_figures("dnabert", exact.dnabert[:n], original_ref.dnabert[:n]),
        }
        save()
    fast_models = with_dtype(ref_models, fast_dtype) if fast_dtype != torch.float32 else ref_models
    if fast_dtype != torch.float32:
        del ref_models  # free the fp32 copy before the throughput runs
    if device.type == "cuda":
        torch.cuda.empty_cache()

    report["precision_ours"] = fast_models.precision()
    fast = engine_mod.Engine(fast_models, esm2_budget=args.budget or tuning.tuned_budget(device, fast_models))
    report["esm2_token_budget"] = fast.esm2_budget
    log(f"ours (eager): per-model throughput on {args.sample_frames} frames (ESM-2 budget {fast.esm2_budget}, DNABERT-S {fast.dnabert_budget})")
    ours = bench_ours_models(fast_models, frames, args.sample_frames, fast.esm2_budget, fast.dnabert_budget, args.repeats)
    report["ours_eager"] = ours
    save()
    log(f"ours (eager): ESM-2 {ours['esm2_tokens_per_s']:,.0f} tokens/s, DNABERT-S {ours['dnabert_tokens_per_s']:,.0f} tokens/s")

    report["compiled"] = {"esm2": False, "dnabert": False}
    compile_on = args.compile == "on" or (args.compile == "auto" and device.type == "cuda")
    if compile_on:
        from ..compiled import enable_compiled_dnabert, enable_compiled_esm2

        try:
            began = time.perf_counter()
            enable_compiled_esm2(fast_models)
            enable_compiled_dnabert(fast_models)
            compiled = bench_ours_models(fast_models, frames, args.sample_frames, fast.esm2_budget, fast.dnabert_budget, args.repeats)
            compiled["compile_and_warmup_seconds"] = time.perf_counter() - began - sum(compiled["esm2_seconds"])
            report["ours_compiled"] = compiled
            log(f"ours (compiled): ESM-2 {compiled['esm2_tokens_per_s']:,.0f} tokens/s, DNABERT-S {compiled['dnabert_tokens_per_s']:,.0f} tokens/s")
            # The engine's end-to-end run below uses what serve uses: compiled ESM-2 when it
            # wins, DNABERT-S eager (its compiled form is measured here, but lost ~12 s per
            # e2e shard on the H200; see bench/README.md).
            if compiled["esm2_tokens_per_s"] > ours["esm2_tokens_per_s"]:
                ours = {**ours, "esm2_tokens_per_s": compiled["esm2_tokens_per_s"], "esm2_seconds": compiled["esm2_seconds"]}
                report["compiled"]["esm2"] = True
            else:
                fast_models.esm2_packed_forward = None
            fast_models.dnabert_padded_embed = None
        except Exception as exc:  # a compile failure must not cost the rest of the run
            report["compile_error"] = f"{type(exc).__name__}: {exc}"[:2000]
            log(f"compile failed, staying eager: {report['compile_error'][:300]}")
            fast_models.esm2_packed_forward = fast_models.dnabert_padded_embed = None

    if args.tune:
        # a smaller sample and fewer repeats: five budgets must fit in the benchmark's time
        report["tune"] = tune(fast_models, frames, min(args.sample_frames, 2048), fast.dnabert_budget, 2)
        fast.esm2_budget = report["tune"]["best"]
        ours = bench_ours_models(fast_models, frames, args.sample_frames, fast.esm2_budget, fast.dnabert_budget, args.repeats)
        report["esm2_token_budget"] = fast.esm2_budget

    report["ours"] = ours
    report["esm2_tokens_per_s"]["ours"] = ours["esm2_tokens_per_s"]
    report["dnabert_tokens_per_s"]["ours"] = ours["dnabert_tokens_per_s"]
    save()

    if "original" not in skip:
        fast_out = _engine_on_frames(fast, frames, args.parity_frames)
        report["parity"] = parity.parity_report(fast_out, exact, original_ref, frames.frame_ids[:args.parity_frames], device)
        save()

    if "fp8" not in skip:
        reason = None if args.fp8_emulate else fp8.fp8_unsupported_reason(device)
        if reason is not None:
            report["fp8"] = {"skipped": reason}
            log(f"fp8 not measured: {reason}")
        else:
            report["fp8"] = bench_fp8(fast_models, fast, frames, args, compile_on, exact, original_ref)
            report["esm2_tokens_per_s"]["ours_fp8"] = report["fp8"]["esm2_tokens_per_s"]
            report["fp8_vs_ours"] = report["fp8"]["esm2_tokens_per_s"] / ours["esm2_tokens_per_s"]
        save()
        if device.type == "cuda":
            torch.cuda.empty_cache()

    if "e2e" not in skip:
        with tempfile.TemporaryDirectory() as tmp:
            path = replicate_shard(frames, args.e2e_frames, Path(tmp) / "frames-e2e.arrow")
            log(f"end to end: {args.e2e_frames} frames")
            e2e = bench_end_to_end(fast, path, monitor)
        report["end_to_end"] = e2e
        report["end_to_end_frames_per_s"] = e2e["frames_per_s"]
        report["gpu_busy_fraction"] = e2e["gpu_busy_fraction"]
        report["peak_memory_gib"] = e2e["peak_memory_gib"]
        esm_alone_frames_per_s = ours["esm2_tokens_per_s"] / ours["esm2_tokens_per_frame"]
        report["end_to_end_vs_esm2_alone"] = e2e["frames_per_s"] / esm_alone_frames_per_s
        save()

    if "hf" not in skip:
        del fast_models, fast
        if device.type == "cuda":
            torch.cuda.empty_cache()
        log(f"transformers bf16 SDPA, sorted 64k-token batches, {args.sample_frames} frames")
        try:
            hf = bench_hf(args.size, device, frames, args.sample_frames, args.repeats)
            report["hf_bf16"] = hf
            report["esm2_tokens_per_s"]["hf_bf16"] = hf.get("esm2_tokens_per_s")
            report["dnabert_tokens_per_s"]["hf_bf16"] = hf.get("dnabert_tokens_per_s")
        except Exception as exc:  # the baseline's API may drift between transformers versions
            report["hf_error"] = f"{type(exc).__name__}: {exc}"[:2000]
            log(f"transformers baseline failed: {report['hf_error'][:300]}")

    save()
    print(table(report))
    log(f"wrote {out}")
    return 0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
