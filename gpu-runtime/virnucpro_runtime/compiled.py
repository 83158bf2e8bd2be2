"""ESM-2's and DNABERT-S's fast paths on CUDA (``serve`` turns them on unless
VIRNUCPRO_COMPILE=0, ``bench`` measures with and without).

ESM-2 in bf16: eager, every layer is ~15 kernels, most of them element-wise passes over
[T, 2560] (LayerNorms, bias adds, rotary, GELU, residual adds). Here a layer is seven:

    add + LayerNorm (Triton) -> QKV (cuBLAS, bias in the epilogue) -> rotary in place (Triton)
    -> attention (FlashAttention-2, varlen) -> out_proj (cuBLAS, bias) -> add + LayerNorm
    (Triton) -> fc1 (cuBLASLt, bias and GELU in the epilogue) -> fc2 (cuBLAS, bias)

The math is ``ESM2Layer``'s with two changes: the FFN's residual add runs in the next
layer's first LayerNorm pass, and fc1's GELU is cuBLASLt's tanh approximation where the
layer's is erf's (within 4.7e-4; on the CPU torch computes ``_addmm_activation``'s GELU with
erf, so tests/test_compiled.py holds the path bit-identical to the plain forward there). The
kernels are layer_kernels.py's; on the GPU the parity against fp32 is measured
(bench/README.md). No kernel is tuned on the device: the bits of a result depend on the
GPU model and the software versions only, never on which runtime computed it.

ESM-2 with FP8 linears (models/fp8.py) runs each layer as two ``torch.compile`` graphs
around the attention call, where Inductor fuses the activations' quantisation into the
LayerNorm and GELU kernels (outside a graph it would be several eager passes).

``CompiledESM2Packed.arithmetic`` names the choices of the path in use; the runtime's
``numerics`` carries it, so shard results of another arithmetic are never reused.

CUDA graphs are not used: a profile of the compiled path on the H200 found the GPU idle
0.2% of a 64k-token batch's span (bench/results/studies/), all a graph could recover.

Inductor (FP8 ESM-2, DNABERT-S) runs in its deterministic mode: by default it picks among
kernel configurations of a reduction (the LayerNorms: block sizes, warps) by timing them on
the device at the first launch, and those choices change the order of the additions. A
runtime that restarted, or one on another GPU of the same model, could then pick
differently and score the same shard slightly differently (in the random-weight e2e run of
issue 8 that moved 0.2% of the labels after a runtime was killed). Deterministic mode
chooses reductions' configurations without timing; pointwise kernels, whose numerics no
configuration changes, are still tuned.
"""
from __future__ import annotations

from typing import Callable

import torch

from .layer_kernels import TRITON_VERSION, add_layer_norm, rotary_in_place
from .models.esm2 import ESM2, packed_positions, padded_attention_over_packed, rotary_tables
from .models.fp8 import ESM2_LINEARS

try:
    from torch.nn.attention.varlen import varlen_attn
except ImportError:  # pragma: no cover - torch < 2.10
    varlen_attn = None


def _pre_attention(layer, x, delta, cos, sin):
    """FP8 graph: the previous layer's FFN residual add (``delta``), then the layer up to
    the attention call. Returns the new residual too; v made dense for the varlen kernel.

    The residual add sits here rather than after the FFN so that it fuses with this
    LayerNorm into one pass over [T, 2560] (on the H200: 98.0k vs 97.2k tokens/s,
    bench/results/studies/)."""
    x = x + delta
    q, k, v = layer.attention_inputs(x, cos, sin)
    return x, q, k, v.contiguous()


def _post_attention(layer, x, attended):
    """FP8 graph: the layer after the attention call, up to the FFN's residual add: returns
    the residual after attention and the FFN's output, which the next layer adds."""
    x = layer.attention_residual(x, attended)
    return x, layer.ffn(x)


def ffn_gelu_epilogue(layer, h):
    """The FFN with fc1's bias and GELU in cuBLASLt's epilogue: one matmul writes GELU's
    output, where a GELU kernel of its own would read and write fc1's [T, 10240] output once
    more (5.8% of an ESM-2 batch on the H200). That GELU is the tanh approximation (within
    4.7e-4 of erf's; bench/README.md gives the parity)."""
    hidden = torch._addmm_activation(layer.fc1.bias, h, layer.fc1.weight.t(), use_gelu=True)
    return layer.fc2(hidden)


def varlen_attention(cu_seqlens: torch.Tensor, max_seqlen: int, seq_index, positions):
    del seq_index, positions  # the varlen kernel needs only the boundaries
    return lambda q, k, v: varlen_attn(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen)


def padded_attention(cu_seqlens: torch.Tensor, max_seqlen: int, seq_index, positions):
    """The models' exact fallback (CPU, fp32): for tests of the compiled path off CUDA."""
    return padded_attention_over_packed(seq_index, positions, cu_seqlens.numel() - 1, max_seqlen)


