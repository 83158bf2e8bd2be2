"""The compiled paths: the bf16 kernel layer, and the FP8 graphs under dynamo with the eager
backend (quick on a CPU): same numbers as the models' own forwards, one graph for every batch shape."""
import numpy as np
import pytest
import torch
import torch._dynamo

from fixtures_models import packed_proteins
from virnucpro_runtime import compiled, synthetic


def _packed(proteins):
    batch = packed_proteins(proteins)
    return batch.tokens, batch.cu_seqlens, batch.max_seqlen


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_kernel_layer_matches_forward_packed_and_compiles_nothing(dtype):
    """Bit-identical, not merely close: off CUDA the layer's kernels are torch's own ops
    (their arithmetic is tests/test_layer_kernels.py's), the FFN's residual add only moves,
    and torch computes ``_addmm_activation``'s GELU with erf on a CPU, as the layer does.
    The bf16 path has no torch.compile graph: nothing is compiled on any batch shape."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    esm2 = synthetic.build_esm2("tiny").to(dtype)
    fast = compiled.CompiledESM2Packed(esm2, attention=compiled.padded_attention, backend="eager")
    assert not fast.graphs and "Triton" in fast.arithmetic["layer"]
    rng = np.random.default_rng(0)
    with torch.inference_mode():
        for count in (3, 5, 2, 7):
            tokens, cu, longest = _packed(synthetic.random_proteins(rng, count, 5, 60))
            assert torch.equal(fast(tokens, cu, longest), esm2.forward_packed(tokens, cu, longest))
    assert not torch._dynamo.utils.counters["frames"]


def test_compiled_dnabert_embed_matches_and_keeps_one_graph():
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    dnabert = synthetic.build_dnabert_s("tiny")
    fast = torch.compile(dnabert.embed, dynamic=True, backend="eager")
    rng = np.random.default_rng(1)
    with torch.inference_mode():
        for batch, width in ((4, 30), (6, 41), (3, 57)):
            ids = torch.from_numpy(rng.integers(5, 500, size=(batch, width)))
            lengths = torch.from_numpy(rng.integers(width // 2, width + 1, size=batch))
            torch.testing.assert_close(fast(ids, lengths), dnabert.embed(ids, lengths), rtol=1e-5, atol=1e-5)
    assert torch._dynamo.utils.counters["frames"]["ok"] == 1
