"""Embeddings that the original VirNucPro or the multi-GPU fork already computed for this
input, imported into the run's frame shards so that only what is missing is computed
(``python -m virnucpro_runtime import-legacy REQUEST``, the pipeline's import step).

No file is trusted. Each is read without executing pickled code (weights_pickle's
allow-list: tensors, plain data and numpy arrays only), and used only when
- its ids are frames of *this* run's preparation: no unknown id, none twice, one vector each;
- the FASTA the tool wrote beside it, where there is one, lists the same frames with the same
  sequences as ours;
- its vectors have the model's width and are all finite;
- where the tool marks finished files (the fork's ``X.pt.done``, ``status: complete``), it is
  marked finished;
- the run it belongs to used our chunk length (``<prefix>_chunked<L>.fa``, the fork's
  ``pipeline_state.json``).
A file that fails is reported with the reason, and its frames are computed. Nothing in the
legacy folders is written. Where the files are is ``legacy_layouts``'s.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import torch

from . import legacy_layouts as layouts
from . import shards
from .shards import EMBEDDING_WIDTHS
from .weights_pickle import restricted_load

MERGED_WIDTH = EMBEDDING_WIDTHS["dnabert"] + EMBEDDING_WIDTHS["esm2"]


class LegacyFileError(Exception):
    """Why one legacy file cannot be used."""


@dataclass(frozen=True)
class Content:
    """What a file holds, told by its keys (names lie: the fork's v2.0 writes ESM-2 vectors to
    ``_protein/output_<k>_DNABERT.pt`` on several GPUs)."""

    ids_key: str
    models: tuple[str, ...]
    # The frames' column that the FASTA beside the file must match (None: no FASTA there).
    fasta_column: str | None


CONTENTS = (
    Content("nucleotide", ("dnabert",), "nucleotide"),  # {'nucleotide': [id], 'data': [{'label', 'mean_representation'}]}
    Content("proteins", ("esm2",), "protein"),  # {'proteins': [id], 'data': [Tensor(2560)]} (the original: length-sorted)
    Content("ids", ("dnabert", "esm2"), "nucleotide"),  # {'ids': [id], 'data': Tensor[N, 3328]}
    Content("sequence_ids", ("esm2",), None),  # fork v2.0 batch: {'embeddings': ndarray[N, 2560], 'sequence_ids', 'metadata'}
)
FINISHED_STATUS = "complete"


@dataclass
class FrameIndex:
    """This run's frames: where each one is, and its two sequences (for the FASTA checks)."""

    rows: dict[str, tuple[int, int]]  # frame id -> (shard, row)
    tables: list[pa.Table]

    @classmethod
    def of(cls, shard_paths: list[str]) -> "FrameIndex":
        tables = [shards.read_frames_table(p) for p in shard_paths]
        rows = {}
        for s, table in enumerate(tables):
            rows.update((frame_id, (s, r)) for r, frame_id in enumerate(table.column("frame_id").to_pylist()))
        return cls(rows=rows, tables=tables)

    def sequence(self, column: str, frame_id: str) -> str:
        s, r = self.rows[frame_id]
        return self.tables[s].column(column)[r].as_py()


@dataclass
class Verdict:
    """What became of one legacy file."""

    path: str
    models: tuple[str, ...] = ()
    frames: int = 0
    used: bool = False
    problem: str | None = None

    def describe(self) -> dict:
        return {"path": self.path, "models": list(self.models), "frames": self.frames, "used": self.used, "problem": self.problem}


def safe_load(path: Path):
    """A .pt file's content without running pickled code (weights_pickle's allow-list:
    tensors, plain data, numpy arrays)."""
    try:
        return restricted_load(path)
    except Exception as exc:  # noqa: BLE001 - every way a file can be unreadable is a reason to skip it
        text = str(exc).strip().removeprefix(f"{path}: ")
        raise LegacyFileError(f"cannot be read safely ({(text.splitlines()[0] if text else type(exc).__name__)[:240]})") from None


