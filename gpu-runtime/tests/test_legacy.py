"""Importing what the original VirNucPro and each version of the fork left behind
(legacy.py, legacy_layouts.py), on folders written the way each of them writes them
(legacy_fixtures.py): complete, partial, corrupt, another input's, and nothing modified."""
import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from legacy_fixtures import write_run
from virnucpro_runtime import legacy, legacy_layouts, shards
from virnucpro_runtime.engine import classify
from virnucpro_runtime.models.classifier import load_classifier
from virnucpro_runtime import synthetic

BENCH_FRAMES = Path(__file__).resolve().parents[2] / "bench" / "data" / "frames_500bp.arrow"
N, PER_FILE, SHARD = 30, 10, 12  # 3 legacy files of 10 frames, our shards of 12 (they do not line up)


@pytest.fixture(scope="module")
def full_shard():
    return shards.read_frames(BENCH_FRAMES)


@pytest.fixture(scope="module")
def frames(full_shard):
    return [(full_shard.frame_ids[i], full_shard.nucleotides[i], full_shard.proteins[i]) for i in range(N)]


@pytest.fixture(scope="module")
def vectors(frames):
    rng = np.random.default_rng(7)
    return ({f: rng.standard_normal(768).astype(np.float32) for f, _, _ in frames},
            {f: rng.standard_normal(2560).astype(np.float32) for f, _, _ in frames})


@pytest.fixture
def run_dir(tmp_path, frames, full_shard):
    """Our preparation of the input: the reads file and frame shards of SHARD rows."""
    work = tmp_path / "work"
    paths = []
    for s in range(0, N, SHARD):
        part = frames[s:s + SHARD]
        path = work / f"frames-{s // SHARD:05d}.arrow"
        shards.write_frames(path, full_shard.keys.take(range(s, s + len(part))), [n for _, n, _ in part], [p for _, _, p in part])
        paths.append(str(path))
    reads = tmp_path / "data" / "sample.fasta"
    reads.parent.mkdir()
    reads.write_text(">r\nACGT\n")
    return {"reads": reads, "out": tmp_path / "out", "work": work, "shards": paths}


def _import(run_dir, embeddings=False):
    runs = [r.describe() for r in legacy_layouts.find(str(run_dir["reads"]), str(run_dir["out"]))]
    out = run_dir["work"] / "import"
    out.mkdir(exist_ok=True)
    request = {"shards": run_dir["shards"], "runs": runs, "expected_length": 500, "out_dir": str(out),
               "classifier": None, "synthetic": "tiny", "embeddings": embeddings}
    return runs, legacy.import_into_shards(request)


def _problems(reply):
    return {Path(f["path"]).name: f["problem"] for f in reply["files"] if f["problem"]}


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_a_complete_original_run_scores_every_shard_without_any_embedding_model(run_dir, frames, vectors):
    prefix = write_run("original", run_dir["reads"], run_dir["out"], frames, *vectors, per_file=PER_FILE)
    assert prefix == run_dir["reads"].parent / "sample"
    before = _tree_digest(run_dir["reads"].parent)
    runs, reply = _import(run_dir, embeddings=True)
    assert [r["tool"] for r in runs] == ["VirNucPro"]
    assert _problems(reply) == {}
    assert all(s["result"] is not None and s["frames"] is None for s in reply["shards"])
    classifier = load_classifier(synthetic.cached_checkpoints("tiny")["classifier"])
    for path, shard in zip(run_dir["shards"], reply["shards"]):
        table = shards.read_results(shard["result"]["path"])
        ids = table.column("frame_id").to_pylist()
        keys = shards.read_frames(path).keys
        assert ids == keys.frame_ids and table.column("record_index").to_pylist() == keys.record_index.tolist()
        assert table.column("chunk_index").to_pylist() == keys.chunk_index.tolist()
        dnabert = np.stack([vectors[0][f] for f in ids])
        esm2 = np.stack([vectors[1][f] for f in ids])
        expected = classify(classifier, torch.from_numpy(dnabert), torch.from_numpy(esm2)).numpy()
        assert table.column("score_virus").to_numpy().tolist() == expected[:, 1].tolist()
        assert table.column("esm2").combine_chunks().flatten().to_numpy().reshape(-1, 2560).tolist() == esm2.tolist()
    assert _tree_digest(run_dir["reads"].parent) == before, "the legacy folders are only read"


