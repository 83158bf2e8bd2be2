"""The two Triton kernels of the bf16 ESM-2 layer (compiled.py): residual add + LayerNorm,
and rotary embedding applied in place to the QKV projection's output.

With them and cuBLAS (linears with bias, and fc1's GELU, in the matmul epilogues) a layer is
seven kernels and no Inductor graph. Both kernels run one fixed configuration, so the order
of every addition, and with it every bit of the output, is the same on every run and every
GPU of a model; nothing is tuned on the device.

``add_layer_norm``: ``x + delta`` and ``LayerNorm(x + delta)`` in one pass, one program per
row holding the row in registers. Inductor fuses the two as well, but in its deterministic
mode (compiled.py says why that mode is on) it emits a looped reduction that reads each row
twice: on the H100 that kernel took 247 ms of a 3.09 s pass, this one 152 ms
(bench/results/studies/...-esm2-triton-layer-norm.json).

``rotary_in_place``: q's and k's heads rotated where the projection wrote them, so q, k and
v reach the attention kernel as strided views of one buffer. Inductor's rotary read the
projection and wrote q and k anew, and v needed a copy of its own to be dense.

On a CPU (and wherever Triton is missing) the same results come from torch's own ops.
"""
from __future__ import annotations

import os

import torch
from torch import nn

try:
    import triton
    import triton.language as tl
except ImportError:  # the CPU wheels of torch come without Triton
    triton = None

# The kernels' machine code, and with it their rounding, is the Triton compiler's: its version
# belongs to the arithmetic the runtime reports (compiled.py).
TRITON_VERSION = triton.__version__ if triton is not None else None

if triton is not None:

    @triton.jit
    def _add_layer_norm_rows(x_ptr, delta_ptr, weight_ptr, bias_ptr, x_out_ptr, normed_ptr, n_cols, eps,
                             BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64) * n_cols
        cols = tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(x_ptr + row + cols, mask=mask, other=0.0).to(tl.float32)
        delta = tl.load(delta_ptr + row + cols, mask=mask, other=0.0).to(tl.float32)
        # The residual stream is stored in the model's dtype and normalised from there, as
        # the eager layer does.
        summed = (x + delta).to(x_out_ptr.dtype.element_ty)
        tl.store(x_out_ptr + row + cols, summed, mask=mask)
        summed = summed.to(tl.float32)
        mean = tl.sum(summed, axis=0) / n_cols
        centred = tl.where(mask, summed - mean, 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=0) / n_cols + eps)
        weight = tl.load(weight_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        bias = tl.load(bias_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(normed_ptr + row + cols, (centred * rstd * weight + bias).to(normed_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _rotate_heads(qkv_ptr, cos_ptr, sin_ptr, row_stride, n_heads, half,
                      HEADS: tl.constexpr, HALF: tl.constexpr):
        # Program (token, block of HEADS heads among q's and k's 2 * H, which lie first in
        # the row). x1, x2: each head's two halves, read once into the same layout, so each
        # thread writes back only values it read itself (in place without a race).
        token = tl.program_id(0).to(tl.int64)
        heads = tl.program_id(1) * HEADS + tl.arange(0, HEADS)
        cols = tl.arange(0, HALF)
        mask = (heads[:, None] < n_heads) & (cols[None, :] < half)
        first = qkv_ptr + token * row_stride + heads[:, None] * (2 * half) + cols[None, :]
        x1 = tl.load(first, mask=mask, other=0.0).to(tl.float32)
        x2 = tl.load(first + half, mask=mask, other=0.0).to(tl.float32)
        # fair-esm's tables repeat each frequency in both halves of a head: the first half's
        # entries serve both.
        table = token * (2 * half) + cols
        cos = tl.load(cos_ptr + table, mask=cols < half, other=0.0)[None, :]
        sin = tl.load(sin_ptr + table, mask=cols < half, other=0.0)[None, :]
        tl.store(first, (x1 * cos - x2 * sin).to(qkv_ptr.dtype.element_ty), mask=mask)
        tl.store(first + half, (x2 * cos + x1 * sin).to(qkv_ptr.dtype.element_ty), mask=mask)


# Triton's interpreter (the tests' CPU runs) reads TRITON_INTERPRET at import, as this does.
_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


def uses_triton(x: torch.Tensor) -> bool:
    """CUDA tensors, or any under Triton's interpreter."""
    return triton is not None and (x.is_cuda or _INTERPRETED)


def add_layer_norm(x: torch.Tensor, delta: torch.Tensor, norm: nn.LayerNorm):
    """x, delta [T, D] -> (x + delta, norm(x + delta))."""
    if not uses_triton(x):
        x = x + delta
        return x, norm(x)
    rows, cols = x.shape
    x, delta = x.contiguous(), delta.contiguous()
    x_out, normed = torch.empty_like(x), torch.empty_like(x)
    # 8 warps for a 4096-wide block: 16 values per thread, no spills at D = 2560.
    _add_layer_norm_rows[(rows,)](x, delta, norm.weight, norm.bias, x_out, normed, cols, norm.eps,
                                  BLOCK=triton.next_power_of_2(cols), num_warps=8)
    return x_out, normed


# Heads per program: 16 heads of 64 channels, 1,024 values; 5 programs per token at ESM-2 3B.
_HEADS_PER_PROGRAM = 16


def rotary_in_place(layer, qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """``layer.rotate_qkv``'s result (q, k rotated; v; each [T, H, hd]) as views of ``qkv``
    [T, 3 * H * hd], whose q and k parts are overwritten. ``cos``, ``sin``: rotary_tables'
    [T, 1, hd] float32. Without Triton, torch's ops (not in place)."""
    if not uses_triton(qkv):
        return layer.rotate_qkv(qkv, cos, sin)
    tokens = qkv.shape[0]
    heads, head_dim = layer.num_heads, layer.head_dim
    assert qkv.stride(1) == 1 and cos.is_contiguous() and sin.is_contiguous() and head_dim % 2 == 0
    grid = (tokens, triton.cdiv(2 * heads, _HEADS_PER_PROGRAM))
    _rotate_heads[grid](qkv, cos, sin, qkv.stride(0), 2 * heads, head_dim // 2,
                        HEADS=_HEADS_PER_PROGRAM, HALF=triton.next_power_of_2(head_dim // 2), num_warps=4)
    return qkv.view(tokens, 3, heads, head_dim).unbind(1)
