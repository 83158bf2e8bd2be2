"""The resident runtime: ``python -m virnucpro_runtime serve --device cuda:N|cpu``.

Reads protocol requests from stdin (one JSON object per line) and writes replies and
events to stdout; everything else, including anything a library prints, goes to stderr.

Threads:
- the reader (main thread) validates each line and answers ``health`` and ``cancel`` at
  once, so they never wait behind a long run;
- one worker executes ``load`` and ``run`` jobs in arrival order; while it computes a
  shard, the next queued shard is read and tokenised on a prefetch thread;
- a reporter emits a ``progress`` event every ``progress_interval_s`` while a run is active
  (and a debug ``log`` event while a load is, so the activity can tell a hang from a load).
"""
from __future__ import annotations

import concurrent.futures
import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TextIO

import torch

from . import engine as engine_mod
from . import protocol, shards, tuning
from .models.fp8 import Fp8Unavailable, require_fp8_matmuls
from .models_api import WeightsUnavailable, load_models, precision_dtype, use_fp8_esm2
from .telemetry import DeviceMonitor
from .weights_cache import WeightsCache

log = logging.getLogger(__name__)


@dataclass
class Job:
    request: protocol.Request
    cancel: threading.Event = field(default_factory=threading.Event)
    prepared: concurrent.futures.Future | None = None
    # (Unix time, frames done, frames/s, GPU utilisation, GPU memory) at every progress event,
    # written beside the shard result (shards.TELEMETRY_COLUMNS) for the run's report.
    telemetry: list = field(default_factory=list)


