"""Our ESM-2 against fair-esm 2.0.0 and transformers' EsmModel on the same random weights."""

from __future__ import annotations

import argparse

import esm
import numpy as np
import pytest
import torch
from esm.model.esm2 import ESM2 as FairEsm2

from fixtures_models import PROTEIN_LENGTHS, packed_proteins, padded, proteins_of_lengths, relative_error
from virnucpro_runtime import weights
from virnucpro_runtime.models.esm2 import ESM2, ESM2Config, mean_residues_packed
from virnucpro_runtime.synthetic import randomize_, write_esm2_fair_esm
from virnucpro_runtime.tokenizers import ESM_CLS, ESM_EOS, ESM_PAD, ESM_UNK, tokenize_proteins

TOL = 1e-5
LAYERS, DIM, HEADS = 2, 64, 4


def perturbed_fair_esm(seed: int = 0) -> FairEsm2:
    """fair-esm's own module with every weight moved off its initial value (its init
    leaves biases at zero and norms at one, which would hide those terms)."""
    torch.manual_seed(seed)
    model = FairEsm2(num_layers=LAYERS, embed_dim=DIM, attention_heads=HEADS, alphabet="ESM-1b", token_dropout=True)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model.eval()


def fair_esm_reference(model: FairEsm2, proteins: list[str], truncation: int | None):
    """Last-layer representations [B, L, D] and fair-esm-extract residue means [B, D]."""
    converter = model.alphabet.get_batch_converter(truncation)
    _, _, tokens = converter([(str(i), p) for i, p in enumerate(proteins)])
    with torch.no_grad():
        hidden = model(tokens, repr_layers=[LAYERS])["representations"][LAYERS]
    means = torch.stack([hidden[i, 1 : min(1022, len(p)) + 1].mean(0) for i, p in enumerate(proteins)])
    return tokens, hidden, means


def our_packed(model: ESM2, proteins: list[str], max_residues: int | None):
    batch = packed_proteins(proteins, max_residues)
    with torch.no_grad():
        hidden = model.forward_packed(batch.tokens, batch.cu_seqlens, batch.max_seqlen)
    return batch.cu_seqlens, hidden, mean_residues_packed(hidden, batch.cu_seqlens)


@pytest.fixture(scope="module")
def fair_model_and_ours(tmp_path_factory):
    """fair-esm module saved with its own (newer, unprefixed) state-dict names, loaded by us."""
    fair = perturbed_fair_esm()
    path = tmp_path_factory.mktemp("esm") / "esm2_t2_test.pt"
    hyper = argparse.Namespace(encoder_layers=LAYERS, encoder_embed_dim=DIM, encoder_attention_heads=HEADS, token_dropout=True)
    torch.save({"model": fair.state_dict(), "cfg": {"model": hyper}}, path)
    return fair, weights.load_esm2(path)


@pytest.mark.parametrize("truncation", [1022, None], ids=["fair-esm-extract-truncation", "untruncated-input"])
def test_packed_matches_fair_esm(fair_model_and_ours, truncation):
    fair, ours = fair_model_and_ours
    proteins = proteins_of_lengths(PROTEIN_LENGTHS)
    ref_tokens, ref_hidden, ref_means = fair_esm_reference(fair, proteins, truncation)
    cu, hidden, means = our_packed(ours, proteins, truncation)
    np.testing.assert_array_equal(padded(tokenize_proteins(proteins, truncation), ESM_PAD).input_ids.numpy(), ref_tokens.numpy())
    for i in range(len(proteins)):
        n = cu[i + 1] - cu[i]
        assert relative_error(hidden[cu[i] : cu[i + 1]], ref_hidden[i, :n]) < TOL
    assert relative_error(means, ref_means) < TOL
    # Pooling truncates at 1022 residues even when the model saw the whole protein.
    assert means.shape == (len(proteins), DIM)


def test_padded_matches_fair_esm(fair_model_and_ours):
    fair, ours = fair_model_and_ours
    proteins = proteins_of_lengths(PROTEIN_LENGTHS[:-1])
    ref_tokens, ref_hidden, _ = fair_esm_reference(fair, proteins, 1022)
    with torch.no_grad():
        hidden = ours.forward_padded(ref_tokens)
    real = ref_tokens != ESM_PAD
    assert relative_error(hidden[real], ref_hidden[real]) < TOL


def test_mask_tokens_rescale_like_fair_esm(fair_model_and_ours):
    """Token dropout: <mask> embeddings zeroed, the rest scaled by 0.88 / (1 - mask ratio)."""
    fair, ours = fair_model_and_ours
    proteins = ["MKT<mask>LLVAG<mask>", "ACDEFGHIK"]
    _, _, ref_tokens = fair.alphabet.get_batch_converter()([("a", proteins[0]), ("b", proteins[1])])
    with torch.no_grad():
        ref = fair(ref_tokens, repr_layers=[LAYERS])["representations"][LAYERS]
        hidden = ours.forward_padded(ref_tokens)
    real = ref_tokens != ESM_PAD
    assert relative_error(hidden[real], ref[real]) < TOL


