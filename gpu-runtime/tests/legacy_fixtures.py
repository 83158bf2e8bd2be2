"""Folders as the original VirNucPro and each version of the multi-GPU fork leave them, for the
import tests (written from their source: prediction.py/units.py at 0f93f27; virnucpro-broad
0.x at 66e2128, 1.0 at ac376d2, 2.0 at tag v2.0). Also a command for the mocha tests:

    python gpu-runtime/tests/legacy_fixtures.py LAYOUT INPUT OUT_DIR WORK_DIR [--esm-files K,K] [--per-file N]

WORK_DIR is the work folder of a `predict --embeddings` run of INPUT: the fixture files carry
its frames (prepare/*/frames-*.arrow) and their vectors (embed/*/results-*.arrow)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

LAYOUTS = ("original", "fork-0.x", "fork-1.0", "fork-1.0-multigpu", "fork-2.0-multigpu", "fork-2.0-batches")
PER_FILE = 10000


def _fasta(path: Path, records, wrap: int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for name, sequence in records:
            handle.write(f">{name}\n")
            lines = [sequence] if wrap is None else [sequence[i:i + wrap] for i in range(0, len(sequence), wrap)]
            handle.write("".join(f"{line}\n" for line in lines))


def _save(path: Path, content: dict, versioned: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if versioned:  # the fork's atomic_save from 1.0 on: version + status keys, then X.pt.done
        content = {**content, "version": "1.0", "status": "complete"}
    torch.save(content, path)
    if versioned:
        path.with_name(path.name + ".done").touch()


def write_run(layout: str, input_path: Path, out_dir: Path, frames, dnabert, esm2, esm_files=None, expected_length=500,
              per_file=PER_FILE, merged=True) -> Path:
    """Write ``layout``'s files for ``frames`` [(id, nucleotide, protein)] with vectors
    ``dnabert``/``esm2`` {id: float32 array}; ``esm_files``: the 1-based file numbers whose ESM-2
    step finished (None: all). Returns the prefix below which the files are."""
    assert layout in LAYOUTS, layout
    original = layout == "original"
    prefix = Path(str(input_path).split(".fa")[0]) if original else out_dir / input_path.stem
    wrap = None if original else 60
    versioned = layout.startswith(("fork-1.0", "fork-2.0"))
    multigpu = layout.endswith("multigpu")
    name = lambda suffix: prefix.with_name(prefix.name + suffix)  # noqa: E731
    name(f"_chunked{expected_length}.fa").parent.mkdir(parents=True, exist_ok=True)
    name(f"_chunked{expected_length}.fa").write_text(">chunks\nACGT\n")
    nucleotide_fa, protein_fa = ("_identified_nucleotide.fa", "_identified_protein.faa") if original else ("_nucleotide.fa", "_protein.faa")
    _fasta(name(nucleotide_fa), [(f, n) for f, n, _ in frames], None)
    _fasta(name(protein_fa), [(f, p) for f, _, p in frames], None)
    files = [frames[i:i + per_file] for i in range(0, len(frames), per_file)]
    batch_ids, batch_vectors = [], []
    for k, part in enumerate(files, start=1):
        ids = [f for f, _, _ in part]
        _fasta(name("_nucleotide") / f"output_{k}.fa", [(f, n) for f, n, _ in part], wrap)
        _fasta(name("_protein") / f"output_{k}.fa", [(f, p) for f, _, p in part], wrap)
        dnabert_name = f"output_{k}_DNABERT.pt" if multigpu else f"output_{k}_DNABERT_S.pt"
        _save(name("_nucleotide") / dnabert_name,
              {"nucleotide": ids, "data": [{"label": f, "mean_representation": dnabert[f].tolist()} for f in ids]}, versioned)
        esm_done = esm_files is None or k in esm_files
        if layout == "fork-2.0-batches":
            if esm_done:  # finished batches of the ESM-2 stage, checkpointed per GPU rank
                batch_ids += ids
                batch_vectors += [esm2[f] for f in ids]
            continue
        if not esm_done:
            continue
        # The original's ESM-2 file comes out length-sorted (fair-esm's batching); the fork's in FASTA order.
        order = sorted(range(len(part)), key=lambda i: (len(part[i][2]), i)) if original else range(len(part))
        proteins = [part[i][0] for i in order]
        content = {"proteins": proteins, "data": [torch.tensor(esm2[f]) for f in proteins]}
        if layout == "fork-2.0-multigpu":
            # Converted from HDF5 with plain torch.save, under the DNABERT file's name.
            _save(name("_protein") / dnabert_name, content, versioned=False)
        else:
            _save(name("_protein") / f"output_{k}_ESM.pt", content, versioned)
        if merged:
            merged_name = f"output_{k}_DNABERT_merged.pt" if multigpu else f"output_{k}_merged.pt"
            data = torch.stack([torch.cat([torch.tensor(dnabert[f]), torch.tensor(esm2[f])]) for f in ids])
            _save(name("_merged") / merged_name, {"ids": ids, "data": data}, versioned)
    if not original:
        _pipeline_state(out_dir / ".checkpoints", expected_length, esm_files is None)
    if layout == "fork-2.0-batches" and batch_ids:
        shard = out_dir / ".checkpoints" / "shard_0"
        shard.mkdir(parents=True, exist_ok=True)
        batch = shard / "batch_00000.pt"
        metadata = {"batch_idx": 0, "num_sequences": len(batch_ids), "trigger_reason": "final", "model_dtype": "torch.bfloat16"}
        torch.save({"embeddings": np.stack(batch_vectors).astype(np.float32), "sequence_ids": batch_ids, "metadata": metadata}, batch, pickle_protocol=4)
        batch.with_name(batch.name + ".done").touch()
        manifest = {"version": "2.0", "world_size": 1, "shards": {"0": {"status": "in_progress", "checkpoints": [{"batch_idx": 0, "file": batch.name}]}}}
        (out_dir / ".checkpoints" / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return prefix


def _pipeline_state(folder: Path, expected_length: int, complete: bool) -> None:
    stages = ["CHUNKING", "TRANSLATION", "NUCLEOTIDE_SPLITTING", "PROTEIN_SPLITTING", "NUCLEOTIDE_FEATURES",
              "PROTEIN_FEATURES", "FEATURE_MERGING", "PREDICTION", "CONSENSUS"]
    done = 5 if not complete else len(stages)
    state = {
        "created_at": "2026-01-22T17:27:41.213038",
        "pipeline_config": {"config_hash": "0" * 64, "expected_length": expected_length, "model_path": f"{expected_length}_model.pth"},
        "stages": {s: {"status": "completed" if i < done else ("in_progress" if i == done else "not_started"), "started_at": None,
                       "completed_at": None, "duration_seconds": None, "inputs": {}, "outputs": {}, "error": None}
                   for i, s in enumerate(stages)},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline_state.json").write_text(json.dumps(state, indent=2))


def _vectors_of(work: Path):
    """Frames and their vectors from a run's frame shards and its shard results with embeddings."""
    import pyarrow.ipc as ipc

    frames, dnabert, esm2 = [], {}, {}
    shards = {p.name.removeprefix("frames-"): p for p in work.glob("prepare/*/frames-*.arrow")}
    for path in sorted(work.glob("embed/*/results-*.arrow")):
        results = ipc.open_file(str(path)).read_all()
        shard = ipc.open_file(str(shards[path.name.removeprefix("results-")])).read_all()
        ids = results.column("frame_id").to_pylist()
        assert ids == shard.column("frame_id").to_pylist()
        d = results.column("dnabert").combine_chunks().flatten().to_numpy().reshape(len(ids), 768)
        e = results.column("esm2").combine_chunks().flatten().to_numpy().reshape(len(ids), 2560)
        for i, (f, n, p) in enumerate(zip(ids, shard.column("nucleotide").to_pylist(), shard.column("protein").to_pylist())):
            frames.append((f, n, p))
            dnabert[f], esm2[f] = d[i].copy(), e[i].copy()
    return frames, dnabert, esm2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("layout", choices=LAYOUTS)
    parser.add_argument("input", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("work", type=Path, help="the work folder of a predict --embeddings run of INPUT")
    parser.add_argument("--esm-files", default=None, help="comma-separated file numbers whose ESM-2 step finished (default all)")
    parser.add_argument("--per-file", type=int, default=PER_FILE)
    parser.add_argument("--expected-length", type=int, default=500)
    args = parser.parse_args(argv)
    frames, dnabert, esm2 = _vectors_of(args.work)
    esm_files = None if args.esm_files is None else {int(k) for k in args.esm_files.split(",") if k}
    prefix = write_run(args.layout, args.input.resolve(), args.out_dir.resolve(), frames, dnabert, esm2, esm_files,
                       args.expected_length, args.per_file)
    print(json.dumps({"prefix": str(prefix), "frames": len(frames)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
