"""Weight resolution from explicit paths and the standard caches, and clear errors."""

from __future__ import annotations

import argparse
import sys
import types

import pytest
import torch

import json
import os
import subprocess

from virnucpro_runtime import weight_caches, weights
from virnucpro_runtime.models.esm2 import ESM2, ESM2Config
from virnucpro_runtime.synthetic import esm2_fair_esm_state, randomize_, write_esm2_fair_esm
from virnucpro_runtime.weights_pickle import CheckpointError


@pytest.fixture
def clean_caches(tmp_path, monkeypatch):
    """Caches pointed at empty temporary folders, downloads disabled."""
    for name in ("HF_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def small_esm2(layers=2, dim=32, heads=4) -> ESM2:
    return randomize_(ESM2(ESM2Config(num_layers=layers, embed_dim=dim, num_heads=heads)), seed=7).eval()


def test_missing_weights_name_the_file_and_where_to_put_it(clean_caches):
    with pytest.raises(weights.WeightsNotFound) as err:
        weights.resolve_esm2(None)
    message = str(err.value)
    assert "esm2_t36_3B_UR50D.pt" in message and str(clean_caches / "torch" / "hub" / "checkpoints") in message
    assert "facebook/esm2_t36_3B_UR50D" in message
    with pytest.raises(weights.WeightsNotFound, match="zhihan1996/DNABERT-S"):
        weights.resolve_dnabert_s(None)


def test_explicit_path_that_does_not_exist(clean_caches):
    with pytest.raises(weights.WeightsNotFound, match="nowhere.pt does not exist"):
        weights.load_esm2(clean_caches / "nowhere.pt")


def test_hf_hub_cache_snapshot_is_found(clean_caches):
    snapshot = clean_caches / "hf" / "hub" / "models--facebook--esm2_t36_3B_UR50D" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert weights.resolve_esm2(None) == snapshot
    dnabert = clean_caches / "hf" / "hub" / "models--zhihan1996--DNABERT-S" / "snapshots" / "fedcba9"
    dnabert.mkdir(parents=True)
    (dnabert / "config.json").write_text("{}")
    assert weights.resolve_dnabert_s(None) == dnabert


def test_find_weights_tells_predict_what_the_caches_hold_without_importing_torch(clean_caches):
    torch_file = clean_caches / "torch" / "hub" / "checkpoints" / "esm2_t36_3B_UR50D.pt"
    torch_file.parent.mkdir(parents=True)
    torch_file.write_bytes(b"")
    dnabert = clean_caches / "hf" / "hub" / "models--zhihan1996--DNABERT-S" / "snapshots" / "fedcba9"
    dnabert.mkdir(parents=True)
    (dnabert / "config.json").write_text("{}")
    code = "import runpy, sys; sys.argv = ['virnucpro_runtime', 'find-weights']; runpy.run_module('virnucpro_runtime', run_name='__main__')"
    answer = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=os.environ.copy(), capture_output=True, text=True, check=True
    )
    assert json.loads(answer.stdout) == weight_caches.describe() == {
        "esm2": {"found": str(torch_file), "searched": [str(clean_caches / "hf" / "hub" / "models--facebook--esm2_t36_3B_UR50D" / "snapshots"), str(torch_file)]},
        "dnabert": {"found": str(dnabert), "searched": [str(dnabert.parent)]},
    }
    imported = {line.rsplit("|", 1)[-1].strip() for line in answer.stderr.splitlines()}
    assert "torch" not in imported, "find-weights must answer without importing torch"


def test_torch_hub_checkpoint_is_found_and_loads(clean_caches):
    checkpoints = clean_caches / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    model = small_esm2()
    path = write_esm2_fair_esm(model, checkpoints / "esm2_t36_3B_UR50D.pt")
    assert weights.resolve_esm2(None) == path
    loaded = weights.load_esm2(None)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_wrong_shape_names_file_key_and_shapes(tmp_path):
    state = esm2_fair_esm_state(small_esm2())
    state["encoder.sentence_encoder.layers.1.fc1.weight"] = torch.zeros(64, 32)
    hyper = argparse.Namespace(encoder_layers=2, encoder_embed_dim=32, encoder_attention_heads=4, token_dropout=True)
    torch.save({"model": state, "cfg": {"model": hyper}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad\.pt: key 'layers.1.fc1.weight' has shape \(64, 32\), expected \(128, 32\)"):
        weights.load_esm2(tmp_path / "bad.pt")


def test_other_model_given_as_esm2(tmp_path):
    torch.save({"model": {"hidden_layer.weight": torch.zeros(512, 3328)}}, tmp_path / "classifier.pt")
    with pytest.raises(CheckpointError, match="not an ESM-2 checkpoint"):
        weights.load_esm2(tmp_path / "classifier.pt")


def test_unpublished_size_without_head_count(tmp_path):
    torch.save({"model": esm2_fair_esm_state(small_esm2())}, tmp_path / "esm2_custom.pt")
    with pytest.raises(CheckpointError, match="names no head count"):
        weights.load_esm2(tmp_path / "esm2_custom.pt")


def test_dnabert_requires_a_directory(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="must be a model directory"):
        weights.load_dnabert_s(tmp_path / "model.bin")


def test_bfloat16_load_keeps_structure(tmp_path):
    path = write_esm2_fair_esm(small_esm2(), tmp_path / "esm2_small.pt")
    model = weights.load_esm2(path, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_omegaconf_style_cfg_falls_back_to_published_heads(tmp_path, monkeypatch):
    """A cfg pickled as an omegaconf object (fairseq-style files) is read as inert data; the
    head count of a published size then comes from the table."""
    module = types.ModuleType("omegaconf.dictconfig")

    class DictConfig:
        def __init__(self, content):
            self._content = content

    DictConfig.__module__ = "omegaconf.dictconfig"
    DictConfig.__qualname__ = "DictConfig"
    module.DictConfig = DictConfig
    monkeypatch.setitem(sys.modules, "omegaconf", types.ModuleType("omegaconf"))
    monkeypatch.setitem(sys.modules, "omegaconf.dictconfig", module)
    model = randomize_(ESM2(ESM2Config(num_layers=6, embed_dim=320, num_heads=20)), seed=9).eval()
    state = esm2_fair_esm_state(model)
    torch.save({"model": state, "cfg": {"model": DictConfig({"encoder_layers": 6})}}, tmp_path / "esm2_t6_8M_UR50D.pt")
    monkeypatch.delitem(sys.modules, "omegaconf.dictconfig")  # loading must not need the class
    loaded = weights.load_esm2(tmp_path / "esm2_t6_8M_UR50D.pt")
    assert loaded.cfg.num_heads == 20
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
