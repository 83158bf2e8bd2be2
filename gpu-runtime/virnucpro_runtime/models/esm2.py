"""ESM-2 protein language model (Lin et al., Science 2023), inference only, plain PyTorch.

Numerically the model of fair-esm 2.0.0 (`esm.model.esm2.ESM2`) and of transformers'
`EsmModel`: token embedding with token-dropout rescaling, pre-LayerNorm blocks with
rotary self-attention and an erf-GELU feed-forward, final `emb_layer_norm_after`. The
language-model and contact heads are left out: we only need the last hidden states.

Runtime interface (token ids follow `virnucpro_runtime.tokenizers.ESM_ALPHABET`; every
sequence is ``<cls> residues <eos>``):

    model = ESM2(ESM2Config(...))            # or weights.load_esm2(path, device, dtype)
    hidden = model.forward_packed(tokens, cu_seqlens, max_seqlen)
        # tokens int64 [T] (sequences back to back), cu_seqlens int32 [B+1] on the model's
        # device, max_seqlen: python int -> hidden [T, D] in the model's dtype
    hidden = model.forward_padded(tokens)     # int64 [B, L], <pad>-filled -> [B, L, D]
    emb = mean_residues_packed(hidden, cu_seqlens, max_residues=1022)   # [B, D] float32

Packed attention uses `torch.nn.attention.varlen.varlen_attn` on CUDA in half precision
(torch >= 2.10); elsewhere (CPU, fp32, older torch) an exact fallback scatters the packed
tokens into a padded block and runs SDPA with a key-padding mask. Rotary angles, cos/sin
and the rotation itself are computed in float32 whatever the model dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

try:  # torch >= 2.10
    from torch.nn.attention.varlen import varlen_attn as _varlen_attn
except ImportError:  # pragma: no cover - depends on the installed torch
    _varlen_attn = None

# fair-esm trains with 15% masking of which 80% become <mask>; at inference the embeddings
# are rescaled by (1 - 0.15 * 0.8) / (1 - observed mask ratio).
_MASK_RATIO_TRAIN = 0.15 * 0.8


@dataclass(frozen=True)
class ESM2Config:
    """Sizes of an ESM-2 model. `ffn_dim` and `attn_dim` default to the published
    architecture (4 x embed_dim and embed_dim); they are free only so that the synthetic
    `tiny` model keeps the real 2560-d output while staying cheap on a CPU."""

    num_layers: int = 36
    embed_dim: int = 2560
    num_heads: int = 40
    ffn_dim: int = 0
    attn_dim: int = 0
    vocab_size: int = 33
    padding_idx: int = 1
    mask_idx: int = 32
    token_dropout: bool = True
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        if self.ffn_dim == 0:
            object.__setattr__(self, "ffn_dim", 4 * self.embed_dim)
        if self.attn_dim == 0:
            object.__setattr__(self, "attn_dim", self.embed_dim)
        if self.attn_dim % self.num_heads or (self.attn_dim // self.num_heads) % 2:
            raise ValueError(
                f"ESM-2: attention width {self.attn_dim} must split into {self.num_heads} "
                "heads of even size (rotary embeddings rotate pairs of channels)"
            )

    @property
    def head_dim(self) -> int:
        return self.attn_dim // self.num_heads


ESM2_3B = ESM2Config(num_layers=36, embed_dim=2560, num_heads=40)

# A function from q, k, v [N, H, hd] (rotary already applied) to the attention output [N, H, hd].
Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def rotary_tables(positions: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [N, 1, head_dim] in float32 for integer positions [N] (fair-esm's layout:
    the frequencies repeated twice along the channel axis)."""
    inv_freq = 1.0 / (
        10000 ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim)
    )
    angles = positions.float()[:, None] * inv_freq[None, :]
    angles = torch.cat((angles, angles), dim=-1)[:, None, :]
    return angles.cos(), angles.sin()


def _apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x32 = x.float()
    return (x32 * cos + _rotate_half(x32) * sin).to(x.dtype)


