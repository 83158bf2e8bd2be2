import json

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from virnucpro_runtime import shards


def write_shard(path, n=5):
    return shards.write_frames(
        path,
        [f"r{i}_chunk_1F1" for i in range(n)],
        list(range(n)),
        ["ACGT" * (i + 1) for i in range(n)],
        ["MK" * (i + 1) for i in range(n)],
    )


def test_frames_round_trip_through_an_atomic_write_with_a_matching_marker(tmp_path):
    path = tmp_path / "frames-00000.arrow"
    marker = write_shard(path)
    assert marker["rows"] == 5 and marker["file"] == path.name
    assert shards.verify_marker(path) == marker
    shard = shards.read_frames(path)
    assert shard.proteins[2] == "MKMKMK" and shard.frame_ids[0] == "r0_chunk_1F1"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".done"]  # no temporaries left


def test_marker_rejects_a_file_changed_after_it_was_written(tmp_path):
    path = tmp_path / "frames-00000.arrow"
    write_shard(path)
    with open(path, "ab") as handle:
        handle.write(b"x")
    with pytest.raises(shards.ShardError, match="does not match"):
        shards.verify_marker(path)


def test_results_hold_scores_and_optional_embeddings(tmp_path):
    rng = np.random.default_rng(0)
    scores = rng.random((4, 2), dtype=np.float32)
    path = tmp_path / "results-00000.arrow"
    shards.write_table_atomically(path, shards.results_table(list("abcd"), scores, rng.random((4, 768)), rng.random((4, 2560))))
    table = shards.read_results(path)
    assert table.column("score_virus").to_numpy().tolist() == scores[:, 1].tolist()
    assert table.schema.field("esm2").type == pa.list_(pa.float32(), 2560)
    assert json.loads((tmp_path / "results-00000.arrow.done").read_text())["rows"] == 4


def test_wrong_format_or_version_is_refused_clearly(tmp_path):
    path = tmp_path / "other.arrow"
    table = pa.table({"frame_id": ["a"], "nucleotide": ["A"], "protein": ["M"]}).replace_schema_metadata(
        {"virnucpro.format": "virnucpro.frames", "virnucpro.version": "9"}
    )
    with open(path, "wb") as handle, ipc.new_file(handle, table.schema) as writer:
        writer.write_table(table)
    with pytest.raises(shards.ShardError, match="version '9' is not supported"):
        shards.read_frames(path)
    with pytest.raises(shards.ShardError, match="no such shard"):
        shards.read_frames(tmp_path / "missing.arrow")
