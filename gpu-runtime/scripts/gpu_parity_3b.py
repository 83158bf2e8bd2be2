"""ESM-2 3B-size parity on a GPU: our model against fair-esm 2.0.0 on the same random weights.

Run on the GPU machine from the repository root, with torch, numpy, tokenizers and
fair-esm==2.0.0 installed (gpu-runtime/requirements*.txt):

    PYTHONPATH=gpu-runtime python gpu-runtime/scripts/gpu_parity_3b.py --device cuda:0 --out parity_3b.json

Builds the full 36 x 2560 ESM-2 with seeded random weights (fp32; about 11 GiB per copy,
two copies: ours and fair-esm's; ~25 GiB of host memory while building), embeds 64
realistic proteins (natural amino-acid composition; 85% at the frame lengths of 500 and
300 bp reads, 166 and 100 residues, the rest shorter) and reports, as JSON on stdout and
in --out:
- fp32: our padded and packed paths vs fair-esm's `representations[36]` (max relative
  error = max|ours - ref| / max|ref| per protein, then the worst) and the residue means
  (max relative error, cosine min/median);
- bf16: our packed path (varlen attention when torch has it) vs the fp32 fair-esm means
  (cosine min/median), and which attention kernel ran.
TF32 is switched off so that "fp32" means fp32 on both sides. Runs on torch >= 2.10 and
Python >= 3.10. `--size small --device cpu` runs the same comparisons on a 2-layer
64-wide model, to check the script itself on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from virnucpro_runtime.models import esm2 as esm2_module
from virnucpro_runtime.models.esm2 import ESM2, ESM2_3B, ESM2Config, mean_residues_packed
from virnucpro_runtime.synthetic import esm2_fair_esm_state, randomize_
from virnucpro_runtime.packing import assemble_packed, assemble_padded
from virnucpro_runtime.tokenizers import ESM_PAD, tokenize_proteins

SIZES = {"3b": ESM2_3B, "small": ESM2Config(num_layers=2, embed_dim=64, num_heads=4)}

# Amino-acid frequencies of typical proteins (UniProt), so the composition is realistic.
AMINO_ACIDS = "LAGVESIKRDTPNQFYMHCW"
FREQUENCIES = np.array([9.9, 8.3, 7.1, 6.9, 6.8, 6.6, 5.9, 5.8, 5.5, 5.5, 5.3, 4.7, 4.1, 3.9, 3.9, 2.9, 2.4, 2.3, 1.4, 1.1])


def realistic_proteins(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    # 85% full-length frames of 500 bp reads (166 aa) and 300 bp reads (100 aa), the rest shorter.
    lengths = np.where(rng.random(count) < 0.85, rng.choice([166, 100], size=count), rng.integers(20, 166, size=count))
    p = FREQUENCIES / FREQUENCIES.sum()
    return ["M" + "".join(rng.choice(list(AMINO_ACIDS), size=int(n) - 1, p=p)) for n in lengths]


def copy_into_fair_esm(ours: ESM2):
    """fair-esm's ESM2 module holding exactly our weights."""
    from esm.model.esm2 import ESM2 as FairEsm2

    cfg = ours.cfg
    fair = FairEsm2(num_layers=cfg.num_layers, embed_dim=cfg.embed_dim, attention_heads=cfg.num_heads, alphabet="ESM-1b")
    state = {k.removeprefix("encoder.sentence_encoder.").removeprefix("encoder."): v for k, v in esm2_fair_esm_state(ours).items()}
    missing, unexpected = fair.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"contact_head.regression.weight", "contact_head.regression.bias"}, (missing, unexpected)
    return fair.eval()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max())


def cosine_stats(a: torch.Tensor, b: torch.Tensor) -> dict:
    cos = torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=1).cpu().numpy()
    return {"min": float(cos.min()), "median": float(np.median(cos))}


