"""The models under ``torch.compile`` (CUDA; ``serve`` turns it on unless
VIRNUCPRO_COMPILE=0, ``bench`` measures with and without).

ESM-2: eager, every layer is ~15 kernels, most of them element-wise passes over [T, 2560]
(LayerNorms, bias adds, rotary, GELU, residual adds). Here (``CompiledESM2Packed``) a bf16
layer is 8 kernels: the matmuls stay cuBLAS and take their bias, and fc1 its GELU, in the
epilogue; each residual add runs with the LayerNorm after it in one Triton pass
(add_layer_norm.py); rotary is one compiled graph; attention stays ``varlen_attn``. The
graph serves all 36 layers (the layer's parameters are inputs, not constants) and every
packed size (``dynamic=True``: no recompile per batch). On the H100 this is 103.9k tokens/s
against 97.2k for the whole layer in Inductor graphs (bench/results/studies/).

The layer math is ``ESM2Layer``'s own (``rotate_qkv``, its linear layers and LayerNorms).
Two changes from ``ESM2Layer.forward``: the FFN's residual add runs with the next layer's
first LayerNorm, and fc1's GELU runs in cuBLASLt's epilogue (``_ffn_gelu_epilogue``),
whose GELU is the tanh approximation where the layer's is erf's. On the CPU torch computes
``_addmm_activation``'s GELU with erf and the LayerNorms with torch's ops, so
tests/test_compiled.py holds the two paths bit-identical there (eager backend); on the GPU
the parity against fp32 is measured (bench/README.md). ``CompiledESM2Packed.arithmetic``
names these choices; the runtime's ``numerics`` carries it, so shard results of another
arithmetic are never reused.

CUDA graphs are not used: a profile of the compiled path on the H200 found the GPU idle
0.2% of a 64k-token batch's span (bench/results/studies/), all a graph could recover.

Inductor runs in its deterministic mode: by default it picks among kernel configurations
of a reduction (the FP8 path's LayerNorms: block sizes, warps) by timing them on the device at the
first launch, and those choices change the order of the additions. A runtime that
restarted, or one on another GPU of the same model, could then pick differently and score
the same shard slightly differently (in the random-weight e2e run of issue 8 that moved
0.2% of the labels after a runtime was killed). Deterministic mode chooses reductions'
configurations without timing; pointwise kernels, whose numerics no configuration
changes, are still tuned.
"""
from __future__ import annotations

from typing import Callable

import torch

from .add_layer_norm import add_layer_norm, uses_triton
from .models.esm2 import ESM2, packed_positions, padded_attention_over_packed, rotary_tables

try:
    from torch.nn.attention.varlen import varlen_attn
except ImportError:  # pragma: no cover - torch < 2.10
    varlen_attn = None


def _pre_attention(layer, x, delta, cos, sin):
    """FP8 layers: the previous layer's FFN residual add (``delta``), then the layer up to
    the attention call, in one graph where Inductor fuses the LayerNorm with the QKV input's
    quantisation. Returns the new residual too; v made dense for the varlen kernel."""
    x = x + delta
    q, k, v = layer.attention_inputs(x, cos, sin)
    return x, q, k, v.contiguous()


def _post_attention(layer, x, attended):
    """FP8 layers: the layer after the attention call, up to the FFN's residual add (GELU
    fused with fc2's input quantisation): returns the residual after attention and the
    FFN's output, which the next layer adds."""
    x = layer.attention_residual(x, attended)
    return x, layer.ffn(x)


def _rotate_qkv(layer, qkv, cos, sin):
    """bf16 layers: rotary on q and k, v made dense for the varlen kernel (two pointwise
    kernels; writing all three into one stacked buffer in one kernel was slower: H100,
    100.3k vs 101.5k tokens/s, bench/results/studies/...-esm2-variants.json)."""
    q, k, v = layer.rotate_qkv(qkv, cos, sin)
    return q, k, v.contiguous()


def _ffn_gelu_epilogue(layer, h):
    """The FFN with fc1's bias and GELU in cuBLASLt's epilogue: one matmul writes GELU's
    output, where Inductor reads and writes fc1's [T, 10240] output once more in a GELU
    pass of its own (5.8% of an ESM-2 batch on the H200). That GELU is the tanh
    approximation (within 4.7e-4 of erf's; bench/README.md gives the parity). It runs
    outside the graphs: Inductor would split ``_addmm_activation`` back into the two."""
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


