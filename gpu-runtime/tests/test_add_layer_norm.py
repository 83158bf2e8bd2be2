"""add_layer_norm.py: the Triton kernel's arithmetic on a CPU, under Triton's interpreter
(TRITON_INTERPRET=1, set before Triton is imported, hence a child process), against torch's
add and LayerNorm. fp32 tensors: the interpreter truncates fp32 -> bf16 casts where the GPU
rounds to nearest, so bf16 would test the interpreter, not the kernel."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from virnucpro_runtime.add_layer_norm import add_layer_norm

CHILD = r"""
import json, sys, torch
from virnucpro_runtime.add_layer_norm import add_layer_norm
out = {}
for rows, cols in ((5, 2560), (3, 48), (1, 130)):
    g = torch.Generator().manual_seed(cols)
    x, delta = torch.randn(rows, cols, generator=g) * 3, torch.randn(rows, cols, generator=g)
    norm = torch.nn.LayerNorm(cols)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(cols, generator=g))
        norm.bias.copy_(torch.randn(cols, generator=g))
        summed, normed = add_layer_norm(x, delta, norm, kernel=True)
        again = add_layer_norm(x, delta, norm, kernel=True)[1]
        reference = norm(x + delta)
    out[f"{rows}x{cols}"] = {"sum_exact": bool(torch.equal(summed, x + delta)),
                             "max_error": float((normed - reference).abs().max()),
                             "repeatable": bool(torch.equal(normed, again))}
print(json.dumps(out))
"""


def test_the_kernel_adds_and_normalises_every_row_as_torch_does():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(results) == {"5x2560", "3x48", "1x130"}  # widths below, at and off a power of two
    for shape, r in results.items():
        assert r["sum_exact"] and r["repeatable"], (shape, r)
        assert r["max_error"] < 1e-4, (shape, r)  # fp32 LayerNorm outputs of size ~5: summation order only


def test_off_cuda_it_is_torchs_add_and_layer_norm_bit_for_bit():
    x, delta = torch.randn(4, 64), torch.randn(4, 64)
    norm = torch.nn.LayerNorm(64)
    summed, normed = add_layer_norm(x, delta, norm)
    assert torch.equal(summed, x + delta) and torch.equal(normed, norm(x + delta))
