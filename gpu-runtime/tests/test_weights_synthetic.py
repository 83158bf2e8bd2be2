"""Synthetic checkpoints: deterministic, in the real formats, and with useful scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from virnucpro_runtime import synthetic, weights
from virnucpro_runtime.measure import embed
from virnucpro_runtime.models.classifier import load_classifier, softmax_scores


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synthetic.write_checkpoints("tiny", tmp_path_factory.mktemp("tiny"))


def test_same_seed_same_files(tiny, tmp_path):
    again = synthetic.write_checkpoints("tiny", tmp_path)
    assert (tiny["dnabert"] / "tokenizer.json").read_text() == (again["dnabert"] / "tokenizer.json").read_text()
    for load in (lambda p: weights.load_esm2(p["esm2"]), lambda p: weights.load_dnabert_s(p["dnabert"])[0],
                 lambda p: load_classifier(p["classifier"])):
        for (name, a), (_, b) in zip(load(tiny).state_dict().items(), load(again).state_dict().items()):
            assert torch.equal(a, b), name


def test_tiny_keeps_the_real_widths(tiny):
    esm2 = weights.load_esm2(tiny["esm2"])
    dnabert, tokenizer = weights.load_dnabert_s(tiny["dnabert"])
    assert esm2.cfg.embed_dim == 2560 and dnabert.cfg.hidden_size == 768
    assert load_classifier(tiny["classifier"]).hidden_layer.in_features == 768 + 2560
    config = json.loads((tiny["dnabert"] / "config.json").read_text())
    assert config["vocab_size"] == tokenizer.vocab_size
    raw = Tokenizer.from_file(str(tiny["dnabert"] / "tokenizer.json"))
    assert [raw.id_to_token(i) for i in range(5)] == synthetic.DNA_SPECIAL_TOKENS


def test_scores_spread_over_the_unit_interval(tiny):
    """On inputs other than the calibration set, scores use most of (0, 1), both classes win."""
    esm2 = weights.load_esm2(tiny["esm2"])
    dnabert, tokenizer = weights.load_dnabert_s(tiny["dnabert"])
    classifier = load_classifier(tiny["classifier"])
    rng = np.random.default_rng(123)
    proteins = synthetic.random_proteins(rng, 64, 60, 166)
    dna = synthetic.random_dna(rng, 64, 181, 499)
    x = np.concatenate([embed.embed_nucleotides(dnabert, tokenizer, dna, 4096), embed.embed_proteins(esm2, proteins, 4096)], axis=1)
    with torch.no_grad():
        virus = softmax_scores(classifier(torch.from_numpy(x)))[:, 1].numpy()
    low, high = np.quantile(virus, [0.1, 0.9])
    assert low < 0.3 and high > 0.7, (low, high)
