"""Tokenisers of the two embedding models: strings in, a ``TokenizedSet`` out (the one
form that batch planning and assembly, packing.py, take).

ESM-2 (fair-esm's "ESM-1b" alphabet, 33 tokens): each protein becomes
``<cls> residues <eos>``. Encoding is vectorised: all proteins of a batch are joined into
one byte string and mapped through a 256-entry lookup table, so the cost per residue is a
numpy gather, not a Python loop. Encoding is case-sensitive like fair-esm's; characters
outside the alphabet (where fair-esm raises KeyError) become ``<unk>``.

DNABERT-S: the model's own BPE ``tokenizer.json`` through the ``tokenizers`` library,
with the defaults of the original (``[CLS] ... [SEP]`` added, no truncation, no padding).
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class TokenizedSet:
    """Token ids of N sequences stored flat: sequence i is ``flat[offsets[i]:offsets[i+1]]``."""

    flat: np.ndarray  # int64
    offsets: np.ndarray  # int64, N+1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i]:self.offsets[i + 1]]

    @staticmethod
    def from_lists(sequences: list[list[int]] | list[np.ndarray]) -> "TokenizedSet":
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if sequences else np.zeros(0, np.int64)
        return TokenizedSet(flat=flat, offsets=offsets)


def tokenize_proteins(proteins: Sequence[str], max_residues: int | None = ESM_MAX_RESIDUES) -> TokenizedSet:
    """Proteins -> their ESM-2 tokens, ``<cls> residues <eos>`` each, residues cut to the
    first ``max_residues`` (None: no cut).

    Non-ASCII characters map to <unk> byte by byte (fair-esm maps each such character to
    one <unk>; proteins from our six-frame translation are ASCII, so this never differs).
    """
    if max_residues is not None:
        proteins = [p[:max_residues] for p in proteins]
    joined = "".join(proteins).encode("ascii", errors="replace")
    residue_counts = np.fromiter((len(p) for p in proteins), dtype=np.int64, count=len(proteins))
    offsets = np.zeros(len(proteins) + 1, dtype=np.int64)
    np.cumsum(residue_counts + 2, out=offsets[1:])
    tokens = np.empty(int(offsets[-1]), dtype=np.int64)
    tokens[offsets[:-1]] = ESM_CLS
    tokens[offsets[1:] - 1] = ESM_EOS
    # Residue k of sequence b sits at offsets[b] + 1 + k; the joined string is the same
    # residues without the two specials per sequence, so shift each by 2*b + 1.
    residue_seq = np.repeat(np.arange(len(proteins), dtype=np.int64), residue_counts)
    residue_slots = np.arange(len(joined), dtype=np.int64) + 2 * residue_seq + 1
    tokens[residue_slots] = _ESM_LOOKUP[np.frombuffer(joined, dtype=np.uint8)]
    return TokenizedSet(flat=tokens, offsets=offsets)


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

    def tokenize(self, sequences: Sequence[str]) -> TokenizedSet:
        """DNA strings -> their token ids, [CLS] ... [SEP] included."""
        encodings = self._tokenizer.encode_batch(list(sequences), add_special_tokens=True)
        return TokenizedSet.from_lists([e.ids for e in encodings])
