"""Residual add + LayerNorm in one pass: ``x + delta`` and ``LayerNorm(x + delta)``.

ESM-2 runs this twice per layer on [T, 2560] bf16. Inductor fuses it too, but in its
deterministic mode (compiled.py says why that mode is on) it emits a looped reduction that
reads each row twice at a default configuration: on the H100 that kernel took 247 ms of a
3.09 s pass, this one 152 ms (bench/results/studies/...-esm2-triton-layer-norm.json). Here
one program holds a whole row in registers, with one fixed configuration, so the order of
the additions, and with it every bit of the output, is the same on every run.

Not in compiled.py yet: profile_esm2.py's ``triton_layer_norm`` variant runs it, and the
bench of that layer (H100, 104.5k tokens/s against 101.4k) kept the cosine (min 0.999973)
but changed 1 label of 499 held out with a stand-in trained on 525 frames, where the path it
would replace showed 0 of 2,071 with one trained on 2,025. Same-size label tests of both
decide (bench/README.md).

On a CPU (and wherever Triton is missing) the same two results come from torch's own ops.
"""
from __future__ import annotations

import torch
from torch import nn

try:
    import triton
    import triton.language as tl
except ImportError:  # the CPU wheels of torch come without Triton
    triton = None

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


def uses_triton(x: torch.Tensor) -> bool:
    return triton is not None and x.is_cuda


def add_layer_norm(x: torch.Tensor, delta: torch.Tensor, norm: nn.LayerNorm, kernel: bool | None = None):
    """x, delta [T, D] -> (x + delta, norm(x + delta)). ``kernel`` forces the Triton kernel
    on or off (default: on for CUDA tensors when Triton is installed; tests run it on a CPU
    under TRITON_INTERPRET=1)."""
    if not (uses_triton(x) if kernel is None else kernel):
        x = x + delta
        return x, norm(x)
    rows, cols = x.shape
    x, delta = x.contiguous(), delta.contiguous()
    x_out, normed = torch.empty_like(x), torch.empty_like(x)
    # 8 warps for a 4096-wide block: 16 values per thread, no spills at D = 2560.
    _add_layer_norm_rows[(rows,)](x, delta, norm.weight, norm.bias, x_out, normed, cols, norm.eps,
                                  BLOCK=triton.next_power_of_2(cols), num_warps=8)
    return x_out, normed
