"""DNABERT-S (Zhou et al. 2024; the DNABERT-2 / MosaicBERT architecture), inference only.

Post-LayerNorm BERT without position embeddings: attention scores get an ALiBi bias
``-slope_h * |i - j|``; q, k, v come from one fused `Wqkv` projection; the MLP is a gated
GELU (``gelu(a) * b`` for the two halves of one projection, then `wo`); token-type
embedding 0 is added to every token; all LayerNorms use eps 1e-12.

Runtime interface:

    model = DNABERTS(DNABERTSConfig(...))     # or weights.load_dnabert_s(path, device, dtype)
    emb = model.embed(input_ids, lengths)
        # input_ids int64 [B, L] right-padded (any pad id), lengths int64 [B] (tokens incl.
        # [CLS]/[SEP]) -> [B, 768] float32: mean over ALL real tokens incl. [CLS] and [SEP],
        # as the original (one sequence at a time, `hidden.mean(dim=0)`) computes it.

Batching is exact: padded keys are masked out of the softmax and padded rows out of the
mean. Length-sorted batches keep the padding small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DNABERTSConfig:
    """Sizes of a DNABERT-S model. `attn_dim` defaults to hidden_size; it is free only so
    the synthetic `tiny` model keeps the real 768-d output while staying cheap on a CPU."""

    vocab_size: int = 4096
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    attn_dim: int = 0
    layer_norm_eps: float = 1e-12

    def __post_init__(self):
        if self.attn_dim == 0:
            object.__setattr__(self, "attn_dim", self.hidden_size)
        if self.attn_dim % self.num_heads:
            raise ValueError(f"DNABERT-S: attention width {self.attn_dim} does not split into {self.num_heads} heads")


def alibi_slopes(num_heads: int) -> list[float]:
    """MosaicBERT's ALiBi slopes: the geometric series 2^(-8/n * (i+1)) for a power-of-two
    head count n; otherwise that series for the nearest lower power of two, then every
    other slope of the series for twice that many heads (12 heads: 2^-1..2^-8, then
    2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5)."""

    def power_of_two_series(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(num_heads).is_integer():
        return power_of_two_series(num_heads)
    lower = 2 ** math.floor(math.log2(num_heads))
    return power_of_two_series(lower) + alibi_slopes(2 * lower)[0::2][: num_heads - lower]


class DNABERTSLayer(nn.Module):
    def __init__(self, cfg: DNABERTSConfig):
        super().__init__()
        self.num_heads = cfg.num_heads
        self.intermediate_size = cfg.intermediate_size
        self.wqkv = nn.Linear(cfg.hidden_size, 3 * cfg.attn_dim)
        self.attn_out = nn.Linear(cfg.attn_dim, cfg.hidden_size)
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.gated = nn.Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)
        self.wo = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.mlp_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x [B, L, D], bias [B, H, L, L] (ALiBi + key padding) -> [B, L, D]."""
        b, length, _ = x.shape
        q, k, v = self.wqkv(x).view(b, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = self.attn_norm(x + self.attn_out(context.transpose(1, 2).reshape(b, length, -1)))
        gate, value = self.gated(x).split(self.intermediate_size, dim=-1)
        return self.mlp_norm(x + self.wo(F.gelu(gate) * value))


class DNABERTS(nn.Module):
    def __init__(self, cfg: DNABERTSConfig):
        super().__init__()
        self.cfg = cfg
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        # Only row 0 is ever used (the original passes no token types); kept as the
        # checkpoint's full table so loading stays a plain copy.
        self.token_type_embeddings = nn.Embedding(2, cfg.hidden_size)
        self.emb_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(DNABERTSLayer(cfg) for _ in range(cfg.num_layers))

    def attention_bias(self, lengths: torch.Tensor, max_len: int, dtype: torch.dtype) -> torch.Tensor:
        """[B, H, L, L]: -slope_h * |i - j| for real keys, -inf for padded keys."""
        pos = torch.arange(max_len, device=lengths.device)
        distance = (pos[None, :] - pos[:, None]).abs().float()
        # Built in float32 as MosaicBERT does, cast before it is broadcast over the batch.
        slopes = torch.tensor(alibi_slopes(self.cfg.num_heads), dtype=torch.float32, device=lengths.device)
        alibi = (-slopes[:, None, None] * distance[None]).to(dtype)
        padded_key = pos[None, :] >= lengths[:, None]
        return alibi[None].masked_fill(padded_key[:, None, None, :], float("-inf"))

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """input_ids int64 [B, L] right-padded, lengths [B] -> last hidden states [B, L, D]
        (rows past a sequence's length are unspecified)."""
        x = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        x = self.emb_norm(x)
        bias = self.attention_bias(lengths, input_ids.shape[1], x.dtype)
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def embed(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mean of the last hidden states over all real tokens ([CLS] and [SEP] included),
        summed in float32 -> [B, D] float32."""
        hidden = self(input_ids, lengths)
        real = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :] < lengths[:, None]
        sums = (hidden.float() * real[..., None]).sum(dim=1)
        return sums / lengths[:, None].float()
