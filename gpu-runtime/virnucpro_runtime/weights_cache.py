"""Checkpoints converted once to a fast-loading form (the state directory's ``weights/``).

The published checkpoints are slow to start from: ESM-2 3B is an 11 GB fp32 pickle whose
q/k/v projections are renamed and fused, then cast to bf16, on every load. The first load
of a checkpoint writes the converted state dict, in the run's dtype, to a safetensors file
with a JSON sidecar; later loads stream that file straight into device memory (5.7 GB for
ESM-2 3B in bf16).

An entry is used only when its sidecar matches: the source files (path, size, modification
time), the dtype, the torch version, the digest of the converting code and this format's
version. A hit is read in ``CHUNK_BYTES`` pieces by several threads at once: each reads a
piece into its own pinned buffer, checks it against the piece's sha256 recorded when the
entry was written, and copies the tensors' bytes in it to their places on the device on its
own stream while it reads the next piece. Reading, checking and copying thus overlap, and no
host copy of the whole file is made (the previous way, one read into pageable memory and
one copy per tensor, took 7.4 s for ESM-2 3B on an H100; bench/README.md). A piece that
fails its check removes the entry, and the load converts from the source instead.
Entries are written on a background thread, so a cold start does not wait for the disk.
"""
from __future__ import annotations

import bisect
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import torch

from . import state
from .shards import write_bytes_atomically

log = logging.getLogger(__name__)

FORMAT = "virnucpro.weights-cache"
VERSION = 2
# The unit of reading, checking and copying: large enough for full-speed reads and copies,
# small enough that a few threads' pinned buffers cost little memory.
CHUNK_BYTES = 64 << 20
READ_THREADS = max(1, min(8, os.cpu_count() or 1))


class CacheCorrupt(Exception):
    """A cached conversion no longer matches its recorded checksums."""