class Server:
    def __init__(self, device: str, out: TextIO, progress_interval_s: float = 1.0, early_cuda: concurrent.futures.Future | None = None):
        self.device = torch.device(device)
        self.out = out
        self.progress_interval_s = progress_interval_s
        self.monitor = DeviceMonitor(self.device)
        self.engine: engine_mod.Engine | None = None
        self._numerics_id = ""
        self._rate = engine_mod.RateWindow()
        self._rate_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._jobs: deque[Job] = deque()
        self._jobs_changed = threading.Condition()
        self._active: Job | None = None
        self._active_progress: engine_mod.Progress | None = None
        self._stopping = False
        self._prefetcher = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-prefetch")
        self._worker = threading.Thread(target=self._work, name="runtime-worker", daemon=True)
        self._reporter = threading.Thread(target=self._report, name="progress-reporter", daemon=True)
        # The CUDA context and torch.compile's imports (seconds of Python: 11 s on an H200 host
        # without torch's bytecode; bench/results/2026-12-07-nvidia-h200-imports.txt) depend on
        # no request: they start with the process, while the client still connects to Temporal,
        # each on its own thread. `load` waits for the context before the weights and for the
        # imports only before it compiles, so the imports also overlap the weights' copy.
        cuda = self.device.type == "cuda"
        self._context_ready = _in_background(lambda: self._make_context(early_cuda)) if cuda else None
        self._compiler_ready = _in_background(_import_compiler) if cuda else None

    def _make_context(self, early_cuda: concurrent.futures.Future | None) -> dict[str, float]:
        """With `early_cuda` (cuda_start.begin, from before torch was imported) the context is
        already being made and torch only attaches to it here."""
        early = early_cuda.result() if early_cuda is not None else {}
        started = time.perf_counter()
        torch.zeros(1, device=self.device)
        torch.cuda.synchronize(self.device)
        return {**early, "cuda_context_s": time.perf_counter() - started}

    # --- output ----------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        line = protocol.encode(message)
        with self._write_lock:
            self.out.write(line + "\n")
            self.out.flush()

    def log_event(self, level: str, message: str) -> None:
        log.log(getattr(logging, level.upper()), message)
        self.send(protocol.log_event(level, message))

    # --- reader ----------------------------------------------------------------------
    def serve(self, source: TextIO) -> int:
        self._worker.start()
        self._reporter.start()
        for line in source:
            if not line.strip():
                continue
            try:
                request = protocol.parse_request(line)
            except protocol.ProtocolError as exc:
                self.send(protocol.error_reply(exc.request_id, exc.type, str(exc)))
                continue
            if request.op == "health":
                self.send(protocol.ok_reply(request.id, self._health()))
            elif request.op == "cancel":
                self.send(protocol.ok_reply(request.id, {"cancelled": self._cancel(request.args["target"])}))
            elif request.op == "shutdown":
                self._shutdown()
                self.send(protocol.ok_reply(request.id, {}))
                return 0
            else:
                with self._jobs_changed:
                    self._jobs.append(Job(request))
                    self._prefetch_next()
                    self._jobs_changed.notify_all()
        self._shutdown()  # stdin closed: the activity is gone, stop cleanly
        return 0

    def _health(self) -> dict[str, Any]:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        return {
            "device": str(self.device),
            "device_name": name,
            "torch": torch.__version__,
            "loaded": self.engine is not None,
            "busy": self._active is not None,
            "free_memory_bytes": self.monitor.free_memory_bytes(),
        }

    def _cancel(self, target: str) -> bool:
        with self._jobs_changed:
            if self._active is not None and self._active.request.id == target:
                self._active.cancel.set()
                return True
            for job in list(self._jobs):
                if job.request.id == target:
                    self._jobs.remove(job)
                    if job.prepared is not None:
                        job.prepared.cancel()
                    self.send(protocol.error_reply(target, "cancelled", "cancelled before it started"))
                    return True
        return False

    def _shutdown(self) -> None:
        with self._jobs_changed:
            self._stopping = True
            for job in self._jobs:
                self.send(protocol.error_reply(job.request.id, "cancelled", "runtime shutting down"))
            self._jobs.clear()
            if self._active is not None:
                self._active.cancel.set()
            self._jobs_changed.notify_all()
        self._worker.join()
        self._reporter.join()
        self._prefetcher.shutdown(wait=True, cancel_futures=True)

    # --- worker ----------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._jobs_changed:
                while not self._jobs and not self._stopping:
                    self._jobs_changed.wait()
                if self._stopping:
                    return
                job = self._jobs.popleft()
                self._active = job
                self._prefetch_next()
            try:
                result = self._execute(job)
                self.send(protocol.ok_reply(job.request.id, result))
            except Exception as exc:
                type_, message = _classify_error(exc)
                if type_ == "internal":
                    log.exception("request %s failed", job.request.id)
                self.send(protocol.error_reply(job.request.id, type_, message))
            finally:
                with self._jobs_changed:
                    self._active = None
                    self._active_progress = None

    def _prefetch_next(self) -> None:
        """Called with the job lock held: while a shard computes, read the next one."""
        if self.engine is None or self._active is None or self._active.request.op != "run" or not self._jobs:
            return
        upcoming = self._jobs[0]
        if upcoming.request.op == "run" and upcoming.prepared is None:
            upcoming.prepared = self._prefetcher.submit(self.engine.prepare, upcoming.request.args["shard"])

    def _execute(self, job: Job) -> dict[str, Any]:
        if job.request.op == "load":
            return self._load(job.request.args)
        return self._run(job)

    def _load(self, args: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        cuda = self.device.type == "cuda"
        precision = args.get("precision") or ("bf16" if cuda else "fp32")
        if precision == "fp8":
            require_fp8_matmuls(self.device)  # before the weights take tens of seconds to load
        self.engine = None
        compile_esm2 = cuda and args.get("compile_esm2") is not False
        compile_dnabert = cuda and args.get("compile_dnabert") is True
        # What is left of the start-up begun with the process (its own durations are reported
        # too, though they mostly overlapped the wait for this request).
        device_start = dict(self._context_ready.result()) if self._context_ready is not None else {}
        context_done = time.perf_counter()
        cache = WeightsCache()
        models = load_models(
            self.device,
            precision_dtype(precision),
            esm2=args.get("esm2"),
            dnabert=args.get("dnabert"),
            classifier=args.get("classifier"),
            synthetic=args.get("synthetic"),
            cache=cache,
        )
        if precision == "fp8":
            use_fp8_esm2(models)
        weights_done = time.perf_counter()
        # The compiled paths need CUDA. ESM-2's is the default there; DNABERT-S's is opt-in: on
        # the H200 it was 1.34x faster alone, but shards with new batch shapes lost ~12 s each
        # (suspected recompiles; bench/README.md).
        deterministic = False
        if compile_esm2 or compile_dnabert:
            device_start["compiler_imports_s"] = self._compiler_ready.result()
            device_start["compiler_imports_wait_s"] = time.perf_counter() - weights_done
            from .compiled import enable_compiled_dnabert, enable_compiled_esm2, inductor_deterministic_available

            deterministic = inductor_deterministic_available()
            if compile_esm2:
                enable_compiled_esm2(models)
            if compile_dnabert:
                enable_compiled_dnabert(models)
        budget = args.get("token_budget") or tuning.tuned_budget(self.device, models)
        engine = engine_mod.Engine(models, esm2_budget=budget, dnabert_budget=args.get("dnabert_token_budget"))
        engine.on_log = self.log_event
        engine_made = time.perf_counter()
        warm_up = engine.warm_up()  # compiles (or loads the compiled kernels from the state directory)
        warm = time.perf_counter()
        self.engine = engine
        numerics = engine.numerics(deterministic)
        self._numerics_id = numerics["id"]
        return {
            "models": {**models.describe(), "from_cache": cache.hits},
            "seconds": round(time.perf_counter() - started, 3),
            "numerics": numerics,
            "phases": {
                **{name: round(value, 3) for name, value in device_start.items()},
                "cuda_context_wait_s": round(context_done - started, 3),
                "weights_s": round(weights_done - context_done, 3),
                "compile_and_warm_up_s": round(warm - weights_done, 3),
                "engine_setup_s": round(engine_made - weights_done, 3),
                **{name: round(value, 3) for name, value in warm_up.items()},
            },
        }

    def _run(self, job: Job) -> dict[str, Any]:
        if self.engine is None:
            raise protocol.ProtocolError("not_loaded", "no models loaded: send 'load' first")
        args = job.request.args
        prepared = job.prepared.result() if job.prepared is not None else self.engine.prepare(args["shard"])
        imported = prepared.imported.get("esm2")
        progress = engine_mod.Progress(frames_total=len(prepared), frames_imported=0 if imported is None else len(imported.rows))
        with self._jobs_changed:
            self._active_progress = progress
        self._send_progress(job, progress)  # at once: the shard has started
        output = self.engine.run(prepared, embeddings=bool(args.get("embeddings", False)), progress=progress, cancel=job.cancel)
        self._send_progress(job, progress)
        table = shards.results_table(output.keys, output.scores, output.dnabert, output.esm2)
        marker = shards.write_table_atomically(args["out"], table)
        shards.write_telemetry(args["out"], job.telemetry)
        with self._rate_lock:
            self._rate.run_finished(len(output.keys), output.esm2_tokens)
        return {
            "frames": len(output.keys),
            "out": os.path.abspath(args["out"]),
            "sha256": marker["sha256"],
            "bytes": marker["bytes"],
            "seconds": round(output.seconds + prepared.prepare_seconds, 3),
            "esm2_tokens": output.esm2_tokens,
            "dnabert_tokens": output.dnabert_tokens,
            "started_at": round(output.started_at, 3),
            "finished_at": round(output.finished_at, 3),
            "oom_retries": output.oom_retries,
            "peak_memory_bytes": output.peak_memory_bytes,
            "numerics": self._numerics_id,
        }

    # --- progress reporter -------------------------------------------------------------
    def _report(self) -> None:
        while True:
            time.sleep(self.progress_interval_s)
            with self._jobs_changed:
                if self._stopping and self._active is None:
                    return
                job, progress = self._active, self._active_progress
            if job is not None and progress is not None:
                self._send_progress(job, progress)
            elif job is not None and job.request.op == "load":
                # Loading takes tens of seconds; the activity's stall watchdog hears we are alive.
                self.send(protocol.log_event("debug", "loading models"))

    def _send_progress(self, job: Job, progress: engine_mod.Progress) -> None:
        frames, tokens, elapsed = progress.snapshot()
        with self._rate_lock:  # the worker and the reporter both sample
            frames_per_s, tokens_per_s = self._rate.sample(frames, tokens)
        memory, utilization = self.monitor.memory_used_bytes(), self.monitor.utilization()
        job.telemetry.append((round(time.time(), 3), frames, round(frames_per_s, 2), utilization, memory))
        self.send(protocol.progress_event(
            job.request.id,
            frames_done=frames + progress.frames_imported,
            frames_total=progress.frames_total,
            tokens_per_s=round(tokens_per_s, 1),
            frames_per_s=round(frames_per_s, 2),
            gpu_memory_bytes=memory,
            gpu_utilization=utilization,
            elapsed_s=round(elapsed, 3),
        ))


def _import_compiler() -> float:
    """torch.compile's own imports, ahead of the first compiled call; returns their seconds."""
    started = time.perf_counter()
    import torch._dynamo  # noqa: F401
    import torch._inductor.compile_fx  # noqa: F401

    return time.perf_counter() - started


def _in_background(function) -> concurrent.futures.Future:
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="device-start")
    future = pool.submit(function)
    pool.shutdown(wait=False)
    return future


def _classify_error(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, protocol.ProtocolError):
        return exc.type, str(exc)
    if isinstance(exc, engine_mod.RunCancelled):
        return "cancelled", str(exc)
    if isinstance(exc, (engine_mod.EngineOOM, torch.OutOfMemoryError)):
        return "oom", str(exc)
    if isinstance(exc, shards.ShardError):
        return "input", str(exc)
    if isinstance(exc, WeightsUnavailable):
        return "weights", str(exc)
    if isinstance(exc, Fp8Unavailable):
        return "bad_request", str(exc)
    return "internal", f"{type(exc).__name__}: {exc}"


def main(device: str, progress_interval_s: float = 1.0, early_cuda: concurrent.futures.Future | None = None) -> int:
    """Keep the protocol stream clean: fd 1 becomes stderr for everything else."""
    protocol_out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return Server(device, protocol_out, progress_interval_s, early_cuda).serve(sys.stdin)