def _as_matrix(data, width: int, count: int) -> np.ndarray:
    """``data`` (a [N, width] tensor or array, or a list of tensors, float lists or the
    original's DNABERT-S dicts) as float32 [N, width], after the shape and finiteness checks."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.array(data))
    if isinstance(data, torch.Tensor):
        matrix = data
    elif isinstance(data, (list, tuple)):
        if len(data) != count:
            raise LegacyFileError(f"lists {count} ids but {len(data)} vectors")
        rows = [row.get("mean_representation") if isinstance(row, dict) else row for row in data]
        try:
            matrix = torch.stack([torch.as_tensor(row, dtype=torch.float32).reshape(-1) for row in rows]) if rows else torch.empty(0, width)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise LegacyFileError(f"has vectors of unequal or unusable shape ({str(exc)[:120]})") from None
    else:
        raise LegacyFileError(f"has 'data' of type {type(data).__name__}, expected a tensor or a list of vectors")
    if matrix.ndim != 2 or matrix.shape[1] != width:
        raise LegacyFileError(f"has vectors of shape {list(matrix.shape)}, expected [N, {width}]")
    if matrix.shape[0] != count:
        raise LegacyFileError(f"lists {count} ids but {matrix.shape[0]} vectors (which id a vector belongs to is unknown)")
    if not matrix.is_floating_point():
        raise LegacyFileError(f"has vectors of type {matrix.dtype}, expected floating point")
    matrix = matrix.to(torch.float32)
    finite = torch.isfinite(matrix).all(dim=1)
    if not bool(finite.all()):
        raise LegacyFileError(f"has a non-finite value in vector {int((~finite).nonzero()[0])}")
    return matrix.numpy()


def _read_fasta(path: Path) -> Iterator[tuple[str, str]]:
    """(id, sequence) of a FASTA file, sequences on one line (the original) or wrapped (the fork)."""
    name, parts = None, []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    yield name, "".join(parts)
                header = line[1:].split()
                name, parts = (header[0] if header else ""), []
            elif line:
                parts.append(line)
    if name is not None:
        yield name, "".join(parts)


def _fasta_beside(path: Path, content: Content) -> Path | None:
    stem = layouts.EMBEDDING_FILE.fullmatch(path.name)
    if content.fasta_column is None or stem is None:
        return None
    folder = path.parent
    if content.models == ("dnabert", "esm2"):  # merged: the frames are listed in P_nucleotide/
        folder = folder.with_name(folder.name.removesuffix("_merged") + "_nucleotide")
    return folder / f"{stem.group('stem')}.fa"


def read_file(path: Path, frames: FrameIndex) -> tuple[list[str], dict[str, np.ndarray]]:
    """The ids of one legacy file and its verified vectors per model (rows in the ids' order);
    LegacyFileError when any check fails."""
    loaded = safe_load(path)
    if not isinstance(loaded, dict):
        raise LegacyFileError(f"holds a {type(loaded).__name__}, expected a dict")
    content = next((c for c in CONTENTS if c.ids_key in loaded), None)
    if content is None:
        raise LegacyFileError(f"holds none of the known layouts (keys: {', '.join(map(str, loaded))[:200]})")
    status = loaded.get("status")
    if status is not None and status != FINISHED_STATUS:
        raise LegacyFileError(f"is marked status {status!r}, not {FINISHED_STATUS!r}: the run stopped while writing it")
    ids = loaded[content.ids_key]
    if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids):
        raise LegacyFileError(f"has no list of ids under {content.ids_key!r}")
    ids = list(ids)
    if len(set(ids)) != len(ids):
        raise LegacyFileError("lists a frame id twice")
    unknown = [i for i in ids if i not in frames.rows]
    if unknown:
        raise LegacyFileError(
            f"{len(unknown)} of its {len(ids)} ids are not frames of this input (first: {unknown[0]!r}): "
            "written for another input or with other settings"
        )
    fasta = _fasta_beside(path, content)
    if fasta is not None and fasta.exists():
        listed = dict(_read_fasta(fasta))
        if set(listed) != set(ids):
            raise LegacyFileError(f"lists {len(ids)} ids, not the {len(listed)} frames of {fasta} beside it")
        for frame_id, sequence in listed.items():
            if sequence.upper() != frames.sequence(content.fasta_column, frame_id):
                raise LegacyFileError(f"{fasta} has another sequence for {frame_id!r} than this input gives")
    data = loaded.get("embeddings" if content.ids_key == "sequence_ids" else "data")
    if data is None:
        raise LegacyFileError("has no vectors ('data')")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        for i, row in enumerate(data):
            if row.get("label") != ids[i]:
                raise LegacyFileError(f"labels vector {i} {row.get('label')!r} but lists it as {ids[i]!r}")
    width = MERGED_WIDTH if len(content.models) == 2 else EMBEDDING_WIDTHS[content.models[0]]
    matrix = _as_matrix(data, width, len(ids))
    if len(content.models) == 2:  # concat(DNABERT-S, ESM-2), DNABERT-S first, as the original merges
        split = EMBEDDING_WIDTHS["dnabert"]
        return ids, {"dnabert": matrix[:, :split], "esm2": matrix[:, split:]}
    return ids, {content.models[0]: matrix}


def run_problem(run: dict, expected_length: int) -> str | None:
    """Why none of a run's files can be used: it chunked the reads to another length."""
    lengths = set()
    prefix = Path(run["prefix"])
    for entry in run["files"]:
        path = Path(entry["path"])
        match = layouts.CHUNKED_FILE.search(path.name)
        if match and path.parent == prefix.parent and path.name == f"{prefix.name}_chunked{match.group('length')}.fa":
            lengths.add(int(match.group("length")))
        if path.name == layouts.PIPELINE_STATE:
            try:
                length = json.loads(path.read_text()).get("pipeline_config", {}).get("expected_length")
            except (OSError, ValueError, AttributeError):
                length = None
            if isinstance(length, int):
                lengths.add(length)
    if lengths and expected_length not in lengths:
        return f"that run cut the reads to {', '.join(map(str, sorted(lengths)))} bp; this run uses {expected_length}"
    return None


@dataclass
class Imports:
    """The verified vectors per model by frame id, and what became of every file."""

    vectors: dict[str, dict[str, np.ndarray]] = field(default_factory=lambda: {m: {} for m in EMBEDDING_WIDTHS})
    verdicts: list[Verdict] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)


