"""Our DNABERT-S against an independent one-sequence-at-a-time reference written here from
the MosaicBERT description (explicit ALiBi matrix, manual softmax attention)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fixtures_models import dna_of_lengths, padded, relative_error
from virnucpro_runtime import weights
from virnucpro_runtime.models.dnabert_s import DNABERTS, DNABERTSConfig, alibi_slopes
from virnucpro_runtime.synthetic import build_dna_tokenizer, dnabert_hf_state, randomize_, write_dnabert_hf
from virnucpro_runtime.tokenizers import DnaTokenizer

TOL = 1e-5
CFG = DNABERTSConfig(vocab_size=256, hidden_size=48, num_layers=2, num_heads=12, intermediate_size=80)


def reference_slopes_12() -> torch.Tensor:
    """The 12-head slopes spelled out: 2^-1 .. 2^-8, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5."""
    exponents = [1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5, 2.5, 3.5]
    return torch.tensor([2.0 ** -e for e in exponents], dtype=torch.float64)


def reference_hidden(state: dict[str, torch.Tensor], ids: torch.Tensor, cfg: DNABERTSConfig) -> torch.Tensor:
    """One sequence [L] -> last hidden states [L, D], fp32, from the checkpoint's own keys."""
    eps, heads = cfg.layer_norm_eps, cfg.num_heads
    ln = torch.nn.functional.layer_norm

    x = state["embeddings.word_embeddings.weight"][ids] + state["embeddings.token_type_embeddings.weight"][0]
    x = ln(x, (cfg.hidden_size,), state["embeddings.LayerNorm.weight"], state["embeddings.LayerNorm.bias"], eps)
    length = ids.numel()
    distance = torch.tensor([[abs(i - j) for j in range(length)] for i in range(length)], dtype=torch.float64)
    bias = (-reference_slopes_12()[:, None, None] * distance).float()  # [H, L, L]
    for n in range(cfg.num_layers):
        p = f"encoder.layer.{n}."
        qkv = x @ state[p + "attention.self.Wqkv.weight"].T + state[p + "attention.self.Wqkv.bias"]
        q, k, v = (t.reshape(length, heads, -1).transpose(0, 1) for t in qkv.chunk(3, dim=-1))
        scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]) + bias
        context = (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(length, -1)
        attn = context @ state[p + "attention.output.dense.weight"].T + state[p + "attention.output.dense.bias"]
        x = ln(x + attn, (cfg.hidden_size,), state[p + "attention.output.LayerNorm.weight"], state[p + "attention.output.LayerNorm.bias"], eps)
        gated = x @ state[p + "mlp.gated_layers.weight"].T
        half = gated.shape[-1] // 2
        erf_gelu = gated[:, :half] * 0.5 * (1 + torch.erf(gated[:, :half] / math.sqrt(2)))
        mlp = (erf_gelu * gated[:, half:]) @ state[p + "mlp.wo.weight"].T + state[p + "mlp.wo.bias"]
        x = ln(x + mlp, (cfg.hidden_size,), state[p + "mlp.layernorm.weight"], state[p + "mlp.layernorm.bias"], eps)
    return x


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = randomize_(DNABERTS(CFG), seed=21).eval()
    tokenizer = build_dna_tokenizer(CFG.vocab_size)
    directory = write_dnabert_hf(model, tokenizer, tmp_path_factory.mktemp("dnabert") / "model")
    return directory, dnabert_hf_state(model)


def test_slopes_follow_mosaicbert_rule():
    torch.testing.assert_close(torch.tensor(alibi_slopes(12), dtype=torch.float64), reference_slopes_12())
    assert alibi_slopes(8) == [2.0 ** -i for i in range(1, 9)]


def test_batched_matches_one_at_a_time_reference(checkpoint):
    directory, state = checkpoint
    model, tokenizer = weights.load_dnabert_s(directory)
    sequences = dna_of_lengths([1, 12, 150, 301, 501, 97])
    batch = padded(tokenizer.tokenize(sequences), tokenizer.pad_id)
    ids, lengths = batch.input_ids, batch.lengths
    with torch.no_grad():
        hidden = model(ids, lengths)
        means = model.embed(ids, lengths)
        for row, n in enumerate(lengths):
            reference = reference_hidden(state, ids[row, :n], CFG)
            assert relative_error(hidden[row, :n], reference) < TOL
            assert relative_error(means[row], reference.mean(dim=0)) < TOL  # all tokens, [CLS]/[SEP] too


def test_batched_mean_equals_single_sequence_mean(checkpoint):
    model, tokenizer = weights.load_dnabert_s(checkpoint[0])
    sequences = dna_of_lengths([40, 300, 7, 500])
    tokens = tokenizer.tokenize(sequences)
    batch = padded(tokens, tokenizer.pad_id)
    with torch.no_grad():
        batched = model.embed(batch.input_ids, batch.lengths)
        for row in range(len(tokens)):
            seq_ids = tokens[row]
            single = model.embed(torch.from_numpy(seq_ids)[None], torch.tensor([len(seq_ids)]))
            assert relative_error(batched[row], single[0]) < TOL


def test_tokenizer_adds_cls_and_sep_without_truncation(checkpoint):
    tokenizer = DnaTokenizer.from_file(checkpoint[0] / "tokenizer.json")
    ids = tokenizer.tokenize(["ACGT" * 1000])[0]
    assert ids[0] == 1 and ids[-1] == 2  # [CLS]=1, [SEP]=2 as in DNABERT-2's vocabulary
    assert len(ids) > 512  # no truncation at BERT's usual 512


def test_bert_prefixed_keys_load(tmp_path, checkpoint):
    directory, state = checkpoint
    prefixed = tmp_path / "prefixed"
    prefixed.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (prefixed / name).write_bytes((directory / name).read_bytes())
    torch.save({"bert." + k: v for k, v in state.items()}, prefixed / "pytorch_model.bin")
    a, _ = weights.load_dnabert_s(directory)
    b, _ = weights.load_dnabert_s(prefixed)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_bfloat16_stays_close(checkpoint):
    model32, tokenizer = weights.load_dnabert_s(checkpoint[0])
    model16, _ = weights.load_dnabert_s(checkpoint[0], dtype=torch.bfloat16)
    batch = padded(tokenizer.tokenize(dna_of_lengths([120, 300, 500])), tokenizer.pad_id)
    with torch.no_grad():
        a = model32.embed(batch.input_ids, batch.lengths)
        b = model16.embed(batch.input_ids, batch.lengths)
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1)
    assert b.dtype == torch.float32 and float(cosine.min()) > 0.99
    assert np.isfinite(b.numpy()).all()
