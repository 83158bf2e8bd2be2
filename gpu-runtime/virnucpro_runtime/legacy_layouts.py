"""Where the original VirNucPro and the multi-GPU fork (broadinstitute/virnucpro-broad) leave
their work for an input, declared once: ``predict --resume`` asks ``find`` (through
``python -m virnucpro_runtime import-legacy --find``) and the import reads what it found.
No torch here: finding is cheap and runs before any run starts.

The original (prediction.py) writes next to the input, under the input path cut at its first
``.fa``; the fork writes into its ``--output-dir``, under the input file's name without its last
suffix. Both use the same folder names below that prefix; the fork keeps its stage state in
``.checkpoints/`` and, from v2.0, its ESM-2 batch checkpoints there too.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ORIGINAL = "VirNucPro"
FORK = "virnucpro-broad"

# Below a prefix P: P_nucleotide/output_<k>.fa + output_<k>_DNABERT_S.pt (the fork's multi-GPU
# workers: _DNABERT.pt), P_protein/output_<k>.fa + output_<k>_ESM.pt (fork v2.0 on several GPUs:
# output_<k>_DNABERT.pt holding ESM-2 vectors), P_merged/output_<k>[_DNABERT]_merged.pt.
EMBEDDING_FOLDERS = ("_nucleotide", "_protein", "_merged")
EMBEDDING_FILE = re.compile(r"(?P<stem>output_\d+)_(?:DNABERT_S|DNABERT|ESM|merged|DNABERT_merged)\.pt")
CHUNKED_FILE = re.compile(r"_chunked(?P<length>\d+)\.fa")
# The fork's ESM-2 batch checkpoints (v2.0 with --resume): .checkpoints/shard_<rank>/batch_<n>.pt.
BATCH_FILE = re.compile(r"batch_\d+\.pt")
STATE_FOLDER = ".checkpoints"
PIPELINE_STATE = "pipeline_state.json"
# The fork's v2.0 ESM-2 stage keeps its vectors in HDF5 until it converts them to _ESM.pt files.
ESM_V2_FOLDER = "esm_v2"


@dataclass(frozen=True)
class LegacyRun:
    tool: str
    prefix: str  # the P above
    state: str | None  # the fork's .checkpoints folder, where it exists
    files: list[dict]  # every file that matters, with size and mtime (the import step's cache key)

    def describe(self) -> dict:
        return {"tool": self.tool, "prefix": self.prefix, "state": self.state, "files": self.files}


def original_prefix(input_path: str) -> str:
    # prediction.py: predict_fasta_file.split('.fa')[0], on the path as given (here: absolute).
    return input_path.split(".fa")[0]


def fork_prefix(input_path: str, out_dir: str) -> str:
    # The fork: output_dir / f"{input_file.stem}_nucleotide" (pathlib's stem: last suffix off).
    return str(Path(out_dir) / Path(input_path).stem)


def _fingerprint(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path), "bytes": stat.st_size, "modified": stat.st_mtime_ns // 1_000_000}


def run_files(prefix: str, state: Path | None) -> list[Path]:
    """The files of one run that the import looks at, in a fixed order."""
    base = Path(prefix)
    found: list[Path] = []
    for suffix in EMBEDDING_FOLDERS:
        folder = base.with_name(base.name + suffix)
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.is_file() and (EMBEDDING_FILE.fullmatch(p.name) or p.suffix in (".fa", ".done")))
    if base.parent.is_dir():
        found += sorted(p for p in base.parent.iterdir() if p.is_file() and p.name.startswith(base.name + "_chunked") and CHUNKED_FILE.search(p.name))
    if state is not None:
        found += sorted(p for p in state.glob("shard_*/*") if p.is_file() and (BATCH_FILE.fullmatch(p.name) or p.name.endswith(".pt.done")))
        if (state / PIPELINE_STATE).is_file():
            found.append(state / PIPELINE_STATE)
        found += sorted(state.parent.glob(f"{ESM_V2_FOLDER}/*.h5"))
    return found


def find(input_path: str, out_dir: str | None) -> list[LegacyRun]:
    """The earlier runs for ``input_path`` that left embedding files behind."""
    candidates = [(ORIGINAL, original_prefix(input_path), None)]
    if out_dir is not None:
        state = Path(out_dir) / STATE_FOLDER
        candidates.append((FORK, fork_prefix(input_path, out_dir), state if state.is_dir() else None))
    runs = []
    for tool, prefix, state in candidates:
        files = run_files(prefix, state)
        if any(EMBEDDING_FILE.fullmatch(p.name) or BATCH_FILE.fullmatch(p.name) for p in files):
            runs.append(LegacyRun(tool=tool, prefix=prefix, state=str(state) if state else None, files=[_fingerprint(p) for p in files]))
    # The same folder found both ways (-o next to the input): once is enough.
    unique = {os.path.realpath(r.prefix): r for r in reversed(runs)}
    return [r for r in runs if unique[os.path.realpath(r.prefix)] is r]