class ESM2Layer(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then x + fc2(gelu(fc1(LN(x)))).

    The block is written as three halves-and-a-kernel so that the compiled path
    (compiled.py) runs the same code around an attention call it keeps out of its graphs:
    ``attention_inputs`` -> the attention kernel -> ``attention_residual`` -> ``ffn``."""

    def __init__(self, cfg: ESM2Config):
        super().__init__()
        self.num_heads = cfg.num_heads
        self.head_dim = cfg.head_dim
        self.attn_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.qkv = nn.Linear(cfg.embed_dim, 3 * cfg.attn_dim)  # q, k, v stacked on the output axis
        self.out_proj = nn.Linear(cfg.attn_dim, cfg.embed_dim)
        self.ffn_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.fc1 = nn.Linear(cfg.embed_dim, cfg.ffn_dim)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.embed_dim)

    def attention_inputs(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """LN, fused QKV projection, rotary on q and k: x [N, D] -> q, k, v [N, H, hd]
        (v a strided view of the projection)."""
        return self.rotate_qkv(self.qkv(self.attn_norm(x)), cos, sin)

    def rotate_qkv(self, qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """The QKV projection's output [N, 3 * attn_dim] -> q, k (rotated), v [N, H, hd]."""
        q, k, v = qkv.view(qkv.shape[0], 3, self.num_heads, self.head_dim).unbind(1)
        return _apply_rotary(q, cos, sin), _apply_rotary(k, cos, sin), v

    def attention_residual(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """The attention output [N, H, hd] projected and added to the residual x [N, D]."""
        return x + self.out_proj(attended.reshape(x.shape[0], -1))

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        """The feed-forward half's output, without its residual add (the caller adds it, so
        the compiled path can move that add into the next layer's LayerNorm pass)."""
        return self.fc2(F.gelu(self.fc1(self.ffn_norm(x))))  # erf GELU, as fair-esm

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, attention: Attention):
        """x [N, D] (tokens of every sequence, flattened) -> [N, D]."""
        x = self.attention_residual(x, attention(*self.attention_inputs(x, cos, sin)))
        return x + self.ffn(x)


class ESM2(nn.Module):
    def __init__(self, cfg: ESM2Config):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.padding_idx)
        self.layers = nn.ModuleList(ESM2Layer(cfg) for _ in range(cfg.num_layers))
        self.final_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)

    def _embed(self, tokens: torch.Tensor, seq_index: torch.Tensor, num_seqs: int) -> torch.Tensor:
        """Token embeddings [N, D] with token-dropout rescaling per sequence; tokens of
        sequence -1 (padding) are zeroed, as fair-esm does."""
        x = self.embed_tokens(tokens)
        if self.cfg.token_dropout:
            is_mask = tokens == self.cfg.mask_idx
            x = x.masked_fill(is_mask[:, None], 0.0)
            real = seq_index >= 0
            safe_index = seq_index.clamp(min=0)
            # Ratios in float32 whatever the model dtype (bf16 cannot count past 256 exactly).
            counts = torch.zeros(num_seqs, device=x.device, dtype=torch.float32)
            masked = counts.index_add(0, safe_index, (is_mask & real).float())
            lengths = counts.index_add(0, safe_index, real.float())
            keep_ratio = (1 - masked / lengths).to(x.dtype)
            x = x * (1 - _MASK_RATIO_TRAIN) / keep_ratio[safe_index][:, None]
        return x * (seq_index >= 0).to(x.dtype)[:, None]

    def _run_layers(self, x, positions, attention: Attention) -> torch.Tensor:
        cos, sin = rotary_tables(positions, self.cfg.head_dim)
        for layer in self.layers:
            x = layer(x, cos, sin, attention)
        return self.final_norm(x)

    def forward_padded(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens int64 [B, L] right-padded with <pad> -> last hidden states [B, L, D]."""
        b, length = tokens.shape
        is_real = tokens != self.cfg.padding_idx
        seq_index = torch.arange(b, device=tokens.device)[:, None].expand(b, length)
        seq_index = torch.where(is_real, seq_index, -1).reshape(-1)
        positions = torch.arange(length, device=tokens.device).repeat(b)
        x = self._embed(tokens.reshape(-1), seq_index, b)
        key_mask = is_real[:, None, None, :]
        h, hd = self.cfg.num_heads, self.cfg.head_dim

        def attention(q, k, v):
            q, k, v = (t.view(b, length, h, hd).transpose(1, 2) for t in (q, k, v))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
            return out.transpose(1, 2).reshape(b * length, h, hd)

        return self._run_layers(x, positions, attention).view(b, length, -1)

    def forward_packed(self, tokens: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int) -> torch.Tensor:
        """tokens int64 [T], cu_seqlens int32 [B+1], max_seqlen = longest sequence ->
        last hidden states [T, D]. Rotary positions restart at every sequence."""
        num_seqs = cu_seqlens.numel() - 1
        seq_index, positions = packed_positions(cu_seqlens, tokens.numel())
        x = self._embed(tokens, seq_index, num_seqs)
        use_varlen = _varlen_attn is not None and x.is_cuda and x.dtype in (torch.float16, torch.bfloat16)
        if use_varlen:
            cu = cu_seqlens.to(torch.int32)

            def attention(q, k, v):
                # The kernel wants dense [T, H, hd] inputs; v is still a strided view of qkv.
                return _varlen_attn(q.contiguous(), k.contiguous(), v.contiguous(), cu, cu, max_seqlen, max_seqlen)
        else:
            attention = padded_attention_over_packed(seq_index, positions, num_seqs, max_seqlen)
        return self._run_layers(x, positions, attention)


def packed_positions(cu_seqlens: torch.Tensor, total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sequence index, position within its sequence) of every packed token, both int64 [T],
    computed on the device without a host sync."""
    starts = cu_seqlens[:-1].long()
    lengths = cu_seqlens[1:].long() - starts
    seq_index = torch.repeat_interleave(
        torch.arange(lengths.numel(), device=cu_seqlens.device), lengths, output_size=total
    )
    positions = torch.arange(total, device=cu_seqlens.device) - starts[seq_index]
    return seq_index, positions


def padded_attention_over_packed(seq_index, positions, num_seqs: int, max_seqlen: int) -> Attention:
    """Exact packed attention without a varlen kernel: scatter into [B, L_max], SDPA with a
    key-padding mask, gather back. The scatter indices are built once per forward."""
    slot = seq_index * max_seqlen + positions
    valid = torch.zeros(num_seqs * max_seqlen, dtype=torch.bool, device=slot.device)
    valid[slot] = True
    key_mask = valid.view(num_seqs, 1, 1, max_seqlen)

    def attention(q, k, v):
        h, hd = q.shape[1], q.shape[2]

        def to_padded(t):
            padded = t.new_zeros(num_seqs * max_seqlen, h, hd)
            padded[slot] = t
            return padded.view(num_seqs, max_seqlen, h, hd).transpose(1, 2)

        out = F.scaled_dot_product_attention(to_padded(q), to_padded(k), to_padded(v), attn_mask=key_mask)
        return out.transpose(1, 2).reshape(num_seqs * max_seqlen, h, hd)[slot]

    return attention


def mean_residues_packed(
    hidden: torch.Tensor, cu_seqlens: torch.Tensor, max_residues: int = 1022, max_seqlen: int | None = None
) -> torch.Tensor:
    """Per-sequence mean of the hidden states over residue positions only (not <cls>/<eos>),
    over at most the first `max_residues` residues, as fair-esm's extraction does.
    hidden [T, D], cu_seqlens int32 [B+1] -> [B, D] float32 (sums in float32).

    Deterministic on CUDA (the same batch gives bit-identical means): residues are gathered
    into a [B, width, D] block and summed along a fixed axis, instead of index_add_, whose
    atomic additions land in a different order on every run. Pass `max_seqlen` (the
    longest sequence, in tokens) to spare a device-to-host sync."""
    starts = cu_seqlens[:-1].long()
    residues = (cu_seqlens[1:].long() - starts - 2).clamp(min=0, max=max_residues)
    if max_seqlen is None:
        max_seqlen = int((cu_seqlens[1:] - cu_seqlens[:-1]).max())
    width = max(1, min(max_seqlen - 2, max_residues))
    offsets = torch.arange(width, device=hidden.device)
    index = (starts[:, None] + 1 + offsets[None, :]).clamp(max=hidden.shape[0] - 1)
    valid = offsets[None, :] < residues[:, None]
    sums = (hidden[index].float() * valid[..., None]).sum(dim=1)
    return sums / residues.clamp(min=1).float()[:, None]
