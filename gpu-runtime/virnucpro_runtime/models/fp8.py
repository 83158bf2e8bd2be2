"""ESM-2's linear layers in FP8 (``--precision fp8``, opt-in): float8 e4m3 operands with
per-row scales, fp32 accumulation, bf16 out.

    quantize_esm2_linears_(esm2)                  # after loading, on an FP8-capable GPU
    quantize_esm2_linears_(esm2, emulate=True)    # anywhere: tests and bench only

Four matmuls per layer (the fused QKV, the attention output projection, both FFN matmuls)
are ~95% of ESM-2's FLOPs, and an H100/H200 runs e4m3 matmuls at about twice its bf16 rate.
Everything else stays as it is: LayerNorm, rotary, attention and softmax, GELU and the
residual stream in bf16 (fp32 inside the kernels that need it).

Scales: one per output row of a weight (amax/448, once at load) and one per token of an
activation (amax/448, at run time). One scale per tensor would let a single large
activation flush the small ones of every other token to zero; per token, each row uses the
whole e4m3 range. ``torch._scaled_mm`` multiplies both scales back in its epilogue, after
the fp32 accumulation, and adds the bias there too.

The activation quantisation is plain PyTorch so that under compiled.py's ``torch.compile``
it lands in the same graph as the LayerNorm or GELU before it, and Inductor fuses the amax,
the division and the cast into that kernel instead of another pass over [T, K].

The emulation computes the same quantised operands (the same functions), dequantises them
and multiplies in fp32: only the order of the additions differs from the GPU's. It is how
the CPU tests check shapes and scales; ``predict`` never uses it (fp8 without FP8 hardware
is an error, ``require_fp8_matmuls``).
"""
from __future__ import annotations

import torch
from torch import nn

E4M3 = torch.float8_e4m3fn
E4M3_MAX = 448.0  # the largest finite float8_e4m3fn (it has no infinity)
# A row of zeros gets this scale instead of 0, so the division stays finite (0 / tiny = 0).
MIN_SCALE = 1e-12


class Fp8Unavailable(Exception):
    """FP8 was asked for on a device without FP8 matmuls (serve answers ``bad_request``)."""


def fp8_unsupported_reason(device: torch.device) -> str | None:
    """Why ``device`` cannot run ``torch._scaled_mm`` in e4m3, or None when it can.
    FP8 tensor cores start at compute capability 8.9 (Ada; Hopper is 9.0)."""
    if device.type != "cuda":
        return f"FP8 matmuls need an NVIDIA GPU of compute capability >= 8.9 (Ada, H100, H200); the device is {device}"
    major, minor = torch.cuda.get_device_capability(device)
    if (major, minor) < (8, 9):
        name = torch.cuda.get_device_name(device)
        return f"FP8 matmuls need compute capability >= 8.9 (Ada, H100, H200); {device} is {name}, capability {major}.{minor}"
    return None


def require_fp8_matmuls(device: torch.device) -> None:
    """Raise Fp8Unavailable, naming the GPU and its capability, unless FP8 matmuls run here.
    On a capable GPU one tiny rowwise-scaled matmul is tried too, so a torch build without
    them fails here, at load, with its own message, not inside the first shard."""
    reason = fp8_unsupported_reason(device)
    if reason is not None:
        raise Fp8Unavailable(reason + "; use --precision bf16")
    try:
        a = torch.ones(16, 16, device=device).to(E4M3)
        ones = torch.ones(16, 1, device=device)
        torch._scaled_mm(a, a.t(), scale_a=ones, scale_b=ones.t(), out_dtype=torch.bfloat16)
    except (RuntimeError, NotImplementedError) as exc:
        raise Fp8Unavailable(f"FP8 matmuls with per-row scales fail on {torch.cuda.get_device_name(device)} "
                             f"with torch {torch.__version__}: {exc}; use --precision bf16") from exc


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] (any float dtype) -> (e4m3 [M, K], fp32 scales [M, 1]) with
    x ~= e4m3.float() * scale, every row scaled onto the full e4m3 range.

    The clamp catches the last ulp: amax / (amax / 448) may come out a hair above 448 in
    fp32, and a cast of a value past e4m3's range gives NaN, not 448."""
    x32 = x.float()
    scale = (x32.abs().amax(dim=-1, keepdim=True) / E4M3_MAX).clamp(min=MIN_SCALE)
    return (x32 / scale).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3), scale