class CompiledESM2Packed:
    """Callable with ``ESM2.forward_packed``'s signature.

    A bf16 layer is: residual add + LayerNorm (``add_layer_norm``, one Triton pass), the
    QKV matmul with its bias in cuBLAS's epilogue, rotary (one compiled graph), attention,
    the output projection (bias in the epilogue), residual add + LayerNorm again, fc1 with
    bias and GELU in the epilogue, fc2. Each residual add happens where the next LayerNorm
    reads it, so the residual stream is read and written once per LayerNorm.

    FP8 layers (models/fp8.py) run as two compiled graphs around attention instead, where
    Inductor fuses each LayerNorm or GELU with the next matmul's input quantisation.

    Attention stays outside the graphs because its Python-int ``max_seqlen`` would become
    a guard: every new batch length would recompile, and past dynamo's recompile limit
    the layer silently falls back to eager. The graphs take tensors only, so one
    compilation serves every layer and every packed size."""

    def __init__(self, esm2: ESM2, attention: Callable = varlen_attention, backend: str = "inductor",
                 inductor_layers: bool | None = None):
        """``inductor_layers``: the two-graph layers (default: for FP8 layers only; a study
        of bf16 passes True to measure the former bf16 path, which they were)."""
        if attention is varlen_attention and varlen_attn is None:
            raise RuntimeError("the compiled ESM-2 path needs torch.nn.attention.varlen (torch >= 2.10)")
        self.esm2 = esm2
        self.attention = attention
        # Inductor's default block sizes leave its pointwise kernels slow; tuning them costs
        # ~10 s of compile (+2.7% when the LayerNorms were Inductor's). Under deterministic
        # mode only the tunings that keep the arithmetic run.
        options = inductor_options() if backend == "inductor" else None
        fp8 = not isinstance(esm2.layers[0].fc1, torch.nn.Linear)
        self.inductor_layers = fp8 if inductor_layers is None else inductor_layers or fp8
        if self.inductor_layers:
            self._pre = torch.compile(_pre_attention, dynamic=True, backend=backend, options=options)
            self._post = torch.compile(_post_attention, dynamic=True, backend=backend, options=options)
        else:
            self._rotate = torch.compile(_rotate_qkv, dynamic=True, backend=backend, options=options)
        triton_norm = uses_triton(esm2.embed_tokens.weight)
        self.arithmetic = {
            "layer_norm": "Inductor graphs" if self.inductor_layers else "Triton add_layer_norm" if triton_norm else "torch",
            "fc1_gelu": "Inductor, erf GELU" if self.inductor_layers else "cuBLASLt epilogue, tanh GELU",
            "attention": attention.__name__,
        }

    def __call__(self, tokens: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int) -> torch.Tensor:
        model = self.esm2
        seq_index, positions = packed_positions(cu_seqlens, tokens.numel())
        x = model._embed(tokens, seq_index, cu_seqlens.numel() - 1)
        cos, sin = rotary_tables(positions, model.cfg.head_dim)
        attend = self.attention(cu_seqlens.to(torch.int32), max_seqlen, seq_index, positions)
        delta = torch.zeros_like(x)
        for layer in model.layers:
            if self.inductor_layers:
                x, q, k, v = self._pre(layer, x, delta, cos, sin)
                x, delta = self._post(layer, x, attend(q, k, v))
                continue
            x, h = add_layer_norm(x, delta, layer.attn_norm)
            attended = attend(*self._rotate(layer, layer.qkv(h), cos, sin))
            x, h = add_layer_norm(x, layer.out_proj(attended.reshape(x.shape[0], -1)), layer.ffn_norm)
            delta = _ffn_gelu_epilogue(layer, h)
        return model.final_norm(x + delta)


def enable_compiled_esm2(models) -> None:
    """Route ``models``' packed ESM-2 batches through the compiled layers."""
    models.esm2_packed_forward = CompiledESM2Packed(models.esm2)


def enable_compiled_dnabert(models) -> None:
    """DNABERT-S's padded embed under torch.compile: the gated GELU, LayerNorms, bias and
    residual adds fuse; one graph for every batch shape (``dynamic=True``)."""
    models.dnabert_padded_embed = torch.compile(models.dnabert.embed, dynamic=True, options=inductor_options())
