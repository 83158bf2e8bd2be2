"""Our on-disk formats' names and versions (declared once in ``formats.json``, which the
TypeScript side reads too) and the migrations that bring a table written by an older
virnucpro to the current version, so that work directories of earlier releases stay usable.

A migration takes the table as its version wrote it and returns it as the next version
would have written it; one that needs more than the table (results v1 -> v2 needs the records
table's ids) takes it as a keyword argument, which the reader passes to ``upgraded``. A table
newer than this program knows is refused: guessing at a format written by a later release
could silently change results.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Mapping

import pyarrow as pa

_DECLARED = json.loads((Path(__file__).with_name("formats.json")).read_text())
TABLES: dict[str, dict] = _DECLARED["tables"]
FILE_MARKER_VERSION: int = _DECLARED["markers"]["file"]

FRAMES = TABLES["frames"]
RESULTS = TABLES["results"]
EMBEDDINGS = TABLES["embeddings"]


class FormatError(Exception):
    """A table of another format, or of a version this program cannot read."""


def metadata(table: dict, **extra: str) -> dict[str, str]:
    """Schema metadata for a table of ``table``'s current version."""
    return {"virnucpro.format": table["format"], "virnucpro.version": str(table["version"]), **extra}


def _frames_1_to_2(table: pa.Table, **_) -> pa.Table:
    # Version 2 added the optional `dnabert` / `esm2` columns (embeddings imported from an
    # earlier run's files); a version 1 shard simply has none imported.
    return table


# How prepare named a frame before the frame's chunk travelled with it as a column:
# `{record_id}_chunk_{k}{F1..R3}`, k counting the record's chunks from 1. Only migrations of
# tables written before then take ids apart.
_FRAME_ID = re.compile(r"^(.*)_chunk_([0-9]+)[FR][123]$", re.DOTALL)


def _frame_id_parts(frame_id: str) -> tuple[str, int]:
    """(record id, 0-based chunk index) of a frame id as prepare wrote it."""
    match = _FRAME_ID.match(frame_id)
    if match is None:
        raise FormatError(f"frame id {frame_id!r} is not of the form <record>_chunk_<k><F1..R3>")
    return match.group(1), int(match.group(2)) - 1


def _with_column_after(table: pa.Table, after: str, name: str, values: pa.Array) -> pa.Table:
    return table.add_column(table.column_names.index(after) + 1, name, values)


def _frames_2_to_3(table: pa.Table, **_) -> pa.Table:
    # Version 3 added `chunk_index` (uint32, 0-based chunk of the frame's record) after
    # `record_index`, so that results carry the chunk without parsing frame ids.
    chunks = [_frame_id_parts(frame_id)[1] for frame_id in table.column("frame_id").to_pylist()]
    return _with_column_after(table, "record_index", "chunk_index", pa.array(chunks, pa.uint32()))


def _results_1_to_2(table: pa.Table, record_index_of: Mapping[str, int] | None = None, **_) -> pa.Table:
    # Version 2 added `record_index` and `chunk_index` (as in the frame shard) after
    # `frame_id`. A version 1 result holds only frame ids; the record's index comes from
    # the records table (`record_index_of`: record id -> record_index).
    if record_index_of is None:
        raise FormatError("a virnucpro.results version 1 table is read only together with its records table (record_index_of)")
    parts = [_frame_id_parts(frame_id) for frame_id in table.column("frame_id").to_pylist()]
    unknown = next((record for record, _ in parts if record not in record_index_of), None)
    if unknown is not None:
        raise FormatError(f"record {unknown!r} of a frame id is not in the records table")
    table = _with_column_after(table, "frame_id", "record_index", pa.array([record_index_of[r] for r, _ in parts], pa.uint32()))
    return _with_column_after(table, "record_index", "chunk_index", pa.array([chunk for _, chunk in parts], pa.uint32()))


# (format, version) -> the function that turns that version into the next.
MIGRATIONS: dict[tuple[str, int], Callable[..., pa.Table]] = {
    (FRAMES["format"], 1): _frames_1_to_2,
    (FRAMES["format"], 2): _frames_2_to_3,
    (RESULTS["format"], 1): _results_1_to_2,
}


def upgraded(table: pa.Table, expected: dict, path: Path, **context) -> pa.Table:
    """``table`` (read from ``path``) as ``expected``'s current version, or FormatError.
    ``context``: what a migration needs beyond the table (see the migrations)."""
    found = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    name = found.get("virnucpro.format")
    if name != expected["format"]:
        raise FormatError(f"{path}: schema metadata virnucpro.format is {name!r}, expected {expected['format']!r}")
    raw = found.get("virnucpro.version", "")
    if not raw.isdigit():
        raise FormatError(f"{path}: {name} version {raw!r} is not a version number")
    version, current = int(raw), expected["version"]
    if version > current:
        raise FormatError(
            f"{path}: {name} version {version} was written by a newer virnucpro (this one reads up to version {current}); "
            "upgrade virnucpro, or run again with --force to recompute"
        )
    while version < current:
        migrate = MIGRATIONS.get((name, version))
        if migrate is None:
            raise FormatError(f"{path}: {name} version {version} cannot be read (no migration to version {version + 1})")
        try:
            table = migrate(table, **context)
        except FormatError as exc:
            raise FormatError(f"{path}: {name} version {version}: {exc}") from None
        version += 1
    return table.replace_schema_metadata({**found, "virnucpro.version": str(current)})