def emulated_scaled_mm(a: torch.Tensor, b: torch.Tensor, scale_a: torch.Tensor, scale_b: torch.Tensor,
                       bias: torch.Tensor | None, out_dtype: torch.dtype) -> torch.Tensor:
    """``torch._scaled_mm``'s arithmetic off FP8 hardware: a [M, K] and b [K, N] e4m3,
    products and sums in fp32, then the scales, the bias, the cast (in that order, as the
    GPU's epilogue)."""
    out = (a.float() @ b.float()) * scale_a * scale_b
    if bias is not None:
        out = out + bias.float()
    return out.to(out_dtype)


class Fp8Linear(nn.Module):
    """``nn.Linear`` with an e4m3 weight [N, K] (row-major, so ``weight.t()`` is the
    column-major [K, N] operand ``_scaled_mm`` wants) and fp32 scales [1, N]; the bias, the
    input and the output in bf16."""

    def __init__(self, weight: torch.Tensor, weight_scale: torch.Tensor, bias: torch.Tensor | None, emulate: bool = False):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.emulate = emulate
        self.register_buffer("weight", weight)
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("bias", bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear, emulate: bool = False) -> "Fp8Linear":
        """Quantise once: one scale per output row (the rows of ``linear.weight``)."""
        if linear.in_features % 16 or linear.out_features % 16:
            raise ValueError(f"FP8 matmuls need both sizes multiples of 16; this layer is {linear.in_features} -> {linear.out_features}")
        weight, scale = quantize_rows(linear.weight.detach())
        bias = None if linear.bias is None else linear.bias.detach().to(torch.bfloat16)
        return cls(weight.contiguous(), scale.reshape(1, -1).contiguous(), bias, emulate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        x_fp8, x_scale = quantize_rows(rows)
        matmul = emulated_scaled_mm if self.emulate else _scaled_mm
        out = matmul(x_fp8, self.weight.t(), x_scale, self.weight_scale, self.bias, torch.bfloat16)
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, e4m3, emulate={self.emulate}"


def _scaled_mm(a, b, scale_a, scale_b, bias, out_dtype):
    # use_fast_accum=False: Hopper's fast FP8 accumulation keeps fewer bits than fp32.
    return torch._scaled_mm(a, b, scale_a=scale_a, scale_b=scale_b, bias=bias, out_dtype=out_dtype, use_fast_accum=False)


ESM2_LINEARS = ("qkv", "out_proj", "fc1", "fc2")


def quantize_esm2_linears_(esm2: nn.Module, emulate: bool = False, linears: tuple[str, ...] = ESM2_LINEARS) -> nn.Module:
    """Swap the four ``nn.Linear`` of every ESM-2 layer (or those ``linears`` names: a study
    of which matmuls FP8 can take) for ``Fp8Linear``, in place; the model must be bf16
    already (its residual stream, LayerNorms and attention stay so). Without ``emulate`` the
    model's device must have FP8 matmuls (``Fp8Unavailable`` otherwise)."""
    device = esm2.embed_tokens.weight.device
    if esm2.embed_tokens.weight.dtype != torch.bfloat16:
        raise ValueError(f"FP8 ESM-2 keeps a bf16 residual stream; the model is {esm2.embed_tokens.weight.dtype}")
    if not emulate:
        require_fp8_matmuls(device)
    for layer in esm2.layers:
        for name in linears:
            setattr(layer, name, Fp8Linear.from_linear(getattr(layer, name), emulate))
    return esm2
