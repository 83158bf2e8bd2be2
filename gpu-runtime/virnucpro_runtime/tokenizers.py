"""Tokenisers of the two embedding models.

ESM-2 (fair-esm's "ESM-1b" alphabet, 33 tokens): each protein becomes
``<cls> residues <eos>``. Encoding is vectorised: all proteins of a batch are joined into
one byte string and mapped through a 256-entry lookup table, so the cost per residue is a
numpy gather, not a Python loop. Encoding is case-sensitive like fair-esm's; characters
outside the alphabet (where fair-esm raises KeyError) become ``<unk>``.

DNABERT-S: the model's own BPE ``tokenizer.json`` through the ``tokenizers`` library,
with the defaults of the original (``[CLS] ... [SEP]`` added, no truncation, no padding).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

# fair-esm Alphabet.from_architecture("ESM-1b"): prepend, standard tokens, alignment
# fillers up to a multiple of 8, then <mask>. Order defines the ids.
ESM_ALPHABET: tuple[str, ...] = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M",
    "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-",
    "<null_1>", "<mask>",
)
ESM_CLS, ESM_PAD, ESM_EOS, ESM_UNK = 0, 1, 2, 3
ESM_MASK = ESM_ALPHABET.index("<mask>")
# fair-esm's extraction default (truncation_seq_length=1022): longer proteins are cut to
# their first 1022 residues before the model sees them (1024 positions with <cls>/<eos>).
ESM_MAX_RESIDUES = 1022

_ESM_LOOKUP = np.full(256, ESM_UNK, dtype=np.int64)
for _index, _token in enumerate(ESM_ALPHABET):
    if len(_token) == 1:
        _ESM_LOOKUP[ord(_token)] = _index


def esm_encode_packed(
    proteins: Sequence[str], max_residues: int | None = ESM_MAX_RESIDUES
) -> tuple[np.ndarray, np.ndarray]:
    """Proteins -> (tokens int64 [T], cu_seqlens int32 [B+1]), no padding.

    Sequence b occupies tokens[cu_seqlens[b]:cu_seqlens[b+1]] = <cls> residues <eos>.
    Non-ASCII characters map to <unk> byte by byte (fair-esm maps each such character to
    one <unk>; proteins from our six-frame translation are ASCII, so this never differs).
    """
    if max_residues is not None:
        proteins = [p[:max_residues] for p in proteins]
    joined = "".join(proteins).encode("ascii", errors="replace")
    residue_counts = np.fromiter((len(p) for p in proteins), dtype=np.int64, count=len(proteins))
    seq_lengths = residue_counts + 2
    cu_seqlens = np.zeros(len(proteins) + 1, dtype=np.int64)
    np.cumsum(seq_lengths, out=cu_seqlens[1:])
    tokens = np.empty(int(cu_seqlens[-1]), dtype=np.int64)
    tokens[cu_seqlens[:-1]] = ESM_CLS
    tokens[cu_seqlens[1:] - 1] = ESM_EOS
    # Residue k of sequence b sits at cu_seqlens[b] + 1 + k; the joined string is the
    # same residues without the two specials per sequence, so shift each by 2*b + 1.
    residue_seq = np.repeat(np.arange(len(proteins), dtype=np.int64), residue_counts)
    residue_slots = np.arange(len(joined), dtype=np.int64) + 2 * residue_seq + 1
    tokens[residue_slots] = _ESM_LOOKUP[np.frombuffer(joined, dtype=np.uint8)]
    return tokens, cu_seqlens.astype(np.int32)


def pad_packed(tokens: np.ndarray, cu_seqlens: np.ndarray, pad_id: int) -> np.ndarray:
    """Packed token ids -> right-padded [B, L_max] array (for padded model paths)."""
    lengths = np.diff(cu_seqlens.astype(np.int64))
    batch = np.full((len(lengths), int(lengths.max(initial=0))), pad_id, dtype=np.int64)
    seq = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(len(tokens)) - np.repeat(cu_seqlens[:-1].astype(np.int64), lengths)
    batch[seq, pos] = tokens
    return batch


class DnaTokenizer:
    """DNABERT-S BPE tokenizer from a ``tokenizer.json``, with the original's defaults."""

    def __init__(self, tokenizer: Tokenizer):
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        pad = tokenizer.token_to_id("[PAD]")
        if pad is None:
            raise ValueError("DNABERT-S tokenizer has no [PAD] token")
        self.pad_id = pad
        self.vocab_size = tokenizer.get_vocab_size()

    @classmethod
    def from_file(cls, path: str | Path) -> "DnaTokenizer":
        return cls(Tokenizer.from_file(str(path)))

    def encode(self, sequences: Sequence[str]) -> list[np.ndarray]:
        """DNA strings -> one int64 id array per string, [CLS] ... [SEP] included."""
        encodings = self._tokenizer.encode_batch(list(sequences), add_special_tokens=True)
        return [np.asarray(e.ids, dtype=np.int64) for e in encodings]

    def encode_padded(self, sequences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """DNA strings -> (ids [B, L_max] right-padded with [PAD], lengths int64 [B])."""
        ids = self.encode(sequences)
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        batch = np.full((len(ids), int(lengths.max(initial=0))), self.pad_id, dtype=np.int64)
        for row, seq_ids in enumerate(ids):
            batch[row, : len(seq_ids)] = seq_ids
        return batch, lengths
