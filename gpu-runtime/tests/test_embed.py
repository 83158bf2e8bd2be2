"""The embed command end to end on the tiny synthetic models."""

from __future__ import annotations

import argparse
import gzip

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from fixtures_models import dna_of_lengths, packed_proteins, proteins_of_lengths, relative_error
from virnucpro_runtime import synthetic
from virnucpro_runtime.measure import embed
from virnucpro_runtime.models.esm2 import mean_residues_packed
from virnucpro_runtime.tokenizers import DnaTokenizer


# Rows batched differently run differently shaped matmuls; at the real 2560 width a loaded
# 2-core machine once showed 4e-5 between batched and single-sequence fp32 results
# (usually < 5e-7). A row landing in the wrong place would differ by O(1).
BATCHING_TOL = 1e-4


def run_embed(*argv) -> int:
    parser = argparse.ArgumentParser()
    embed.configure(parser)
    return embed.main(parser.parse_args([str(a) for a in argv]))


def write_frame_shard(path, ids, nucleotides, proteins):
    table = pa.table({
        "frame_id": pa.array(ids, pa.string()),
        "record_index": pa.array(range(len(ids)), pa.uint32()),
        "nucleotide": pa.array(nucleotides, pa.string()),
        "protein": pa.array(proteins, pa.string()),
    }).replace_schema_metadata({"virnucpro.format": "virnucpro.frames", "virnucpro.version": "1"})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    directory = tmp_path_factory.mktemp("frames")
    lengths = [166, 100, 12, 166, 80, 1]
    ids = [f"read{i}_chunk_1F{i % 3 + 1}" for i in range(len(lengths))]
    nucleotides = dna_of_lengths([3 * n + 1 for n in lengths])
    proteins = proteins_of_lengths(lengths)
    write_frame_shard(directory / "frames-00000.arrow", ids, nucleotides, proteins)
    return directory / "frames-00000.arrow", ids, nucleotides, proteins


def test_both_models_from_a_frame_shard(tmp_path, frames):
    shard, ids, nucleotides, proteins = frames
    out = tmp_path / "emb.parquet"
    # A small budget forces several length-sorted batches whose rows must land in input order.
    assert run_embed("--model", "both", "--synthetic", "tiny", "--in", shard, "--out", out, "--token-budget", 300) == 0
    table = pq.read_table(out)
    assert table.schema.metadata[b"virnucpro.format"] == b"virnucpro.embeddings"
    assert table.schema.field("esm2").type == pa.list_(pa.float32(), 2560)
    assert table.schema.field("dnabert").type == pa.list_(pa.float32(), 768)
    assert table.column("id").to_pylist() == ids
    esm = np.stack(table.column("esm2").to_numpy(zero_copy_only=False))
    dna = np.stack(table.column("dnabert").to_numpy(zero_copy_only=False))

    esm2 = synthetic.build_esm2("tiny")
    dnabert = synthetic.build_dnabert_s("tiny")
    tokenizer = DnaTokenizer(synthetic.build_dna_tokenizer(dnabert.cfg.vocab_size))
    with torch.no_grad():
        for row in range(len(ids)):  # one sequence at a time, the original's way
            one = packed_proteins([proteins[row]])
            single = mean_residues_packed(esm2.forward_packed(one.tokens, one.cu_seqlens, one.max_seqlen), one.cu_seqlens)[0]
            assert relative_error(torch.from_numpy(esm[row]), single) < BATCHING_TOL
            seq_ids = tokenizer.tokenize([nucleotides[row]])[0]
            hidden = dnabert(torch.from_numpy(seq_ids)[None], torch.tensor([len(seq_ids)]))[0]
            assert relative_error(torch.from_numpy(dna[row]), hidden.mean(dim=0)) < BATCHING_TOL


def test_checkpoint_files_match_in_memory_synthetic(tmp_path, frames):
    """write_checkpoints' files, loaded by weights.py, embed exactly like --synthetic."""
    _, ids, nucleotides, _ = frames
    fasta = tmp_path / "frames.fa.gz"
    with gzip.open(fasta, "wt") as handle:
        for frame_id, seq in zip(ids, nucleotides):
            handle.write(f">{frame_id} some description\n{seq[:60]}\n{seq[60:]}\n")
    paths = synthetic.write_checkpoints("tiny", tmp_path / "ckpt")
    run_embed("--model", "dnabert-s", "--weights", paths["dnabert"], "--in", fasta, "--out", tmp_path / "a.parquet")
    run_embed("--model", "dnabert-s", "--synthetic", "tiny", "--in", fasta, "--out", tmp_path / "b.parquet")
    a, b = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    assert a.column("id").to_pylist() == ids
    assert a.column("dnabert").equals(b.column("dnabert"))


def test_both_needs_a_frame_shard(tmp_path):
    (tmp_path / "p.fa").write_text(">a\nMKV\n")
    with pytest.raises(SystemExit, match="frame shard"):
        run_embed("--model", "both", "--synthetic", "tiny", "--in", tmp_path / "p.fa", "--out", tmp_path / "o.parquet")