def collect(runs: list[dict], frames: FrameIndex, expected_length: int, say=lambda message: None) -> Imports:
    """Every usable vector of ``runs`` (legacy_layouts.LegacyRun.describe()); the first file to
    give a frame's vector wins (files in the order ``find`` lists them)."""
    found = Imports()
    for run in runs:
        problem = run_problem(run, expected_length)
        found.runs.append({"tool": run["tool"], "prefix": run["prefix"], "problem": problem})
        paths = [Path(f["path"]) for f in run["files"]]
        names = {p.name for p in paths}
        # Where the tool marks finished files (`X.pt.done`), a file without its mark was being
        # written when that run stopped.
        marked_folders = {p.parent for p in paths if p.name.endswith(".pt.done")}
        for path in paths:
            is_batch = layouts.BATCH_FILE.fullmatch(path.name) is not None
            if path.suffix == ".h5":
                found.verdicts.append(Verdict(str(path), ("esm2",), problem=(
                    "HDF5 vectors of the fork's v2.0 ESM-2 stage are not read (that stage converts them to "
                    "output_<k>_ESM.pt files when it finishes; its batch checkpoints are read)")))
                continue
            if not (layouts.EMBEDDING_FILE.fullmatch(path.name) or is_batch):
                continue
            verdict = Verdict(str(path))
            found.verdicts.append(verdict)
            say(f"reading {path}")
            try:
                if problem:
                    raise LegacyFileError(problem)
                needs_mark = is_batch or path.parent in marked_folders
                if needs_mark and f"{path.name}.done" not in names:
                    raise LegacyFileError("has no .done marker beside it: the run stopped while writing it")
                ids, vectors = read_file(path, frames)
            except LegacyFileError as exc:
                verdict.problem = str(exc)
                continue
            verdict.models, verdict.frames, verdict.used = tuple(vectors), len(ids), True
            for model, matrix in vectors.items():
                table = found.vectors[model]
                for i, frame_id in enumerate(ids):
                    table.setdefault(frame_id, matrix[i])
    return found


