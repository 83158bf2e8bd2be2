"""Checkpoints converted once to a fast-loading form (the state directory's ``weights/``).

The published checkpoints are slow to start from: ESM-2 3B is an 11 GB fp32 pickle whose
q/k/v projections are renamed and fused, then cast to bf16, on every load. The first load
of a checkpoint writes the converted state dict, in the run's dtype, to a safetensors file
with a JSON sidecar; later loads map that file straight onto the device (5.7 GB for ESM-2 3B
in bf16, at the speed of a file copy).

An entry is used only when its sidecar matches: the source files (path, size, modification
time), the dtype, the torch version and the digest of the converting code. A hit is read
with one sequential read into host memory and one copy per tensor to the device (several
times faster than mapping the file page by page); its sha256, recorded when it was written,
is then computed from that same memory on a background thread while the models are set up
(``wait``): a mismatch deletes the entry and fails the load, so the next attempt converts
from the source again. Entries are written on a background thread too, so a cold start does
not wait for the disk.
"""
from __future__ import annotations

import concurrent.futures
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
from .shards import sha256_of, write_bytes_atomically

log = logging.getLogger(__name__)

FORMAT = "virnucpro.weights-cache"
VERSION = 1


class CacheCorrupt(Exception):
    """A cached conversion no longer matches its recorded checksum (it has been removed)."""


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
    """One ``load_models`` call's use of the cache: look-ups, background writes and the
    background checksum checks that ``wait`` joins."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or state.state_dir() / "weights"
        self._checks: list[concurrent.futures.Future] = []
        self._writers: list[threading.Thread] = []
        self.hits: list[str] = []

    def _entry(self, model: str, files: list[Path], dtype: torch.dtype, code: str) -> tuple[Path, Path, dict]:
        key_fields = {"model": model, "sources": _identity(files), "dtype": str(dtype), "torch": torch.__version__, "code": code}
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
        if not file.is_file() or file.stat().st_size != meta["bytes"]:
            return None
        raw = _read_whole(file)
        tensors = _tensors_of(raw, device, file)
        self._checks.append(_verify_in_background(raw, file, sidecar, meta["sha256"]))
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
                            "bytes": file.stat().st_size, "sha256": sha256_of(file)}
                    write_bytes_atomically(sidecar, (json.dumps(meta, indent=1) + "\n").encode())
            except OSError as exc:  # a full or read-only state directory costs speed, not the run
                log.warning("could not cache the converted %s weights in %s: %s", model, self.directory, exc)

        writer = threading.Thread(target=write, name=f"cache-{model}", daemon=False)
        writer.start()
        self._writers.append(writer)

    def wait(self) -> None:
        """Raises CacheCorrupt when a cached entry failed its checksum (the entry is gone)."""
        for check in self._checks:
            check.result()

    def wait_for_writes(self) -> None:
        for writer in self._writers:
            writer.join()


# safetensors' dtype names (the subset a state dict of our models holds).
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def _read_whole(file: Path) -> bytearray:
    raw = bytearray(file.stat().st_size)
    view = memoryview(raw)
    with open(file, "rb", buffering=0) as handle:
        done = 0
        while done < len(raw):
            got = handle.readinto(view[done:])
            if not got:
                raise CacheCorrupt(f"{file}: shorter than its size while being read")
            done += got
    return raw


def _tensors_of(raw: bytearray, device: torch.device, file: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file held in ``raw``, each copied to ``device`` (on the CPU
    too: no tensor may keep the buffer alive)."""
    header_bytes = int.from_bytes(raw[:8], "little")
    try:
        header = json.loads(raw[8:8 + header_bytes])
    except json.JSONDecodeError as exc:
        raise CacheCorrupt(f"{file}: unreadable safetensors header ({exc})") from None
    base = 8 + header_bytes
    host = torch.frombuffer(raw, dtype=torch.uint8)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        chunk = host[base + start:base + end]
        if (base + start) % dtype.itemsize:
            chunk = chunk.clone()  # a view needs the element size's alignment
        tensors[name] = chunk.view(dtype).reshape(info["shape"]).to(device, copy=True)
    return tensors


_checker = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="weights-check")


def _verify_in_background(raw: bytearray, file: Path, sidecar: Path, expected: str) -> concurrent.futures.Future:
    def verify() -> None:
        if hashlib.sha256(raw).hexdigest() != expected:  # hashlib releases the GIL: set-up goes on meanwhile
            sidecar.unlink(missing_ok=True)
            file.unlink(missing_ok=True)
            raise CacheCorrupt(f"{file}: the cached converted weights do not match their checksum; removed (the next load converts them again)")

    return _checker.submit(verify)
