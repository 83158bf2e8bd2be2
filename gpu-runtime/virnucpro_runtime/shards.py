"""Frame shards in, shard results out (docs/data-formats.md).

Results are written the way every step of the pipeline writes: to ``X.tmp-<random>``,
fsync, rename to ``X``, fsync the directory, then the ``X.done`` marker the same way. A
consumer trusts ``X`` only through a marker whose size and checksum match.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import BinaryIO, Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from . import formats
from .formats import FILE_MARKER_VERSION as MARKER_VERSION

# Widths of the two embeddings (DNABERT-S, ESM-2) wherever a table holds them.
EMBEDDING_WIDTHS = {"dnabert": 768, "esm2": 2560}


class ShardError(Exception):
    """A shard that cannot be used (missing, wrong format or version, bad columns)."""


@dataclass(frozen=True)
class Imported:
    """Embeddings of some of a shard's frames taken from an earlier run's files."""

    rows: np.ndarray  # int64 row numbers in the shard
    values: np.ndarray  # float32 [len(rows), width]


# The columns that identify a frame, in the frame shard and in its result alike.
KEY_FIELDS = (("frame_id", pa.utf8()), ("record_index", pa.uint32()), ("chunk_index", pa.uint32()))


@dataclass(frozen=True)
class FrameKeys:
    """What identifies each frame: its id as the original names it, and the input record and
    chunk (0-based) it was cut from. Read from the frame shard and written into its result as
    they are, so that the output writers join on them instead of taking ids apart."""

    frame_ids: list[str]
    record_index: np.ndarray  # uint32
    chunk_index: np.ndarray  # uint32

    def __post_init__(self) -> None:
        assert len(self.frame_ids) == len(self.record_index) == len(self.chunk_index)

    def __len__(self) -> int:
        return len(self.frame_ids)

    @classmethod
    def of(cls, frame_ids, record_index, chunk_index) -> "FrameKeys":
        return cls(list(frame_ids), np.asarray(record_index, dtype=np.uint32), np.asarray(chunk_index, dtype=np.uint32))

    @classmethod
    def from_table(cls, table: pa.Table, path: Path) -> "FrameKeys":
        for name, kind in KEY_FIELDS:
            if name not in table.column_names:
                raise ShardError(f"{path}: column {name!r} is missing")
            found = table.schema.field(name).type
            if found != kind and not (kind == pa.utf8() and pa.types.is_large_string(found)):
                raise ShardError(f"{path}: column {name!r} must be {kind}, found {found}")
            if table.column(name).null_count:
                raise ShardError(f"{path}: column {name!r} has null values")
        return cls.of(table.column("frame_id").to_pylist(), table.column("record_index").to_numpy(), table.column("chunk_index").to_numpy())

    def take(self, rows) -> "FrameKeys":
        rows = np.asarray(rows, dtype=np.int64)
        return FrameKeys([self.frame_ids[r] for r in rows], self.record_index[rows], self.chunk_index[rows])

    def columns(self) -> dict[str, pa.Array]:
        return {
            "frame_id": pa.array(self.frame_ids, pa.utf8()),
            "record_index": pa.array(self.record_index, pa.uint32()),
            "chunk_index": pa.array(self.chunk_index, pa.uint32()),
        }


@dataclass(frozen=True)
class FrameShard:
    keys: FrameKeys
    nucleotides: list[str]
    proteins: list[str]
    # "dnabert" / "esm2" -> what was imported for that model (frames v2 columns); absent: none.
    imported: dict[str, Imported] = field(default_factory=dict)

    @property
    def frame_ids(self) -> list[str]:
        return self.keys.frame_ids

    def __len__(self) -> int:
        return len(self.keys)


def frames_schema(imported: tuple[str, ...] = ()) -> pa.Schema:
    fields = [*KEY_FIELDS, ("nucleotide", pa.utf8()), ("protein", pa.utf8())]
    fields += [pa.field(name, pa.list_(pa.float32(), EMBEDDING_WIDTHS[name]), nullable=True) for name in imported]
    return pa.schema(fields, metadata=formats.metadata(formats.FRAMES))


def _read_table(path: Path, expected: dict, **context) -> pa.Table:
    try:
        with pa.memory_map(str(path)) as source:
            table = ipc.open_file(source).read_all()
    except FileNotFoundError:
        raise ShardError(f"{path}: no such file") from None
    except pa.ArrowInvalid as exc:
        raise ShardError(f"{path}: not an Arrow IPC file ({exc})") from None
    try:
        return formats.upgraded(table, expected, path, **context)
    except formats.FormatError as exc:
        raise ShardError(str(exc)) from None


def _imported_column(table: pa.Table, name: str, path: Path) -> Imported | None:
    if name not in table.column_names:
        return None
    column = table.column(name).combine_chunks()
    width = EMBEDDING_WIDTHS[name]
    if not pa.types.is_fixed_size_list(column.type) or column.type.list_size != width or column.type.value_type != pa.float32():
        raise ShardError(f"{path}: column {name!r} must be fixed_size_list<float32>[{width}], found {column.type}")
    present = np.flatnonzero(~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool))
    values = column.take(pa.array(present)).flatten().to_numpy().reshape(len(present), width)
    return Imported(rows=present.astype(np.int64), values=np.array(values, dtype=np.float32))  # a writable copy for torch


def read_frames_table(path: str | os.PathLike) -> pa.Table:
    """A frame shard as its current version's table (older versions migrated)."""
    return _read_table(Path(path), formats.FRAMES)