class _Classifier:
    """The classifier for shards whose frames all have both embeddings, loaded on first use."""

    def __init__(self, path: str | None, synthetic: str | None):
        self.path, self.synthetic, self.model = path, synthetic, None

    def scores(self, dnabert: np.ndarray, esm2: np.ndarray) -> np.ndarray:
        from .engine import classify
        from .models.classifier import load_classifier

        if self.model is None:
            path = self.path
            if path is None and self.synthetic is not None:
                from . import synthetic

                path = str(synthetic.cached_checkpoints(self.synthetic)["classifier"])
            if path is None:
                raise LegacyFileError("no classifier weights given")
            self.model = load_classifier(path, "cpu").float().eval()
        return classify(self.model, torch.from_numpy(dnabert), torch.from_numpy(esm2)).numpy()


def import_into_shards(request: dict, say=lambda message: None) -> dict:
    """The import step: the reply lists, per shard, what was imported and the file written for
    it (a frame shard with imported columns, or the result of a shard that needed no model)."""
    frames = FrameIndex.of(request["shards"])
    found = collect(request["runs"], frames, request["expected_length"], say)
    classifier = _Classifier(request.get("classifier"), request.get("synthetic"))
    out_dir = Path(request["out_dir"])
    replies = []
    for path, table in zip(request["shards"], frames.tables):
        name = Path(path).name.removeprefix("frames-").removesuffix(".arrow")
        keys = shards.FrameKeys.from_table(table, Path(path))
        ids = keys.frame_ids
        columns = {model: [found.vectors[model].get(i) for i in ids] for model in EMBEDDING_WIDTHS}
        counts = {model: sum(v is not None for v in vectors) for model, vectors in columns.items()}
        reply = {"rows": len(ids), "imported": counts, "frames": None, "result": None}
        if ids and all(count == len(ids) for count in counts.values()):
            started = time.perf_counter()
            dnabert, esm2 = (np.stack(columns[m]).astype(np.float32) for m in ("dnabert", "esm2"))
            scores = classifier.scores(dnabert, esm2)
            keep = request.get("embeddings", False)
            marker = shards.write_table_atomically(
                out_dir / f"results-{name}.arrow", shards.results_table(keys, scores, dnabert if keep else None, esm2 if keep else None)
            )
            reply["result"] = {"path": str(out_dir / marker["file"]), "rows": marker["rows"], "bytes": marker["bytes"],
                               "sha256": marker["sha256"], "seconds": round(time.perf_counter() - started, 3)}
        elif any(counts.values()):
            with_imports = table
            for model, vectors in columns.items():
                if counts[model]:
                    with_imports = with_imports.append_column(
                        pa.field(model, pa.list_(pa.float32(), EMBEDDING_WIDTHS[model]), nullable=True),
                        pa.array(vectors, pa.list_(pa.float32(), EMBEDDING_WIDTHS[model])),
                    )
            marker = shards.write_table_atomically(out_dir / f"frames-{name}.arrow", with_imports)
            reply["frames"] = {"path": str(out_dir / marker["file"]), "rows": marker["rows"], "bytes": marker["bytes"], "sha256": marker["sha256"]}
        replies.append(reply)
    return {
        "files": [v.describe() for v in found.verdicts],
        "folders": [{"folder": r["prefix"], "problem": r["problem"]} for r in found.runs if r["problem"]],
        "shards": replies,
    }


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    say = lambda message: print(json.dumps({"progress": message}), flush=True)  # noqa: E731
    print(json.dumps(import_into_shards(request, say)), flush=True)
    return 0
