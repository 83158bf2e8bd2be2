"""The original's way of computing the same numbers, as the yardstick for the fast path:
fp32, ESM-2 in fair-esm-style padded batches (length-sorted, at most 2048 padded tokens,
mean over residue positions 1..len), DNABERT-S one sequence at a time (mean over all
tokens). Used by the parity tests and by ``bench`` to time the original's way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import packing, tokenizers
from ..models_api import LoadedModels
from .parity import cosines

FAIR_ESM_TOKS_PER_BATCH = 2048


@dataclass
class ReferenceOutput:
    dnabert: np.ndarray  # [N, 768] float32
    esm2: np.ndarray  # [N, 2560] float32
    scores: np.ndarray  # [N, 2] float32


@torch.inference_mode()
def esm2_padded_means(models: LoadedModels, proteins: list[str], toks_per_batch: int = FAIR_ESM_TOKS_PER_BATCH) -> np.ndarray:
    tokens = tokenizers.tokenize_proteins(proteins)
    out = np.empty((len(proteins), models.esm2_hidden), dtype=np.float32)
    for rows in packing.plan_padded(tokens.lengths, toks_per_batch):
        batch = packing.assemble_padded(tokens, rows, tokenizers.ESM_PAD)
        hidden = models.esm2.forward_padded(batch.input_ids.to(models.device)).float()
        for i, row in enumerate(rows):
            residues = min(int(batch.lengths[i]) - 2, tokenizers.ESM_MAX_RESIDUES)
            out[row] = hidden[i, 1:1 + residues].mean(dim=0).cpu().numpy()
    return out


@torch.inference_mode()
def dnabert_one_at_a_time(models: LoadedModels, nucleotides: list[str]) -> np.ndarray:
    out = np.empty((len(nucleotides), 768), dtype=np.float32)
    tokens = models.dna_tokenizer.tokenize(nucleotides)
    for row in range(len(tokens)):
        ids = tokens[row]
        input_ids = torch.as_tensor(ids, device=models.device)[None]
        hidden = models.dnabert(input_ids, torch.tensor([len(ids)], device=models.device)).float()
        out[row] = hidden[0].mean(dim=0).cpu().numpy()  # all tokens, [CLS] and [SEP] included
    return out


@torch.inference_mode()
def classify(models: LoadedModels, dnabert: np.ndarray, esm2: np.ndarray) -> np.ndarray:
    features = torch.from_numpy(np.concatenate([dnabert, esm2], axis=1)).to(models.device)
    return torch.softmax(models.classifier(features).float(), dim=1).cpu().numpy()


def run_reference(models: LoadedModels, nucleotides: list[str], proteins: list[str]) -> ReferenceOutput:
    dnabert = dnabert_one_at_a_time(models, nucleotides)
    esm2 = esm2_padded_means(models, proteins)
    return ReferenceOutput(dnabert=dnabert, esm2=esm2, scores=classify(models, dnabert, esm2))


def parity(fast_dnabert: np.ndarray, fast_esm2: np.ndarray, fast_scores: np.ndarray, ref: ReferenceOutput) -> dict:
    """Cosines of every embedding, virus-score differences and label agreement."""
    esm_cos, dna_cos = cosines(fast_esm2, ref.esm2), cosines(fast_dnabert, ref.dnabert)
    diff = np.abs(fast_scores[:, 1].astype(np.float64) - ref.scores[:, 1])
    same_label = (fast_scores.argmax(1) == ref.scores.argmax(1)).mean()
    virus = ref.scores[:, 1]
    return {
        "frames": int(len(diff)),
        "esm2_cosine_min": float(esm_cos.min()),
        "esm2_cosine_median": float(np.median(esm_cos)),
        "dnabert_cosine_min": float(dna_cos.min()),
        "dnabert_cosine_median": float(np.median(dna_cos)),
        "virus_score_diff_max": float(diff.max()),
        "virus_score_diff_p99": float(np.quantile(diff, 0.99)),
        "label_agreement": float(same_label),
        "reference_virus_score_quartiles": [float(q) for q in np.quantile(virus, [0.25, 0.5, 0.75])],
    }