def read_frames(path: str | os.PathLike) -> FrameShard:
    path = Path(path)
    table = read_frames_table(path)
    keys = FrameKeys.from_table(table, path)
    for name in ("nucleotide", "protein"):
        if name not in table.column_names:
            raise ShardError(f"{path}: column {name!r} is missing")
        if not pa.types.is_string(table.schema.field(name).type) and not pa.types.is_large_string(table.schema.field(name).type):
            raise ShardError(f"{path}: column {name!r} must be utf8, found {table.schema.field(name).type}")
        if table.column(name).null_count:
            raise ShardError(f"{path}: column {name!r} has null values")
    proteins = table.column("protein").to_pylist()
    empty = [i for i, p in enumerate(proteins) if not p]
    if empty:
        raise ShardError(f"{path}: row {empty[0]} has an empty protein (kept frames are never empty)")
    imported = {name: found for name in EMBEDDING_WIDTHS if (found := _imported_column(table, name, path)) is not None}
    return FrameShard(
        keys=keys,
        nucleotides=table.column("nucleotide").to_pylist(),
        proteins=proteins,
        imported=imported,
    )


def frames_table(keys: FrameKeys, nucleotides, proteins, imported: dict[str, list] | None = None) -> pa.Table:
    """A frame shard; ``imported`` maps "dnabert"/"esm2" to one vector (or None) per frame."""
    imported = imported or {}
    columns = {
        **keys.columns(),
        "nucleotide": pa.array(nucleotides, pa.utf8()),
        "protein": pa.array(proteins, pa.utf8()),
    }
    for name, vectors in imported.items():
        columns[name] = pa.array(vectors, pa.list_(pa.float32(), EMBEDDING_WIDTHS[name]))
    return pa.table(columns, schema=frames_schema(tuple(imported)))


def write_frames(path: str | os.PathLike, keys: FrameKeys, nucleotides, proteins, imported: dict[str, list] | None = None) -> dict:
    """Write a frame shard (prepare writes them in TypeScript; this is for imports, benchmarks and tests)."""
    return write_table_atomically(path, frames_table(keys, nucleotides, proteins, imported))


# What the runtime measured while it computed a shard, once a second, beside its result as
# `<result>.telemetry.json`: {"columns": TELEMETRY_COLUMNS, "rows": [...]}. Informational (the
# run report's plots): written atomically but without a marker, and absent is as good as empty.
# Kept out of the result itself so that a shard's result is the same bytes whenever it is computed.
TELEMETRY_COLUMNS = ("time", "frames_done", "frames_per_s", "gpu_utilization", "gpu_memory_bytes")


