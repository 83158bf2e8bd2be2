import json

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from pathlib import Path

from virnucpro_runtime import formats, shards


def keys(frame_ids, records=None, chunks=None):
    n = len(frame_ids)
    return shards.FrameKeys.of(frame_ids, records if records is not None else range(n), chunks if chunks is not None else [0] * n)


def write_shard(path, n=5):
    return shards.write_frames(
        path,
        keys([f"r{i}_chunk_1F1" for i in range(n)]),
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
    assert shard.keys.record_index.tolist() == [0, 1, 2, 3, 4] and shard.keys.chunk_index.tolist() == [0] * 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".done"]  # no temporaries left


def test_marker_rejects_a_file_changed_after_it_was_written(tmp_path):
    path = tmp_path / "frames-00000.arrow"
    write_shard(path)
    with open(path, "ab") as handle:
        handle.write(b"x")
    with pytest.raises(shards.ShardError, match="does not match"):
        shards.verify_marker(path)


def test_results_hold_the_frames_keys_scores_and_optional_embeddings(tmp_path):
    rng = np.random.default_rng(0)
    scores = rng.random((4, 2), dtype=np.float32)
    path = tmp_path / "results-00000.arrow"
    shards.write_table_atomically(path, shards.results_table(keys(list("abcd"), [7, 7, 8, 8], [0, 1, 0, 0]), scores, rng.random((4, 768)), rng.random((4, 2560))))
    table = shards.read_results(path)
    assert table.column_names[:5] == ["frame_id", "record_index", "chunk_index", "score_others", "score_virus"]
    assert table.column("record_index").to_pylist() == [7, 7, 8, 8] and table.column("chunk_index").to_pylist() == [0, 1, 0, 0]
    assert table.schema.field("record_index").type == pa.uint32() == table.schema.field("chunk_index").type
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
    with pytest.raises(shards.ShardError, match=f"version 9 was written by a newer virnucpro .* reads up to version {formats.FRAMES['version']}"):
        shards.read_frames(path)
    with pytest.raises(shards.ShardError, match="no such file"):
        shards.read_frames(tmp_path / "missing.arrow")


FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def test_a_version_1_frame_shard_reads_through_its_migration():
    shard = shards.read_frames(FIXTURES / "frames-v1.arrow")
    assert shard.frame_ids == ["r1_chunk_1F1", "r1_chunk_1R2", "r2_chunk_1F3"]
    assert shard.keys.chunk_index.tolist() == [0, 0, 0]
    assert shard.proteins == ["MKPG", "MF", "MP"] and shard.imported == {}


def test_a_version_2_frame_shard_gets_its_chunk_index_from_the_frame_ids():
    # The fixture's third record is named r2_chunk_1: only the last _chunk_<k> counts.
    table = shards.read_frames_table(FIXTURES / "frames-v2.arrow")
    assert table.column_names[:3] == ["frame_id", "record_index", "chunk_index"]
    assert table.schema.metadata[b"virnucpro.version"] == str(formats.FRAMES["version"]).encode()
    shard = shards.read_frames(FIXTURES / "frames-v2.arrow")
    assert shard.frame_ids == ["r1_chunk_1F1", "r1_chunk_2R2", "r2_chunk_1_chunk_1F3"]
    assert shard.keys.record_index.tolist() == [0, 0, 1] and shard.keys.chunk_index.tolist() == [0, 1, 0]
    assert shard.imported["esm2"].rows.tolist() == [0] and "dnabert" not in shard.imported


def test_a_version_1_result_is_upgraded_with_the_records_tables_ids():
    table = shards.read_results(FIXTURES / "results-v1.arrow", record_index_of={"r1": 4, "r2_chunk_1": 5})
    assert table.column_names == ["frame_id", "record_index", "chunk_index", "score_others", "score_virus"]
    assert table.column("record_index").to_pylist() == [4, 4, 5] and table.column("chunk_index").to_pylist() == [0, 1, 0]
    assert table.column("score_virus").to_pylist() == [0.25, 0.875, 0.5]
    with pytest.raises(shards.ShardError, match="results version 1: .*records table"):
        shards.read_results(FIXTURES / "results-v1.arrow")
    with pytest.raises(shards.ShardError, match="record 'r2_chunk_1' of a frame id is not in the records table"):
        shards.read_results(FIXTURES / "results-v1.arrow", record_index_of={"r1": 0})


def test_every_older_version_has_a_migration_and_a_fixture():
    for table in formats.TABLES.values():
        for version in range(1, table["version"]):
            assert (table["format"], version) in formats.MIGRATIONS
            short = table["format"].removeprefix("virnucpro.")
            assert (FIXTURES / f"{short}-v{version}.arrow").exists(), f"fixture of {short} v{version}"


def test_imported_embeddings_travel_in_the_frame_shard(tmp_path):
    path = tmp_path / "frames-00000.arrow"
    vector = [0.5] * 768
    shards.write_frames(path, keys(["a", "b", "c"], [0, 0, 1]), ["ACGT"] * 3, ["MK"] * 3, {"dnabert": [vector, None, vector]})
    shard = shards.read_frames(path)
    assert shard.imported["dnabert"].rows.tolist() == [0, 2]
    assert shard.imported["dnabert"].values.shape == (2, 768) and "esm2" not in shard.imported


def test_an_imported_column_of_the_wrong_width_is_refused(tmp_path):
    path = tmp_path / "frames-00000.arrow"
    table = shards.frames_table(keys(["a"]), ["ACGT"], ["MK"])
    table = table.append_column(pa.field("esm2", pa.list_(pa.float32(), 3)), pa.array([[1.0, 2.0, 3.0]], pa.list_(pa.float32(), 3)))
    shards.write_table_atomically(path, table)
    with pytest.raises(shards.ShardError, match=r"column 'esm2' must be fixed_size_list<float32>\[2560\]"):
        shards.read_frames(path)
