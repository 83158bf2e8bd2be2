"""Converted weights kept in the state directory: written once, taken back bit for bit, keyed by
the source files, and never used when they no longer match their checksums."""
import json
import os

import pytest
import torch

from virnucpro_runtime import synthetic, weights
from virnucpro_runtime import weights_cache
from virnucpro_runtime.weights_cache import WeightsCache


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return synthetic.write_checkpoints("tiny", tmp_path_factory.mktemp("ckpt"))


def _load(path, cache, dtype=torch.float32):
    model = weights.load_esm2(path, "cpu", dtype, cache=cache)
    cache.wait_for_writes()
    return model


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_the_second_load_comes_from_the_cache_bit_for_bit(checkpoints, tmp_path):
    first_cache, second_cache = WeightsCache(tmp_path), WeightsCache(tmp_path)
    first = _load(checkpoints["esm2"], first_cache)
    assert first_cache.hits == [] and len(list(tmp_path.glob("esm2-*.safetensors"))) == 1
    second = _load(checkpoints["esm2"], second_cache)
    assert second_cache.hits == ["esm2"]
    assert _same(first, second) and second.cfg == first.cfg
    writer = WeightsCache(tmp_path)
    model, _ = weights.load_dnabert_s(checkpoints["dnabert"], "cpu", torch.float32, cache=writer)
    writer.wait_for_writes()
    again = WeightsCache(tmp_path)
    cached, _ = weights.load_dnabert_s(checkpoints["dnabert"], "cpu", torch.float32, cache=again)
    assert again.hits == ["dnabert_s"] and _same(model, cached)


def test_a_corrupt_entry_is_removed_and_the_source_converted_again(checkpoints, tmp_path, caplog):
    first = _load(checkpoints["esm2"], WeightsCache(tmp_path))
    entry = next(tmp_path.glob("esm2-*.safetensors"))
    data = bytearray(entry.read_bytes())
    data[-3] ^= 0xFF  # a flipped bit in the last tensor
    entry.write_bytes(bytes(data))
    cache = WeightsCache(tmp_path)
    again = _load(checkpoints["esm2"], cache)
    assert cache.hits == [] and "do not match their checksum" in caplog.text
    assert _same(first, again)
    # ...and the converted weights were written anew, checksums and all.
    third = WeightsCache(tmp_path)
    assert _same(first, _load(checkpoints["esm2"], third)) and third.hits == ["esm2"]


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
def test_pieces_that_split_tensors_anywhere_are_put_together(checkpoints, tmp_path, monkeypatch, chunk):
    """Pieces read by several threads each cover parts of several tensors (or a part of one)."""
    monkeypatch.setattr(weights_cache, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(weights_cache, "READ_THREADS", 3)
    first = _load(checkpoints["esm2"], WeightsCache(tmp_path))
    meta = next(tmp_path.glob("esm2-*.json"))
    assert len(json.loads(meta.read_text())["chunk_sha256"]) > 1
    cache = WeightsCache(tmp_path)
    assert _same(first, _load(checkpoints["esm2"], cache)) and cache.hits == ["esm2"]


def test_another_source_or_dtype_is_another_entry(checkpoints, tmp_path):
    _load(checkpoints["esm2"], WeightsCache(tmp_path))
    _load(checkpoints["esm2"], WeightsCache(tmp_path), dtype=torch.bfloat16)
    assert len(list(tmp_path.glob("esm2-*.safetensors"))) == 2
    stat = os.stat(checkpoints["esm2"])
    os.utime(checkpoints["esm2"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file replaced in place
    cache = WeightsCache(tmp_path)
    _load(checkpoints["esm2"], cache)
    assert cache.hits == [] and len(list(tmp_path.glob("esm2-*.safetensors"))) == 3
