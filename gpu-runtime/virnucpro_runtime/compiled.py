"""The models under ``torch.compile`` (CUDA; ``serve`` turns it on unless
VIRNUCPRO_COMPILE=0, ``bench`` measures with and without).

ESM-2: eager, every layer is ~15 kernels, most of them element-wise passes over [T, 2560]
(LayerNorms, bias adds, rotary, GELU, residual adds). Inductor fuses those into the
matmul epilogues and a few pointwise kernels; the matmuls stay cuBLAS and attention stays
``varlen_attn``. One compiled function serves all 36 layers (the layer's parameters are
inputs, not constants) and every packed size (``dynamic=True``: no recompile per batch).

The math is ``ESM2Layer.forward`` itself, called with the varlen attention, so the
compiled path computes exactly what ``ESM2.forward_packed`` does.
"""
from __future__ import annotations

import torch

from .models.esm2 import ESM2, packed_positions, rotary_tables

try:
    from torch.nn.attention.varlen import varlen_attn
except ImportError:  # pragma: no cover - torch < 2.10
    varlen_attn = None


def _layer_step(layer, x, cos, sin, cu_seqlens, max_seqlen):
    def attention(q, k, v):
        return varlen_attn(q.contiguous(), k.contiguous(), v.contiguous(), cu_seqlens, cu_seqlens, max_seqlen, max_seqlen)

    return layer(x, cos, sin, attention)


class CompiledESM2Packed:
    """Callable with ``ESM2.forward_packed``'s signature."""

    def __init__(self, esm2: ESM2):
        if varlen_attn is None:
            raise RuntimeError("the compiled ESM-2 path needs torch.nn.attention.varlen (torch >= 2.10)")
        self.esm2 = esm2
        self._step = torch.compile(_layer_step, dynamic=True)

    def __call__(self, tokens: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int) -> torch.Tensor:
        model = self.esm2
        seq_index, positions = packed_positions(cu_seqlens, tokens.numel())
        x = model._embed(tokens, seq_index, cu_seqlens.numel() - 1)
        cos, sin = rotary_tables(positions, model.cfg.head_dim)
        cu = cu_seqlens.to(torch.int32)
        for layer in model.layers:
            x = self._step(layer, x, cos, sin, cu, max_seqlen)
        return model.final_norm(x)


def enable_compiled_esm2(models) -> None:
    """Route ``models``' packed ESM-2 batches through the compiled layers."""
    models.esm2_packed_forward = CompiledESM2Packed(models.esm2)


def enable_compiled_dnabert(models) -> None:
    """DNABERT-S's padded embed under torch.compile: the gated GELU, LayerNorms, bias and
    residual adds fuse; one graph for every batch shape (``dynamic=True``)."""
    models.dnabert_padded_embed = torch.compile(models.dnabert.embed, dynamic=True)
