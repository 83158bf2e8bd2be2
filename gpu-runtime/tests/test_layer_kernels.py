"""layer_kernels.py: the Triton kernels' arithmetic on a CPU, under Triton's interpreter
(TRITON_INTERPRET=1, set before Triton is imported, hence a child process), against torch's
ops, alone and inside the compiled bf16 layer. fp32 tensors: the interpreter truncates
fp32 -> bf16 casts where the GPU rounds to nearest, so bf16 would test the interpreter, not
the kernels."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from virnucpro_runtime.layer_kernels import add_layer_norm, rotary_in_place
from virnucpro_runtime.models.esm2 import ESM2Config, ESM2Layer, rotary_tables

TESTS = Path(__file__).resolve().parent

CHILD = r"""
import json, sys, numpy as np, torch
from fixtures_models import packed_proteins
from virnucpro_runtime import compiled, synthetic
from virnucpro_runtime.layer_kernels import add_layer_norm, rotary_in_place
from virnucpro_runtime.models.esm2 import ESM2Config, ESM2Layer, rotary_tables
out = {"add_layer_norm": {}, "rotary": {}}
for rows, cols in ((5, 2560), (3, 48), (1, 130)):
    g = torch.Generator().manual_seed(cols)
    x, delta = torch.randn(rows, cols, generator=g) * 3, torch.randn(rows, cols, generator=g)
    norm = torch.nn.LayerNorm(cols)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(cols, generator=g))
        norm.bias.copy_(torch.randn(cols, generator=g))
        summed, normed = add_layer_norm(x, delta, norm)
        again = add_layer_norm(x, delta, norm)[1]
        reference = norm(x + delta)
    out["add_layer_norm"][f"{rows}x{cols}"] = {"sum_exact": bool(torch.equal(summed, x + delta)),
                                               "max_error": float((normed - reference).abs().max()),
                                               "repeatable": bool(torch.equal(normed, again))}
# ESM-2 3B's heads (40 x 64: 80 of q's and k's, five programs of 16 per token, the last
# one full) and two that leave programs partly empty or a half off a power of two.
for heads, head_dim in ((40, 64), (4, 16), (3, 12)):
    layer = ESM2Layer(ESM2Config(num_layers=1, embed_dim=8, num_heads=heads, attn_dim=heads * head_dim, ffn_dim=8))
    g = torch.Generator().manual_seed(heads)
    qkv = torch.randn(7, 3 * heads * head_dim, generator=g)
    cos, sin = rotary_tables(torch.tensor([0, 1, 2, 0, 1, 2, 3]), head_dim)
    expected = [t.clone() for t in layer.rotate_qkv(qkv, cos, sin)]
    buffer = qkv.clone()
    got = rotary_in_place(layer, buffer, cos, sin)
    out["rotary"][f"{heads}x{head_dim}"] = {
        "max_error": max(float((a - b).abs().max()) for a, b in zip(got, expected)),
        "views_of_buffer": all(t.untyped_storage().data_ptr() == buffer.untyped_storage().data_ptr() for t in got),
        "v_untouched": bool(torch.equal(got[2], expected[2]))}
# The whole kernel layer (fp32, tiny model) against the plain forward.
esm2 = synthetic.build_esm2("tiny")
fast = compiled.CompiledESM2Packed(esm2, attention=compiled.padded_attention, backend="eager")
batch = packed_proteins(synthetic.random_proteins(np.random.default_rng(3), 4, 5, 40))
args = (batch.tokens, batch.cu_seqlens, batch.max_seqlen)
with torch.inference_mode():
    out["layer_max_error"] = float((fast(*args) - esm2.forward_packed(*args)).abs().max())
out["layer_bits_differ"] = not torch.equal(fast(*args), esm2.forward_packed(*args))  # the kernels ran
print(json.dumps(out))
"""


def test_the_kernels_compute_what_torch_does():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": f"{TESTS.parent}{os.pathsep}{TESTS}"}
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(results["add_layer_norm"]) == {"5x2560", "3x48", "1x130"}  # widths below, at and off a power of two
    for shape, r in results["add_layer_norm"].items():
        assert r["sum_exact"] and r["repeatable"], (shape, r)
        assert r["max_error"] < 1e-4, (shape, r)  # fp32 LayerNorm outputs of size ~5: summation order only
    assert set(results["rotary"]) == {"40x64", "4x16", "3x12"}
    for shape, r in results["rotary"].items():
        assert r["views_of_buffer"] and r["v_untouched"], (shape, r)
        assert r["max_error"] < 1e-5, (shape, r)  # fp32 products of size ~3: a fused multiply-add at most
    # the tiny model's LayerNorm outputs feed fp32 matmuls: the summation order's ~1e-6 grows a little
    assert results["layer_max_error"] < 1e-3 and results["layer_bits_differ"], results


def test_off_cuda_it_is_torchs_ops_bit_for_bit():
    x, delta = torch.randn(4, 64), torch.randn(4, 64)
    norm = torch.nn.LayerNorm(64)
    summed, normed = add_layer_norm(x, delta, norm)
    assert torch.equal(summed, x + delta) and torch.equal(normed, norm(x + delta))
    layer = ESM2Layer(ESM2Config(num_layers=1, embed_dim=8, num_heads=2, attn_dim=16, ffn_dim=8))
    qkv = torch.randn(5, 48)
    cos, sin = rotary_tables(torch.arange(5), 8)
    for got, expected in zip(rotary_in_place(layer, qkv, cos, sin), layer.rotate_qkv(qkv, cos, sin)):
        assert torch.equal(got, expected)