def telemetry_path(result: str | os.PathLike) -> Path:
    result = Path(result)
    return result.with_name(result.name + ".telemetry.json")


def write_telemetry(result: str | os.PathLike, rows: list) -> None:
    write_bytes_atomically(telemetry_path(result), json.dumps({"columns": TELEMETRY_COLUMNS, "rows": rows}, separators=(",", ":")).encode())


def results_table(keys: FrameKeys, scores: np.ndarray, dnabert: np.ndarray | None, esm2: np.ndarray | None) -> pa.Table:
    """``keys``: the shard's frames, in its order; ``scores`` [N, 2] float32 softmax (others,
    virus); embeddings [N, 768] / [N, 2560]."""
    columns = {
        **keys.columns(),
        "score_others": pa.array(np.ascontiguousarray(scores[:, 0], dtype=np.float32)),
        "score_virus": pa.array(np.ascontiguousarray(scores[:, 1], dtype=np.float32)),
    }
    if dnabert is not None:
        columns["dnabert"] = _fixed_list(dnabert, EMBEDDING_WIDTHS["dnabert"])
    if esm2 is not None:
        columns["esm2"] = _fixed_list(esm2, EMBEDDING_WIDTHS["esm2"])
    table = pa.table(columns)
    return table.replace_schema_metadata(formats.metadata(formats.RESULTS))


def _fixed_list(matrix: np.ndarray, width: int) -> pa.FixedSizeListArray:
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    assert matrix.ndim == 2 and matrix.shape[1] == width, (matrix.shape, width)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), width)


def read_results(path: str | os.PathLike, record_index_of: dict[str, int] | None = None) -> pa.Table:
    """A shard result as the current version's table; one of version 1 needs the records
    table's record id -> record_index (``record_index_of``) to be upgraded."""
    return _read_table(Path(path), formats.RESULTS, record_index_of=record_index_of)


def write_table_atomically(path: str | os.PathLike, table: pa.Table) -> dict:
    """Write ``table`` as an Arrow IPC file plus its ``.done`` marker; returns the marker."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A stale marker must never vouch for the file that is about to replace its subject.
    marker_path(path).unlink(missing_ok=True)

    def write_arrow(handle) -> None:
        with ipc.new_file(handle, table.schema) as writer:
            writer.write_table(table)

    _replace_atomically(path, write_arrow)
    marker = {
        "version": MARKER_VERSION,
        "file": path.name,
        "rows": table.num_rows,
        "bytes": path.stat().st_size,
        "sha256": sha256_of(path),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    write_bytes_atomically(marker_path(path), (json.dumps(marker, indent=None) + "\n").encode())
    return marker


def marker_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".done")


def verify_marker(path: str | os.PathLike) -> dict:
    """The marker of ``path`` when the file matches it (size and sha256); raises ShardError otherwise."""
    path = Path(path)
    try:
        marker = json.loads(marker_path(path).read_text())
    except FileNotFoundError:
        raise ShardError(f"{path}: no completion marker") from None
    if marker.get("version") != MARKER_VERSION:
        raise ShardError(f"{path}: marker version {marker.get('version')!r} is not supported")
    if not path.exists() or path.stat().st_size != marker["bytes"] or sha256_of(path) != marker["sha256"]:
        raise ShardError(f"{path}: file does not match its completion marker")
    return marker


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bytes_atomically(path: Path, data: bytes) -> None:
    _replace_atomically(path, lambda handle: handle.write(data))


def _replace_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Fill a fresh sibling temp file with ``write``, fsync it, then rename it over ``path``,
    so a reader sees either the old file or the whole new one, never a torn write."""
    tmp = path.with_name(f"{path.name}.tmp-{secrets.token_hex(6)}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
