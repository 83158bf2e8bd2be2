"""Batch planning and host-side batch assembly for the fast path.

ESM-2 batches are *packed*: the token sequences of a batch are concatenated with no
padding and described by ``cu_seqlens`` (int32 prefix sums, B+1 entries), the layout of
``forward_packed``. DNABERT-S batches are *padded* ([B, L] plus lengths) because ALiBi
needs a bias that the packed attention kernels do not take; length-sorting keeps the
padding small.

Plans work on lengths only, so they are made before any tensor exists. Sequences are
sorted by length (longest first, ties by row for determinism), then cut greedily into
batches under a token budget. A single sequence longer than the budget gets a batch of
its own rather than being dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .tokenizers import TokenizedSet


def length_order(lengths: np.ndarray) -> np.ndarray:
    """Row indices sorted by length, longest first; equal lengths keep row order."""
    return np.lexsort((np.arange(len(lengths)), -np.asarray(lengths)))


def plan_packed(lengths: np.ndarray, token_budget: int) -> list[np.ndarray]:
    """Cut rows into batches whose summed length stays within ``token_budget``."""
    assert token_budget > 0
    order = length_order(lengths)
    batches: list[np.ndarray] = []
    start, used = 0, 0
    for position, row in enumerate(order):
        length = int(lengths[row])
        if position > start and used + length > token_budget:
            batches.append(order[start:position])
            start, used = position, 0
        used += length
    if start < len(order):
        batches.append(order[start:])
    return batches


def plan_padded(lengths: np.ndarray, token_budget: int) -> list[np.ndarray]:
    """Cut rows into batches whose padded size (rows x longest row) stays within the budget."""
    assert token_budget > 0
    order = length_order(lengths)
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])  # sorted longest first: the batch's first row sets its width
        rows = max(1, token_budget // max(longest, 1))
        batches.append(order[start:start + rows])
        start += rows
    return batches


@dataclass
class PackedBatch:
    """One ESM-2 batch on the host (pinned when bound for CUDA)."""

    rows: torch.Tensor  # int64 [B] shard rows, in batch order
    tokens: torch.Tensor  # int64 [T]
    cu_seqlens: torch.Tensor  # int32 [B+1]
    max_seqlen: int

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])


@dataclass
class PaddedBatch:
    """One DNABERT-S batch on the host: ids [B, L] right-padded with ``pad_id``, lengths [B]."""

    rows: torch.Tensor  # int64 [B]
    input_ids: torch.Tensor  # int64 [B, L]
    lengths: torch.Tensor  # int64 [B]

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())


def _host_tensor(array: np.ndarray, pin: bool) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.pin_memory() if pin else tensor


def assemble_packed(tokens: TokenizedSet, rows: np.ndarray, pin: bool = False) -> PackedBatch:
    lengths = tokens.lengths[rows]
    cu_seqlens = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(lengths, out=cu_seqlens[1:])
    flat = np.concatenate([tokens[r] for r in rows])
    return PackedBatch(
        rows=_host_tensor(rows.astype(np.int64), pin),
        tokens=_host_tensor(flat, pin),
        cu_seqlens=_host_tensor(cu_seqlens, pin),
        max_seqlen=int(lengths.max()),
    )


def assemble_padded(tokens: TokenizedSet, rows: np.ndarray, pad_id: int, pin: bool = False) -> PaddedBatch:
    lengths = tokens.lengths[rows]
    ids = np.full((len(rows), int(lengths.max())), pad_id, dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : lengths[i]] = tokens[r]
    return PaddedBatch(
        rows=_host_tensor(rows.astype(np.int64), pin),
        input_ids=_host_tensor(ids, pin),
        lengths=_host_tensor(lengths.astype(np.int64), pin),
    )
