"""Our on-disk formats' names and versions (declared once in ``formats.json``, which the
TypeScript side reads too) and the migrations that bring a table written by an older
virnucpro to the current version, so that work directories of earlier releases stay usable.

A migration takes the table as its version wrote it and returns it as the next version
would have written it. A table newer than this program knows is refused: guessing at a
format written by a later release could silently change results.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

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


def _frames_1_to_2(table: pa.Table) -> pa.Table:
    # Version 2 added the optional `dnabert` / `esm2` columns (embeddings imported from an
    # earlier run's files); a version 1 shard simply has none imported.
    return table


# (format, version) -> the function that turns that version into the next.
MIGRATIONS: dict[tuple[str, int], Callable[[pa.Table], pa.Table]] = {
    (FRAMES["format"], 1): _frames_1_to_2,
}


def upgraded(table: pa.Table, expected: dict, path: Path) -> pa.Table:
    """``table`` (read from ``path``) as ``expected``'s current version, or FormatError."""
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
        table = migrate(table)
        version += 1
    return table.replace_schema_metadata({**found, "virnucpro.version": str(current)})