def _identity(files: list[Path]) -> list[dict[str, Any]]:
    identity = []
    for file in files:
        stat = file.stat()
        identity.append({"path": str(file.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return identity


@dataclasses.dataclass
class Hit:
    config: dict[str, Any]
    state: dict[str, torch.Tensor]


class WeightsCache:
    """One ``load_models`` call's use of the cache: look-ups and background writes."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or state.state_dir() / "weights"
        self._writers: list[threading.Thread] = []
        self.hits: list[str] = []

    def _entry(self, model: str, files: list[Path], dtype: torch.dtype, code: str) -> tuple[Path, Path, dict]:
        key_fields = {"model": model, "sources": _identity(files), "dtype": str(dtype), "torch": torch.__version__, "code": code,
                      "version": VERSION}
        key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:20]
        file = self.directory / f"{model}-{key}.safetensors"
        return file, file.with_suffix(".json"), key_fields

    def load(self, model: str, files: list[Path], dtype: torch.dtype, device: torch.device, code: str) -> Hit | None:
        file, sidecar, key_fields = self._entry(model, files, dtype, code)
        try:
            meta = json.loads(sidecar.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if meta.get("format") != FORMAT or meta.get("version") != VERSION or meta.get("key") != key_fields:
            return None
        if not file.is_file() or file.stat().st_size != meta["bytes"] or meta.get("chunk_bytes") != CHUNK_BYTES:
            return None
        try:
            tensors = _read_tensors(file, device, meta["chunk_sha256"])
        except CacheCorrupt as exc:
            log.warning("%s; removed, converting from the source again", exc)
            sidecar.unlink(missing_ok=True)
            file.unlink(missing_ok=True)
            return None
        self.hits.append(model)
        return Hit(config=meta["config"], state=tensors)

    def store(self, model: str, files: list[Path], dtype: torch.dtype, code: str, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Write an entry on a (non-daemon) thread: a clean exit waits for it, a killed process
        leaves only a temporary file behind, never a partial entry."""
        file, sidecar, key_fields = self._entry(model, files, dtype, code)
        host = {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}

        def write() -> None:
            from safetensors.torch import save_file

            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                with state.exclusive(file.with_name(file.name + ".lock")):
                    if sidecar.exists():
                        return  # another runtime on this host wrote it meanwhile
                    for stale in self.directory.glob(f"{file.name}.tmp-*"):
                        stale.unlink(missing_ok=True)  # left by a writer that was killed
                    staging = file.with_name(f"{file.name}.tmp-{threading.get_native_id()}")
                    try:
                        save_file(host, str(staging))
                        with open(staging, "rb") as handle:
                            os.fsync(handle.fileno())
                        os.replace(staging, file)
                    finally:
                        staging.unlink(missing_ok=True)
                    meta = {"format": FORMAT, "version": VERSION, "key": key_fields, "config": config,
                            "bytes": file.stat().st_size, "chunk_bytes": CHUNK_BYTES, "chunk_sha256": _chunk_digests(file)}
                    write_bytes_atomically(sidecar, (json.dumps(meta, indent=1) + "\n").encode())
            except OSError as exc:  # a full or read-only state directory costs speed, not the run
                log.warning("could not cache the converted %s weights in %s: %s", model, self.directory, exc)

        writer = threading.Thread(target=write, name=f"cache-{model}", daemon=False)
        writer.start()
        self._writers.append(writer)

    def wait_for_writes(self) -> None:
        for writer in self._writers:
            writer.join()


def _chunk_digests(file: Path) -> list[str]:
    digests = []
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digests.append(hashlib.sha256(block).hexdigest())
    return digests


def _read_tensors(file: Path, device: torch.device, digests: list[str]) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, each allocated on ``device`` and filled piece by
    piece, every piece checked on the way."""
    size = file.stat().st_size
    if len(digests) != -(-size // CHUNK_BYTES):
        raise CacheCorrupt(f"{file}: {len(digests)} recorded checksums for {size} bytes")
    with open(file, "rb") as handle:
        head = handle.read(8)
        header_bytes = int.from_bytes(head, "little")
        head += handle.read(header_bytes)
    try:
        header = json.loads(head[8:])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CacheCorrupt(f"{file}: unreadable safetensors header ({exc})") from None
    base = len(head)
    tensors: dict[str, torch.Tensor] = {}
    spans = []  # (first byte in the file, end, the tensor's bytes)
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensor = torch.empty(info["shape"], dtype=_DTYPES[info["dtype"]], device=device)
        tensors[name] = tensor
        if end > start:
            spans.append((base + start, base + end, tensor.view(-1).view(torch.uint8)))
    spans.sort(key=lambda span: span[0])
    starts = [span[0] for span in spans]
    cuda = device.type == "cuda"
    threads = min(READ_THREADS, len(digests)) or 1
    fd = os.open(file, os.O_RDONLY)

    def read_every(first: int) -> None:
        # One (pinned) staging buffer and one stream per thread: the copies out of a piece run
        # while the thread reads and checks its next one.
        staging = torch.empty(CHUNK_BYTES, dtype=torch.uint8, pin_memory=cuda)
        stream = torch.cuda.Stream(device) if cuda else None
        for piece in range(first, len(digests), threads):
            start = piece * CHUNK_BYTES
            length = min(CHUNK_BYTES, size - start)
            if cuda:
                stream.synchronize()  # the previous copies out of the staging buffer are done
            view = memoryview(staging.numpy())[:length]
            _read_exactly(fd, view, start, file)
            if hashlib.sha256(view).hexdigest() != digests[piece]:  # hashlib releases the GIL
                raise CacheCorrupt(f"{file}: bytes {start}-{start + length} do not match their checksum")
            if start < base and bytes(view[:base - start]) != head[start:start + length]:
                raise CacheCorrupt(f"{file}: its header changed while being read")
            with torch.cuda.stream(stream) if cuda else contextlib.nullcontext():
                for first_byte, end_byte, target in _overlapping(spans, starts, start, start + length):
                    lo, hi = max(first_byte, start), min(end_byte, start + length)
                    target[lo - first_byte:hi - first_byte].copy_(staging[lo - start:hi - start], non_blocking=cuda)
        if cuda:
            stream.synchronize()

    try:
        with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="weights-read") as pool:
            for future in [pool.submit(read_every, first) for first in range(threads)]:
                future.result()
    finally:
        os.close(fd)
    return tensors


def _overlapping(spans: list, starts: list[int], start: int, end: int):
    """The spans (sorted by their first byte, ``starts``) that share bytes with [start, end)."""
    low = bisect.bisect_right(starts, start) - 1
    for span in spans[max(low, 0):]:
        if span[0] >= end:
            break
        if span[1] > start:
            yield span


def _read_exactly(fd: int, view: memoryview, offset: int, file: Path) -> None:
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if not got:
            raise CacheCorrupt(f"{file}: shorter than its size while being read")
        done += got


# safetensors' dtype names (the subset a state dict of our models holds).
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
