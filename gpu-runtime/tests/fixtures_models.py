"""Shared helpers of the model tests: comparison metric, test sequences, whole-set batches."""

from __future__ import annotations

import numpy as np
import torch

from virnucpro_runtime import packing
from virnucpro_runtime.synthetic import random_dna, random_proteins
from virnucpro_runtime.tokenizers import ESM_MAX_RESIDUES, TokenizedSet, tokenize_proteins

# Residue counts that cover: a single residue, short and typical frames (100 aa for
# 300 bp reads, 166 aa for 500 bp), and one beyond fair-esm's 1022-residue truncation.
PROTEIN_LENGTHS = [1, 7, 33, 100, 166, 1100]


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """max |ours - reference| / max |reference| (a scale-free max error; element-wise
    ratios are meaningless for entries near zero)."""
    ours, reference = ours.double(), reference.double()
    return float((ours - reference).abs().max() / reference.abs().max())


def proteins_of_lengths(lengths, seed: int = 11) -> list[str]:
    rng = np.random.default_rng(seed)
    return [random_proteins(rng, 1, n, n)[0] for n in lengths]


def dna_of_lengths(lengths, seed: int = 12) -> list[str]:
    rng = np.random.default_rng(seed)
    return [random_dna(rng, 1, n, n)[0] for n in lengths]


def packed_proteins(proteins: list[str], max_residues: int | None = ESM_MAX_RESIDUES) -> packing.PackedBatch:
    """All of ``proteins`` as one packed ESM-2 batch, in input order."""
    tokens = tokenize_proteins(proteins, max_residues)
    return packing.assemble_packed(tokens, np.arange(len(tokens)))


def padded(tokens: TokenizedSet, pad_id: int) -> packing.PaddedBatch:
    """All of ``tokens`` as one right-padded batch, in input order."""
    return packing.assemble_padded(tokens, np.arange(len(tokens)), pad_id)
