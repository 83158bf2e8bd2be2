"""Which precision of which model moves labels: full-size random-weight models on the
benchmark frames, every embedding computed in several precisions, every combination
scored by two classifiers (synthetic.py's random-direction calibration, the worst case,
and proxy_classifier's trained stand-in), agreement measured on held-out frames.

    PYTHONPATH=gpu-runtime python3 gpu-runtime/scripts/precision_study.py --device cuda:0 --out study.json

Precisions:
  fp32   weights and activations fp32, TF32 off (the original's way; the reference)
  bf16   weights and activations bf16 (the engine's fast path)
  amp    fp32 weights under bf16 autocast: bf16 matmuls and attention, fp32 residual
         stream and LayerNorms (ESM-2 then takes the exact padded attention fallback)
  tf32   fp32 weights and activations, TF32 matmuls (DNABERT-S only)
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from virnucpro_runtime import models_api, packing, shards, synthetic, tokenizers  # noqa: E402
from virnucpro_runtime.measure import bench, parity, proxy_classifier  # noqa: E402
from virnucpro_runtime.models.classifier import MLPClassifier  # noqa: E402


def precision(kind: str, device: torch.device):
    if kind == "amp":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return models_api.tf32_matmuls() if kind == "tf32" else contextlib.nullcontext()


@torch.inference_mode()
def esm2_embeddings(model, tokens: tokenizers.TokenizedSet, budget: int, device: torch.device) -> np.ndarray:
    from virnucpro_runtime.models.esm2 import mean_residues_packed

    out = torch.empty(len(tokens), model.cfg.embed_dim, dtype=torch.float32, device=device)
    for rows in packing.plan_packed(tokens.lengths, budget):
        b = packing.assemble_packed(tokens, rows)
        cu = b.cu_seqlens.to(device)
        hidden = model.forward_packed(b.tokens.to(device), cu, b.max_seqlen)
        out.index_copy_(0, b.rows.to(device), mean_residues_packed(hidden, cu, max_seqlen=b.max_seqlen).float())
    return out.cpu().numpy()


@torch.inference_mode()
def dnabert_embeddings(model, tokens: tokenizers.TokenizedSet, pad_id: int, budget: int, device: torch.device) -> np.ndarray:
    out = torch.empty(len(tokens), model.cfg.hidden_size, dtype=torch.float32, device=device)
    for rows in packing.plan_padded(tokens.lengths, budget):
        b = packing.assemble_padded(tokens, rows, pad_id)
        out.index_copy_(0, b.rows.to(device), model.embed(b.input_ids.to(device), b.lengths.to(device)).float())
    return out.cpu().numpy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--size", choices=("full", "tiny"), default="full")
    parser.add_argument("--frames", type=int, default=4096)
    parser.add_argument("--budget", type=int, default=32768)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    device = torch.device(args.device)
    report: dict = {"gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "torch": torch.__version__, "commit": bench.git_commit(),
                    "frames": args.frames, "size": args.size, "embeddings": {}, "combinations": {}}

    def save():
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    shard = shards.read_frames(bench.REPO / "bench/data/frames_500bp.arrow")
    ids, proteins, nucleotides = shard.frame_ids[:args.frames], shard.proteins[:args.frames], shard.nucleotides[:args.frames]
    ref_models = bench.build_models(args.size, device)
    bf16_models = bench.with_dtype(ref_models, torch.bfloat16)
    esm_tokens = tokenizers.tokenize_proteins(proteins)
    dna_tokens = ref_models.dna_tokenizer.tokenize(nucleotides)
    pad = ref_models.dnabert_pad_id

    esm, dna, seconds = {}, {}, {}
    for kind, model in (("fp32", ref_models.esm2), ("bf16", bf16_models.esm2), ("amp", ref_models.esm2)):
        with precision(kind, device):
            bench._sync(device)
            began = time.perf_counter()
            esm[kind] = esm2_embeddings(model, esm_tokens, args.budget, device)
            seconds[f"esm2_{kind}"] = time.perf_counter() - began
        bench.log(f"ESM-2 {kind}: {seconds[f'esm2_{kind}']:.1f} s")
    for kind, model in (("fp32", ref_models.dnabert), ("bf16", bf16_models.dnabert), ("amp", ref_models.dnabert), ("tf32", ref_models.dnabert)):
        with precision(kind, device):
            dnabert_embeddings(model, dna_tokens, pad, 4 * args.budget, device)  # warm-up for the timing
            bench._sync(device)
            began = time.perf_counter()
            dna[kind] = dnabert_embeddings(model, dna_tokens, pad, 4 * args.budget, device)
            seconds[f"dnabert_{kind}"] = time.perf_counter() - began
        bench.log(f"DNABERT-S {kind}: {seconds[f'dnabert_{kind}']:.2f} s")
    report["seconds"] = seconds
    for kind in esm:
        c = parity.cosines(esm[kind], esm["fp32"])
        report["embeddings"][f"esm2_{kind}"] = {"cos_min": float(c.min()), "cos_median": float(np.median(c)), "one_minus_cos_mean": float((1 - c).mean())}
    for kind in dna:
        c = parity.cosines(dna[kind], dna["fp32"])
        report["embeddings"][f"dnabert_{kind}"] = {"cos_min": float(c.min()), "cos_median": float(np.median(c)), "one_minus_cos_mean": float((1 - c).mean())}
    save()

    labels = proxy_classifier.bench_frame_labels(ids)
    held_out = proxy_classifier.held_out_mask(ids)
    features = {(e, d): torch.from_numpy(np.concatenate([dna[d], esm[e]], 1)).to(device) for e in esm for d in dna}
    reference = features[("fp32", "fp32")]
    train = torch.from_numpy(~held_out).to(device)
    classifiers = {
        "random_direction": synthetic.calibrate_(synthetic.randomize_(MLPClassifier(), 5).to(device).eval(), reference[train]),
        "trained": proxy_classifier.train_classifier(reference[train], torch.from_numpy(labels).to(device)[train]),
    }
    test = torch.from_numpy(held_out).to(device)
    for name, classifier in classifiers.items():
        ref_scores = proxy_classifier.virus_scores(classifier, reference[test])
        report[f"classifier_{name}"] = {
            "accuracy_vs_origin_held_out": float(((ref_scores > 0.5) == labels[held_out]).mean()),
            "reference_scores": proxy_classifier.score_spread(ref_scores),
        }
        for (e, d), x in features.items():
            scores = proxy_classifier.virus_scores(classifier, x[test])
            diff = np.abs(scores.astype(np.float64) - ref_scores)
            report["combinations"][f"{name}/esm2_{e}+dnabert_{d}"] = {
                "label_agreement": float(((scores > 0.5) == (ref_scores > 0.5)).mean()),
                "flips": int(((scores > 0.5) != (ref_scores > 0.5)).sum()),
                "score_diff_max": float(diff.max()),
                "score_diff_p99": float(np.quantile(diff, 0.99)),
            }
    report["held_out_frames"] = int(held_out.sum())
    save()
    for key, value in itertools.chain(report["embeddings"].items(), report["combinations"].items()):
        print(key, json.dumps(value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