def inductor_deterministic_available() -> bool:
    import torch._inductor.config as inductor_config

    return hasattr(inductor_config, "deterministic")


def inductor_options() -> dict:
    """Without a deterministic mode (older torch) no on-device tuning runs at all."""
    if inductor_deterministic_available():
        return {"coordinate_descent_tuning": True, "deterministic": True}
    return {"coordinate_descent_tuning": False}


def has_fp8_linears(esm2: ESM2) -> bool:
    return not all(isinstance(getattr(esm2.layers[0], name), torch.nn.Linear) for name in ESM2_LINEARS)


class CompiledESM2Packed:
    """Callable with ``ESM2.forward_packed``'s signature: each layer as the module docstring
    draws it (bf16), or as compiled pre-attention, eager attention, compiled post-attention
    (FP8 linears).

    FP8: attention stays outside the graphs because its Python-int ``max_seqlen`` would
    become a guard: every new batch length would recompile, and past dynamo's recompile
    limit the layer silently falls back to eager. The two graphs take tensors only, so one
    compilation serves every layer and every packed size (``dynamic=True``). ``backend``
    is torch.compile's (tests use "eager" on a CPU)."""

    def __init__(self, esm2: ESM2, attention: Callable = varlen_attention, backend: str = "inductor"):
        if attention is varlen_attention and varlen_attn is None:
            raise RuntimeError("the compiled ESM-2 path needs torch.nn.attention.varlen (torch >= 2.10)")
        self.esm2 = esm2
        self.attention = attention
        self.graphs = has_fp8_linears(esm2)
        if self.graphs:
            # Inductor's default block sizes leave its LayerNorm and GELU kernels near 1-2.4
            # TB/s on the H200; tuning them costs ~10 s of compile and gave +2.7% (97.2k ->
            # 99.9k tokens/s). Under deterministic mode only the tunings that keep the
            # arithmetic run.
            options = inductor_options() if backend == "inductor" else None
            self._pre = torch.compile(_pre_attention, dynamic=True, backend=backend, options=options)
            self._post = torch.compile(_post_attention, dynamic=True, backend=backend, options=options)
            self.arithmetic = {
                "layer": "Inductor graphs before and after attention, residual add in the next layer's LayerNorm",
                "fc1_gelu": "Inductor, erf GELU",
            }
        else:
            self.arithmetic = {
                "layer": "Triton add + LayerNorm (a row per program), Triton rotary in place, cuBLAS linears with bias epilogues",
                "fc1_gelu": "cuBLASLt epilogue, tanh GELU",
                "triton": TRITON_VERSION or "none: torch's ops",
            }
        self.arithmetic["attention"] = attention.__name__

    def __call__(self, tokens: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int) -> torch.Tensor:
        model = self.esm2
        seq_index, positions = packed_positions(cu_seqlens, tokens.numel())
        x = model._embed(tokens, seq_index, cu_seqlens.numel() - 1)
        cos, sin = rotary_tables(positions, model.cfg.head_dim)
        attend = self.attention(cu_seqlens.to(torch.int32), max_seqlen, seq_index, positions)
        layer_fn = self._graph_layer if self.graphs else self._kernel_layer
        delta = torch.zeros_like(x)
        for layer in model.layers:
            x, delta = layer_fn(layer, x, delta, cos, sin, attend)
        return model.final_norm(x + delta)

    # Both layer forms take the residual and the previous FFN's output (``delta``) and
    # return the residual after attention and this FFN's output, which the next layer adds.

    def _kernel_layer(self, layer, x, delta, cos, sin, attend):
        x, h = add_layer_norm(x, delta, layer.attn_norm)
        q, k, v = rotary_in_place(layer, layer.qkv(h), cos, sin)
        x, h = add_layer_norm(x, layer.out_proj(attend(q, k, v).reshape(x.shape[0], -1)), layer.ffn_norm)
        return x, ffn_gelu_epilogue(layer, h)

    def _graph_layer(self, layer, x, delta, cos, sin, attend):
        x, q, k, v = self._pre(layer, x, delta, cos, sin)
        return self._post(layer, x, attend(q, k, v))


def enable_compiled_esm2(models) -> None:
    """Route ``models``' packed ESM-2 batches through the compiled layers."""
    models.esm2_packed_forward = CompiledESM2Packed(models.esm2)


def enable_compiled_dnabert(models) -> None:
    """DNABERT-S's padded embed under torch.compile: the gated GELU, LayerNorms, bias and
    residual adds fuse; one graph for every batch shape (``dynamic=True``)."""
    models.dnabert_padded_embed = torch.compile(models.dnabert.embed, dynamic=True, options=inductor_options())
