"""The original's way of computing the same numbers, as the yardstick for the fast path:
fp32, ESM-2 in fair-esm-style padded batches (length-sorted, at most 2048 padded tokens,
mean over residue positions 1..len), DNABERT-S one sequence at a time (mean over all
tokens). Used by the parity tests and by ``bench`` to time the original's way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import engine, packing, tokenizers
from ..models_api import LoadedModels

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
    """The classifier's softmax scores [N, 2] on these embeddings, as the engine scores."""
    dnabert_t, esm2_t = (torch.from_numpy(a).to(models.device) for a in (dnabert, esm2))
    return engine.classify(models.classifier, dnabert_t, esm2_t).cpu().numpy()


def run_reference(models: LoadedModels, nucleotides: list[str], proteins: list[str]) -> ReferenceOutput:
    dnabert = dnabert_one_at_a_time(models, nucleotides)
    esm2 = esm2_padded_means(models, proteins)
    return ReferenceOutput(dnabert=dnabert, esm2=esm2, scores=classify(models, dnabert, esm2))