def test_synthetic_fair_esm_file_loads_in_fair_esm(tmp_path):
    """Our writer's `.pt` (published layout) read by fair-esm's own loader gives our outputs."""
    model = randomize_(ESM2(ESM2Config(num_layers=LAYERS, embed_dim=DIM, num_heads=HEADS)), seed=3).eval()
    path = write_esm2_fair_esm(model, tmp_path / "esm2_t2_synthetic.pt")
    with torch.serialization.safe_globals([argparse.Namespace]):
        fair, _ = esm.pretrained.load_model_and_alphabet_local(path)
    fair.eval()
    proteins = proteins_of_lengths([5, 120, 166], seed=4)
    _, ref_hidden, ref_means = fair_esm_reference(fair, proteins, 1022)
    loaded = weights.load_esm2(path)
    cu, hidden, means = our_packed(loaded, proteins, 1022)
    assert relative_error(means, ref_means) < TOL
    for i in range(len(proteins)):
        assert relative_error(hidden[cu[i] : cu[i + 1]], ref_hidden[i, : cu[i + 1] - cu[i]]) < TOL


@pytest.mark.parametrize("head", ["EsmModel", "EsmForMaskedLM"])
def test_hf_directory_matches_transformers(tmp_path, head):
    transformers = pytest.importorskip("transformers")
    config = transformers.EsmConfig(
        vocab_size=33, hidden_size=DIM, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=4 * DIM, position_embedding_type="rotary", token_dropout=True,
        mask_token_id=32, pad_token_id=1, layer_norm_eps=1e-5, emb_layer_norm_before=False,
    )
    torch.manual_seed(5)
    hf = getattr(transformers, head)(config).eval()
    with torch.no_grad():
        for param in hf.parameters():
            param.add_(0.1 * torch.randn_like(param))
    hf.save_pretrained(tmp_path)
    base = hf if head == "EsmModel" else hf.esm

    proteins = proteins_of_lengths([3, 60, 166, 240], seed=6)
    ids = padded(tokenize_proteins(proteins), ESM_PAD).input_ids
    with torch.no_grad():
        ref = base(input_ids=ids, attention_mask=(ids != ESM_PAD).long()).last_hidden_state
    ours = weights.load_esm2(tmp_path)
    cu, hidden, _ = our_packed(ours, proteins, 1022)
    for i in range(len(proteins)):
        assert relative_error(hidden[cu[i] : cu[i + 1]], ref[i, : cu[i + 1] - cu[i]]) < TOL


def test_mean_residues_packed_excludes_specials_and_truncates():
    hidden = torch.arange(2 * 6, dtype=torch.float32).view(12, 1)  # value = token index
    cu = torch.tensor([0, 5, 12], dtype=torch.int32)  # 3 and 5 residues
    means = mean_residues_packed(hidden, cu, max_residues=4)
    torch.testing.assert_close(means[:, 0], torch.tensor([2.0, (6 + 7 + 8 + 9) / 4]))


def test_tokenizer_matches_fair_esm_alphabet():
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    proteins = ["ACDEFGHIKLMNPQRSTVWY", "XBUZO.-", "M"]
    _, _, ref = alphabet.get_batch_converter()([(str(i), p) for i, p in enumerate(proteins)])
    np.testing.assert_array_equal(padded(tokenize_proteins(proteins), ESM_PAD).input_ids.numpy(), ref.numpy())
    # fair-esm raises KeyError on characters outside its alphabet; we encode them as <unk>.
    assert tokenize_proteins(["mK*"]).flat.tolist() == [ESM_CLS, ESM_UNK, alphabet.get_idx("K"), ESM_UNK, ESM_EOS]


def test_bfloat16_packed_stays_close_to_fp32(tmp_path):
    model = randomize_(ESM2(ESM2Config(num_layers=LAYERS, embed_dim=DIM, num_heads=HEADS)), seed=8).eval()
    path = write_esm2_fair_esm(model, tmp_path / "esm2_bf16.pt")
    proteins = proteins_of_lengths([10, 100, 166], seed=9)
    _, _, fp32 = our_packed(weights.load_esm2(path), proteins, 1022)
    _, _, bf16 = our_packed(weights.load_esm2(path, dtype=torch.bfloat16), proteins, 1022)
    assert bf16.dtype == torch.float32  # pooled in float32 whatever the model dtype
    assert float(torch.nn.functional.cosine_similarity(fp32, bf16, dim=1).min()) > 0.99