def test_a_partial_original_run_imports_what_is_there_into_the_shards(run_dir, frames, vectors):
    # All DNABERT-S files, ESM-2 only for file 2 (frames 10-19), no merged files: the common case.
    write_run("original", run_dir["reads"], run_dir["out"], frames, *vectors, esm_files={2}, per_file=PER_FILE, merged=False)
    _, reply = _import(run_dir)
    assert _problems(reply) == {}
    assert [s["imported"] for s in reply["shards"]] == [{"dnabert": 12, "esm2": 2}, {"dnabert": 12, "esm2": 8}, {"dnabert": 6, "esm2": 0}]
    assert all(s["result"] is None for s in reply["shards"])
    second = shards.read_frames(reply["shards"][1]["frames"]["path"])
    assert second.imported["esm2"].rows.tolist() == list(range(0, 8))  # frames 12-19
    np.testing.assert_array_equal(second.imported["esm2"].values[0], vectors[1][frames[12][0]])
    np.testing.assert_array_equal(second.imported["dnabert"].values[5], vectors[0][frames[17][0]])


def test_files_that_fail_a_check_are_named_with_the_reason_and_not_used(run_dir, frames, vectors, tmp_path):
    prefix = write_run("original", run_dir["reads"], run_dir["out"], frames, *vectors, per_file=PER_FILE)
    nucleotide, protein, merged = (prefix.with_name(prefix.name + s) for s in ("_nucleotide", "_protein", "_merged"))
    # Merged files would cover everything: take them away so that each check below shows.
    for path in merged.glob("*.pt"):
        path.unlink()
    # Truncated mid-write.
    data = (protein / "output_1_ESM.pt").read_bytes()
    (protein / "output_1_ESM.pt").write_bytes(data[: len(data) // 2])
    # A non-finite vector.
    content = torch.load(protein / "output_2_ESM.pt", weights_only=True)
    content["data"][3][7] = float("nan")
    torch.save(content, protein / "output_2_ESM.pt")
    # Pickled code instead of data: never run.
    (protein / "output_3_ESM.pt").write_bytes(pickle.dumps(_Evil()))
    # The FASTA beside it says another sequence.
    fasta = (nucleotide / "output_2.fa").read_text().splitlines()
    fasta[1] = "ACGT" + fasta[1][4:] if not fasta[1].startswith("ACGT") else "TTTT" + fasta[1][4:]
    (nucleotide / "output_2.fa").write_text("\n".join(fasta) + "\n")
    _, reply = _import(run_dir)
    problems = _problems(reply)
    assert "cannot be read safely" in problems["output_1_ESM.pt"]
    assert "non-finite value in vector 3" in problems["output_2_ESM.pt"]
    assert "cannot be read safely" in problems["output_3_ESM.pt"] and not _Evil.ran
    assert "another sequence for" in problems["output_2_DNABERT_S.pt"]
    assert set(problems) == {"output_1_ESM.pt", "output_2_ESM.pt", "output_3_ESM.pt", "output_2_DNABERT_S.pt"}
    assert sum(s["imported"]["esm2"] for s in reply["shards"]) == 0
    assert sum(s["imported"]["dnabert"] for s in reply["shards"]) == 20


class _Evil:
    ran = False

    def __reduce__(self):
        return (_Evil._run, ())

    @staticmethod
    def _run():
        _Evil.ran = True
        return {}


def test_another_inputs_files_under_this_name_are_not_used(run_dir, frames, vectors):
    other = [(f"other_{i}_chunk_1F1", n, p) for i, (_, n, p) in enumerate(frames)]
    renamed = tuple({f"other_{i}_chunk_1F1": v[f] for i, (f, _, _) in enumerate(frames)} for v in vectors)
    write_run("original", run_dir["reads"], run_dir["out"], other, *renamed, per_file=PER_FILE)
    _, reply = _import(run_dir)
    problems = _problems(reply)
    assert len(problems) == 9 and all("are not frames of this input" in p for p in problems.values())
    assert all(s["imported"] == {"dnabert": 0, "esm2": 0} for s in reply["shards"])


def test_a_run_with_another_chunk_length_is_not_used(run_dir, frames, vectors):
    write_run("fork-0.x", run_dir["reads"], run_dir["out"], frames, *vectors, per_file=PER_FILE, expected_length=300)
    _, reply = _import(run_dir)
    assert reply["folders"] == [{"folder": str(run_dir["out"] / "sample"), "problem": "that run cut the reads to 300 bp; this run uses 500"}]
    assert all(not f["used"] for f in reply["files"])


@pytest.mark.parametrize("layout", ["fork-0.x", "fork-1.0", "fork-1.0-multigpu", "fork-2.0-multigpu"])
def test_each_fork_version_is_imported(run_dir, frames, vectors, layout):
    write_run(layout, run_dir["reads"], run_dir["out"], frames, *vectors, esm_files={1, 3}, per_file=PER_FILE)
    runs, reply = _import(run_dir)
    assert [r["tool"] for r in runs] == ["virnucpro-broad"]
    assert _problems(reply) == {}
    assert sum(s["imported"]["dnabert"] for s in reply["shards"]) == 30
    assert sum(s["imported"]["esm2"] for s in reply["shards"]) == 20
    if layout == "fork-2.0-multigpu":  # ESM-2 vectors in <stem>_protein/output_<k>_DNABERT.pt
        used = {Path(f["path"]).parent.name + "/" + Path(f["path"]).name: f["models"] for f in reply["files"]}
        assert used["sample_protein/output_1_DNABERT.pt"] == ["esm2"]


def test_fork_files_not_marked_finished_are_not_used(run_dir, frames, vectors):
    prefix = write_run("fork-1.0", run_dir["reads"], run_dir["out"], frames, *vectors, per_file=PER_FILE, merged=False)
    protein = prefix.with_name(prefix.name + "_protein")
    (protein / "output_2_ESM.pt.done").unlink()
    content = torch.load(protein / "output_3_ESM.pt", weights_only=True)
    torch.save({**content, "status": "in_progress"}, protein / "output_3_ESM.pt")
    _, reply = _import(run_dir)
    problems = _problems(reply)
    assert "no .done marker" in problems["output_2_ESM.pt"]
    assert "status 'in_progress'" in problems["output_3_ESM.pt"]
    assert sum(s["imported"]["esm2"] for s in reply["shards"]) == 10


def test_fork_2_0_batch_checkpoints_are_read_and_its_hdf5_is_named(run_dir, frames, vectors):
    write_run("fork-2.0-batches", run_dir["reads"], run_dir["out"], frames, *vectors, esm_files={1, 2}, per_file=PER_FILE)
    (run_dir["out"] / "esm_v2").mkdir()
    (run_dir["out"] / "esm_v2" / "shard_0.h5").write_bytes(b"\x89HDF\r\n")
    _, reply = _import(run_dir)
    problems = _problems(reply)
    assert list(problems) == ["shard_0.h5"] and "HDF5" in problems["shard_0.h5"]
    assert [s["imported"]["esm2"] for s in reply["shards"]] == [12, 8, 0]
    batch = next(f for f in reply["files"] if f["path"].endswith("batch_00000.pt"))
    assert batch["used"] and batch["frames"] == 20


def test_find_uses_each_tools_prefix_rule(tmp_path):
    assert legacy_layouts.original_prefix("/d/reads.fasta") == "/d/reads"
    assert legacy_layouts.original_prefix("/d/reads.fa.gz") == "/d/reads"
    assert legacy_layouts.original_prefix("/d/reads.fna") == "/d/reads.fna"  # prediction.py's split('.fa')
    assert legacy_layouts.fork_prefix("/d/reads.fa.gz", "/o") == "/o/reads.fa"  # pathlib's stem
    assert legacy_layouts.find(str(tmp_path / "nothing.fa"), str(tmp_path / "out")) == []