@torch.inference_mode()
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--size", choices=sorted(SIZES), default="3b")
    parser.add_argument("--proteins", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16, help="proteins per batch")
    parser.add_argument("--out", required=True, help="JSON report path")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    started = time.perf_counter()
    ours_cpu = randomize_(ESM2(SIZES[args.size]), seed=1).eval()
    layers = ours_cpu.cfg.num_layers
    fair = copy_into_fair_esm(ours_cpu).to(device)
    ours = ours_cpu.to(device)
    del ours_cpu
    proteins = realistic_proteins(args.proteins, seed=2)
    build_s = time.perf_counter() - started

    worst = {"padded_hidden": 0.0, "packed_hidden": 0.0, "packed_mean": 0.0}
    ref_means, fp32_means, bf16_means = [], [], []
    for start in range(0, len(proteins), args.batch):
        batch = proteins[start : start + args.batch]
        tokens = tokenize_proteins(batch)
        every = np.arange(len(batch))
        padded = assemble_padded(tokens, every, ESM_PAD).input_ids.to(device)
        ref_hidden = fair(padded, repr_layers=[layers])["representations"][layers]
        ref_mean = torch.stack([ref_hidden[i, 1 : len(p) + 1].mean(0) for i, p in enumerate(batch)])
        ours_padded = ours.forward_padded(padded)
        packed_batch = assemble_packed(tokens, every)
        cu = packed_batch.cu_seqlens
        cu_t = cu.to(device)
        packed = ours.forward_packed(packed_batch.tokens.to(device), cu_t, packed_batch.max_seqlen)
        for i in range(len(batch)):
            n = int(cu[i + 1] - cu[i])
            worst["padded_hidden"] = max(worst["padded_hidden"], rel_err(ours_padded[i, :n], ref_hidden[i, :n]))
            worst["packed_hidden"] = max(worst["packed_hidden"], rel_err(packed[cu[i] : cu[i + 1]], ref_hidden[i, :n]))
        mean = mean_residues_packed(packed, cu_t)
        worst["packed_mean"] = max(worst["packed_mean"], rel_err(mean, ref_mean))
        ref_means.append(ref_mean.float())
        fp32_means.append(mean)

    del fair
    if device.type == "cuda":
        torch.cuda.empty_cache()
    ours = ours.to(torch.bfloat16)
    bf16_started = time.perf_counter()
    for start in range(0, len(proteins), args.batch):
        tokens = tokenize_proteins(proteins[start : start + args.batch])
        packed_batch = assemble_packed(tokens, np.arange(len(tokens)))
        cu_t = packed_batch.cu_seqlens.to(device)
        hidden = ours.forward_packed(packed_batch.tokens.to(device), cu_t, packed_batch.max_seqlen)
        bf16_means.append(mean_residues_packed(hidden, cu_t))
    if device.type == "cuda":
        torch.cuda.synchronize(device)

    ref_means_t, fp32_t, bf16_t = torch.cat(ref_means), torch.cat(fp32_means), torch.cat(bf16_means)
    report = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        # Kernel choice on a CPU depends on these; recorded so that an outlier can be told apart.
        "cpu_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "size": args.size,
        "proteins": len(proteins),
        "residues": int(sum(len(p) for p in proteins)),
        "fp32_vs_fair_esm": {
            "max_rel_err_padded_hidden": worst["padded_hidden"],
            "max_rel_err_packed_hidden": worst["packed_hidden"],
            "max_rel_err_packed_mean": worst["packed_mean"],
            "cosine_packed_mean": cosine_stats(fp32_t, ref_means_t),
        },
        "bf16_packed_vs_fp32_fair_esm": {
            "cosine_mean": cosine_stats(bf16_t, ref_means_t),
            "max_rel_err_mean": rel_err(bf16_t, ref_means_t),
            "attention": "varlen_attn" if esm2_module._varlen_attn is not None and device.type == "cuda" else "padded SDPA fallback",
            "seconds": time.perf_counter() - bf16_started,
        },
        "build_seconds": build_s,
    }
    text = json.dumps(report, indent=2)
    Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
