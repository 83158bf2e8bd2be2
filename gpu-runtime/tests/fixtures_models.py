"""Shared helpers of the model tests: comparison metric and test sequences."""

from __future__ import annotations

import numpy as np
import torch

from virnucpro_runtime.synthetic import random_dna, random_proteins

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
