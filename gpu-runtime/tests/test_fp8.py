"""The FP8 path's logic on a CPU (models/fp8.py): the same quantisation the GPU runs, the
matmul emulated in fp32. No FP8 hardware is needed; what these tests hold is the scaling
(per token, per output channel), the shapes and layouts ``torch._scaled_mm`` wants, the e4m3
range, the error bounds that follow from e4m3's 3 mantissa bits, and the wiring (model,
compiled path, numerics, refusal off FP8 hardware)."""
import copy

import numpy as np
import pytest
import torch
import torch._dynamo

from fixtures_models import packed_proteins
from virnucpro_runtime import compiled, engine, models_api, synthetic
from virnucpro_runtime.measure import parity
from virnucpro_runtime.models import fp8
from virnucpro_runtime.models.esm2 import mean_residues_packed

# e4m3 keeps 3 mantissa bits: rounding a normal number moves it by at most half an ulp,
# 2^-4 of its value; below the normal range (2^-6 * scale) the step is the subnormal one,
# 2^-9 * scale, so at most 2^-10 * scale.
E4M3_RELATIVE = 2.0**-4
E4M3_SUBNORMAL_ABS = 2.0**-10


def _rows_of_many_magnitudes(m, k, seed=0):
    """Rows of random values whose sizes span 12 orders of magnitude, plus a zero row."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=g) * torch.logspace(-6, 6, m)[:, None]
    x[m // 2] = 0
    return x


def test_activation_scales_are_per_row_and_use_the_whole_e4m3_range():
    x = _rows_of_many_magnitudes(9, 64)
    q, scale = fp8.quantize_rows(x)
    assert q.dtype == torch.float8_e4m3fn and q.shape == (9, 64)
    assert scale.dtype == torch.float32 and scale.shape == (9, 1)
    amax = x.abs().amax(1, keepdim=True)
    nonzero = amax[:, 0] > 0
    torch.testing.assert_close(scale[nonzero], amax[nonzero] / 448, rtol=0, atol=0)
    assert torch.equal(q.float().abs().amax(1)[nonzero], torch.full((8,), 448.0)), "every row reaches +-448"
    zero = ~nonzero
    assert scale[zero].item() == torch.tensor(fp8.MIN_SCALE).item() and torch.equal(q[zero].float(), torch.zeros(1, 64))


def test_e4m3_range_never_overflows_to_nan():
    """e4m3fn has no infinity: a value past 448 cast as is becomes NaN (or saturates,
    depending on the kernel). The quantiser clamps, so nothing leaves the range."""
    x = torch.tensor([[3e38, -3e38, 1.0, 0.0], [1e-30, -1e-30, 0.0, 0.0], [448.0, 449.0, -460.0, 1.0], [0.0] * 4])
    q, scale = fp8.quantize_rows(x)
    values = q.float()
    assert torch.isfinite(values).all() and torch.isfinite(scale).all() and (scale > 0).all()
    assert values.abs().max() <= 448
    assert torch.equal(values[3], torch.zeros(4))
    # bf16 and fp32 inputs give the same e4m3 operands (quantisation runs in fp32)
    xb = torch.randn(5, 32).bfloat16()
    assert torch.equal(fp8.quantize_rows(xb)[0].float(), fp8.quantize_rows(xb.float())[0].float())


def test_round_trip_error_is_within_half_an_e4m3_ulp():
    x = _rows_of_many_magnitudes(16, 256, seed=1)
    q, scale = fp8.quantize_rows(x)
    error = (q.float() * scale - x).abs()
    bound = torch.maximum(E4M3_RELATIVE * x.abs(), E4M3_SUBNORMAL_ABS * scale) * (1 + 1e-6)
    assert (error <= bound).all(), float((error / bound).max())


def test_weights_are_quantised_once_per_output_channel_in_scaled_mm_layout():
    torch.manual_seed(2)
    linear = torch.nn.Linear(64, 48).bfloat16()
    with torch.no_grad():
        linear.weight.mul_(torch.logspace(-3, 3, 48)[:, None])  # output channels of very different sizes
    layer = fp8.Fp8Linear.from_linear(linear, emulate=True)
    assert layer.weight.dtype == torch.float8_e4m3fn and layer.weight.shape == (48, 64) and layer.weight.is_contiguous()
    # the operand _scaled_mm gets: [K, N] column-major, the transpose of a row-major [N, K]
    assert layer.weight.t().shape == (64, 48) and layer.weight.t().stride() == (1, 64)
    assert layer.weight_scale.shape == (1, 48) and layer.weight_scale.dtype == torch.float32
    amax = linear.weight.float().abs().amax(1)
    torch.testing.assert_close(layer.weight_scale[0], amax / 448, rtol=0, atol=0)
    assert layer.bias.dtype == torch.bfloat16 and torch.equal(layer.bias, linear.bias)
    with pytest.raises(ValueError, match="multiples of 16"):
        fp8.Fp8Linear.from_linear(torch.nn.Linear(40, 48), emulate=True)


@torch.no_grad()
def test_emulated_linear_is_the_dequantised_matmul_and_close_to_fp32():
    """Tokens and output channels of very different sizes: a scale on the wrong axis (or
    one scale for the whole tensor) would wreck the small ones."""
    torch.manual_seed(3)
    linear = torch.nn.Linear(256, 96)
    linear.weight.mul_(torch.logspace(-2, 2, 96)[:, None])
    x = torch.randn(4, 10, 256) * torch.logspace(-3, 3, 10)[None, :, None]
    layer = fp8.Fp8Linear.from_linear(copy.deepcopy(linear).bfloat16(), emulate=True)
    out = layer(x.bfloat16())
    assert out.dtype == torch.bfloat16 and out.shape == (4, 10, 96)

    # exactly the dequantised operands' product (up to fp32 summation order and the bf16 cast)
    qx, sx = fp8.quantize_rows(x.bfloat16().reshape(-1, 256))
    dequantised = (qx.float() * sx) @ (layer.weight.float() * layer.weight_scale.t()).t() + layer.bias.float()
    torch.testing.assert_close(out.float().reshape(-1, 96), dequantised, rtol=2**-8, atol=0)

    # against the fp32 linear: per token and output channel, relative to its own size
    reference = linear(x).reshape(-1, 96)
    rows = x.reshape(-1, 256)
    # each product x_k w_nk is off by at most ~2 * 2^-4 of itself (plus bf16's 2^-9 on the
    # inputs), so the sum by at most that share of sum_k |x_k w_nk|; the output's bf16 cast 2^-9
    bound = 2.2 * E4M3_RELATIVE * (rows.abs() @ linear.weight.abs().t()) + 2**-8 * reference.abs() + 1e-6
    assert ((out.float().reshape(-1, 96) - reference).abs() <= bound).all()
    # typical error is far below the worst case: e4m3 rounding of both operands leaves ~3.5%
    # relative RMS error per output, a cosine per token near 0.9994; stated tolerance: median
    # >= 0.999, min >= 0.99 (the largest of these output channels are 10^4 times the smallest,
    # so a few products dominate a token and their errors do not average out; over 40 seeds the
    # min ranged 0.990-0.9995)
    cosines = parity.cosines(out.float().reshape(-1, 96).numpy(), reference.numpy())
    assert cosines.min() >= 0.99 and np.median(cosines) >= 0.999, (cosines.min(), np.median(cosines))


def _fp8_esm2(emulate=True):
    esm2 = synthetic.build_esm2("tiny").to(torch.bfloat16)
    return fp8.quantize_esm2_linears_(esm2, emulate=emulate)


def test_quantize_esm2_swaps_exactly_the_four_linears_of_every_layer():
    esm2 = _fp8_esm2()
    for layer in esm2.layers:
        assert all(isinstance(getattr(layer, name), fp8.Fp8Linear) for name in ("qkv", "out_proj", "fc1", "fc2"))
        assert layer.attn_norm.weight.dtype == torch.bfloat16 and layer.ffn_norm.weight.dtype == torch.bfloat16
    assert not any(isinstance(m, torch.nn.Linear) for m in esm2.modules())
    assert esm2.embed_tokens.weight.dtype == torch.bfloat16 and esm2.final_norm.weight.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="bf16"):
        fp8.quantize_esm2_linears_(synthetic.build_esm2("tiny"), emulate=True)  # fp32 model


def test_a_study_can_quantise_some_linears_only():
    esm2 = fp8.quantize_esm2_linears_(synthetic.build_esm2("tiny").to(torch.bfloat16), emulate=True, linears=("fc2",))
    for layer in esm2.layers:
        assert isinstance(layer.fc2, fp8.Fp8Linear)
        assert all(type(getattr(layer, name)) is torch.nn.Linear for name in ("qkv", "out_proj", "fc1"))


def test_tiny_esm2_with_fp8_linears_stays_close_to_fp32():
    """Embeddings (residue means) of the tiny model: fp8 linears vs fp32 throughout, with
    bf16 alone beside it. Stated tolerance: cosine >= 0.999 (the issue's bar for ESM-2 3B)."""
    reference = synthetic.build_esm2("tiny")
    bf16 = synthetic.build_esm2("tiny").to(torch.bfloat16)
    quantised = _fp8_esm2()
    proteins = synthetic.random_proteins(np.random.default_rng(4), 12, 20, 166)
    batch = packed_proteins(proteins)

    def embed(model):
        with torch.inference_mode():
            hidden = model.forward_packed(batch.tokens, batch.cu_seqlens, batch.max_seqlen)
            return mean_residues_packed(hidden, batch.cu_seqlens).numpy()

    ref = embed(reference)
    cos_fp8 = parity.cosines(embed(quantised), ref)
    cos_bf16 = parity.cosines(embed(bf16), ref)
    assert cos_fp8.min() >= 0.999, cos_fp8.min()
    assert cos_bf16.min() >= cos_fp8.min() - 1e-6  # fp8 is the coarser of the two
    assert not np.array_equal(embed(quantised), embed(bf16))  # the fp8 layers really ran


def test_compiled_layers_with_fp8_linears_match_the_plain_forward_bit_for_bit():
    """As tests/test_compiled.py for bf16: dynamo (eager backend) traces the activation
    quantisation into the layer graphs, one graph per half for every batch shape."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    esm2 = _fp8_esm2()
    fast = compiled.CompiledESM2Packed(esm2, attention=compiled.padded_attention, backend="eager")
    rng = np.random.default_rng(5)
    with torch.inference_mode():
        for count in (3, 6, 2):
            batch = packed_proteins(synthetic.random_proteins(rng, count, 5, 60))
            args = (batch.tokens, batch.cu_seqlens, batch.max_seqlen)
            assert torch.equal(fast(*args), esm2.forward_packed(*args))
    frames = torch._dynamo.utils.counters["frames"]
    assert frames["ok"] == 2, f"recompiled per batch shape: {dict(frames)}"


@pytest.mark.parametrize("k, n", [(2560, 7680), (2560, 2560), (2560, 10240), (10240, 2560)])
def test_the_operands_pass_scaled_mm_checks_at_esm2_3b_sizes(k, n):
    """On the meta device the GPU path runs torch's own shape, dtype and layout checks of
    ``_scaled_mm`` (mat2 column-major, scales [M, 1] and [1, N] fp32 contiguous, K and N
    multiples of 16) at the 3B model's four shapes, without memory or a GPU."""
    layer = fp8.Fp8Linear.from_linear(torch.nn.Linear(k, n, device="meta", dtype=torch.bfloat16))
    out = layer(torch.empty(3, 1000, k, device="meta", dtype=torch.bfloat16))
    assert out.shape == (3, 1000, n) and out.dtype == torch.bfloat16


def _cpu_scaled_mm_or_skip():
    a = torch.ones(16, 16).to(fp8.E4M3)
    try:
        torch._scaled_mm(a, a.t(), scale_a=torch.ones(16, 1), scale_b=torch.ones(1, 16), out_dtype=torch.bfloat16)
    except (RuntimeError, NotImplementedError) as exc:
        pytest.skip(f"this torch has no CPU _scaled_mm with per-row scales: {exc}")


@torch.no_grad()
def test_the_scaled_mm_call_agrees_with_the_emulation():
    """torch's CPU ``_scaled_mm`` (a reference kernel, where this torch has it) given exactly
    the arguments the GPU gets: a scale on the wrong side or a dropped bias would show."""
    _cpu_scaled_mm_or_skip()
    torch.manual_seed(7)
    linear = torch.nn.Linear(256, 96).bfloat16()
    linear.weight.mul_(torch.logspace(-2, 2, 96, dtype=torch.bfloat16)[:, None])
    x = (torch.randn(2, 20, 256) * torch.logspace(-3, 3, 20)[None, :, None]).bfloat16()
    real = fp8.Fp8Linear.from_linear(linear)
    emulated = fp8.Fp8Linear.from_linear(linear, emulate=True)
    torch.testing.assert_close(real(x), emulated(x), rtol=2**-7, atol=0)


def _fp8_esm2_scaled_mm():
    """The tiny model with the GPU's path (``_scaled_mm``), built without the device check."""
    esm2 = synthetic.build_esm2("tiny").to(torch.bfloat16)
    for layer in esm2.layers:
        for name in fp8.ESM2_LINEARS:
            setattr(layer, name, fp8.Fp8Linear.from_linear(getattr(layer, name)))
    return esm2


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_scaled_mm_path_compiles_with_one_graph_per_half(backend):
    """The real call under compiled.py's torch.compile on a CPU: through AOT autograd (fake
    tensors, functionalisation: what Inductor sees on the GPU too) bit-identical to the plain
    forward; through Inductor (its CPU lowering) as close to fp32 as the plain forward is, since
    fused LayerNorms round differently and move some values across e4m3 steps."""
    _cpu_scaled_mm_or_skip()
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    esm2 = _fp8_esm2_scaled_mm()
    reference = synthetic.build_esm2("tiny")
    fast = compiled.CompiledESM2Packed(esm2, attention=compiled.padded_attention, backend=backend)
    rng = np.random.default_rng(6)
    with torch.inference_mode():
        for count in (3, 6):
            batch = packed_proteins(synthetic.random_proteins(rng, count, 5, 120))
            args = (batch.tokens, batch.cu_seqlens, batch.max_seqlen)
            ours, plain = fast(*args), esm2.forward_packed(*args)
            if backend == "aot_eager":
                assert torch.equal(ours, plain)
            else:
                ref = reference.forward_packed(*args).numpy()
                cos_ours, cos_plain = (parity.cosines(t.float().numpy(), ref).min() for t in (ours, plain))
                assert cos_ours >= 0.998 and abs(cos_ours - cos_plain) < 5e-4, (cos_ours, cos_plain)
    assert torch._dynamo.utils.counters["frames"]["ok"] == 2


def test_fp8_is_refused_without_fp8_matmuls(monkeypatch):
    with pytest.raises(fp8.Fp8Unavailable, match=r"compute capability >= 8\.9.*cpu"):
        fp8.require_fp8_matmuls(torch.device("cpu"))
    with pytest.raises(fp8.Fp8Unavailable):
        fp8.quantize_esm2_linears_(synthetic.build_esm2("tiny").to(torch.bfloat16))  # on the CPU, not emulated
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100-SXM4-80GB")
    with pytest.raises(fp8.Fp8Unavailable, match=r"cuda:0 is NVIDIA A100-SXM4-80GB, capability 8\.0"):
        fp8.require_fp8_matmuls(torch.device("cuda:0"))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert fp8.fp8_unsupported_reason(torch.device("cuda:0")) is None


def test_numerics_tell_fp8_from_bf16_loads():
    """A restarted runtime, or the activity's cache, must never take fp8 results for bf16
    ones: the precision is part of the numerics and of its id."""
    cpu = torch.device("cpu")
    plain = models_api.load_models(cpu, torch.bfloat16, synthetic="tiny")
    quantised = models_api.load_models(cpu, torch.bfloat16, synthetic="tiny")
    models_api.use_fp8_esm2(quantised, emulate=True)
    a, b = (engine.Engine(m, esm2_budget=600, dnabert_budget=600).numerics(False) for m in (plain, quantised))
    assert a["precision"]["esm2"] == "bfloat16"
    assert b["precision"]["esm2"].startswith("bfloat16, linear layers float8_e4m3fn") and "emulated" in b["precision"]["esm2"]
    assert a["precision"]["dnabert"] == b["precision"]["dnabert"]
    assert a["id"] != b["id"]
    assert quantised.weight_bytes() < plain.weight_bytes()
