"""The fast path: one frame shard in, softmax scores (and optionally embeddings) out.

Per shard:
1. ``prepare`` (CPU, may run on a thread while the previous shard computes): read the
   shard, tokenise proteins (ESM-2) and nucleotides (DNABERT-S, on a thread: the device
   starts on ESM-2 meanwhile), plan length-sorted batches under each model's token budget.
2. ``run``: the two models' batches interleaved (``_work_order``). A producer thread
   assembles each batch into (pinned) host tensors and hands it over through a bounded
   queue, so assembling batch k+1 overlaps the device working on batch k. The consumer
   copies a batch to the device (non_blocking), runs the model, pools, and scatters the
   pooled vectors into device-resident [N, 768] / [N, 2560] buffers at the batch's shard
   rows, which restores the shard's original order for free.
   No batch waits for the host: the only host syncs are the final copy of the scores
   (and embeddings) and the progress counter's non-blocking event queries.
3. Classifier + softmax on the device over concat(DNABERT-S, ESM-2) in fp32.

Out of memory: ``torch.OutOfMemoryError`` on a batch halves that model's budget for the rest
of the shard, re-plans the same rows under it and retries; nothing is skipped, and the next
shard starts from the configured budget again, so a shard's batches (and its scores) never
depend on what happened to an earlier one. A test hook (``oom_hook``) lets CPU tests trigger
the real exception type.

Determinism: the token budgets are functions of the GPU's total memory and the models (not
of the memory that happens to be free), so a restarted runtime, or another GPU of the same
model, plans exactly the same batches for a shard and computes bit-identical scores.

Precision: weights and activations in ``dtype`` (bf16 on CUDA, fp32 on CPU by default);
pooling sums, classifier and softmax in fp32 (the models' pooling helpers return fp32).
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import heapq
import itertools
import json
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from . import packing, shards, tokenizers
from .models_api import LoadedModels

log = logging.getLogger(__name__)

ESM2_WIDTH = 2560
DNABERT_WIDTH = 768

# Bytes of live activations per packed token inside one ESM-2 layer, in units of the
# element size: residual, LN output, fused QKV, rotated q/k, attention output and the
# output projection (about 12 x hidden), the FFN's two intermediates (2 x ffn), plus slack
# for the allocator's rounding. Checked against measured peaks on an H200 (bench/README.md).
def esm2_bytes_per_token(hidden: int, ffn: int, element_size: int) -> int:
    return (16 * hidden + 3 * ffn) * element_size


DEFAULT_CPU_ESM2_BUDGET = 4096
DEFAULT_CPU_DNABERT_BUDGET = 8192
MAX_CUDA_ESM2_BUDGET = 65536  # beyond this the matmuls are already large; tuning may raise it
CUDA_MEMORY_FRACTION_FOR_ACTIVATIONS = 0.5


class RunCancelled(Exception):
    pass


class EngineOOM(Exception):
    """Out of memory on a single sequence: no smaller batch exists."""


@dataclass(frozen=True)
class PreparedShard:
    path: str
    keys: shards.FrameKeys
    esm2_tokens: tokenizers.TokenizedSet
    esm2_plan: list[np.ndarray]
    # DNABERT-S's tokens and plan, (TokenizedSet, plan): its BPE takes seconds for a large
    # shard (~10x the proteins' lookup table), so it finishes while ESM-2's first batches run.
    dnabert: concurrent.futures.Future
    prepare_seconds: float
    # Embeddings taken from an earlier run's files ("dnabert"/"esm2"): those rows are not computed.
    imported: dict[str, shards.Imported] = field(default_factory=dict)

    @property
    def dnabert_tokens(self) -> tokenizers.TokenizedSet:
        return self.dnabert.result()[0]

    @property
    def dnabert_plan(self) -> list[np.ndarray]:
        return self.dnabert.result()[1]

    def computed_tokens(self, model: str) -> int:
        plan, tokens = (self.esm2_plan, self.esm2_tokens) if model == "esm2" else (self.dnabert_plan, self.dnabert_tokens)
        return int(sum(int(tokens.lengths[rows].sum()) for rows in plan))

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class RunOutput:
    keys: shards.FrameKeys
    scores: np.ndarray  # float32 [N, 2]: P(others), P(virus)
    dnabert: np.ndarray | None
    esm2: np.ndarray | None
    esm2_tokens: int
    dnabert_tokens: int
    seconds: float
    started_at: float  # wall clock (Unix s) when the first batch went to the device
    finished_at: float
    oom_retries: int
    peak_memory_bytes: int | None


@dataclass
class _Budgets:
    """One run's token budgets: the engine's, halved for the rest of the shard on OOM."""

    esm2: int
    dnabert: int
    oom_retries: int = 0


@dataclass
class Progress:
    """Frames whose ESM-2 batch has finished on the device, counted without blocking it:
    each batch records an event, and ``snapshot`` counts the events that have completed."""

    frames_total: int
    frames_done: int = 0
    # Frames whose ESM-2 embedding was imported (shards.Imported): done before the shard starts,
    # reported as done but not counted in the device's rate.
    frames_imported: int = 0
    esm2_tokens_done: int = 0
    started: float = field(default_factory=time.perf_counter)
    _pending: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def batch_launched(self, frames: int, tokens: int, device: torch.device) -> None:
        event = None
        if device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
        with self._lock:
            self._pending.append((event, frames, tokens))

    def snapshot(self) -> tuple[int, int, float]:
        with self._lock:
            while self._pending and (self._pending[0][0] is None or self._pending[0][0].query()):
                _event, frames, tokens = self._pending.popleft()
                self.frames_done += frames
                self.esm2_tokens_done += tokens
            return self.frames_done, self.esm2_tokens_done, time.perf_counter() - self.started


class RateWindow:
    """A device's frames/s and ESM-2 tokens/s over its last ``seconds`` of work, across
    shards: a new shard's first seconds (tokenising, its DNABERT-S batches) do not make the
    device look slow, as a rate since the shard's start would."""

    def __init__(self, seconds: float = 10.0):
        self.seconds = seconds
        self._samples: deque = deque()
        self._frames_before = 0
        self._tokens_before = 0

    def sample(self, frames: int, tokens: int, now: float | None = None) -> tuple[float, float]:
        """Record the current run's counts; returns (frames/s, tokens/s) over the window."""
        now = time.perf_counter() if now is None else now
        total = (self._frames_before + frames, self._tokens_before + tokens)
        self._samples.append((now, *total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.seconds:
            self._samples.popleft()
        then, frames_then, tokens_then = self._samples[0]
        span = now - then
        return ((total[0] - frames_then) / span, (total[1] - tokens_then) / span) if span > 0 else (0.0, 0.0)

    def run_finished(self, frames: int, tokens: int) -> None:
        self._frames_before += frames
        self._tokens_before += tokens


_DONE = object()
# DNABERT-S's tokeniser runs here, beside the device's batches (and the next shard's prepare).
_dna_tokenizing = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dna-tokenize")


class Engine:
    def __init__(
        self,
        models: LoadedModels,
        esm2_budget: int | None = None,
        dnabert_budget: int | None = None,
        oom_hook: Callable[[str, int], None] | None = None,
    ):
        self.models = models
        self.device = models.device
        self.esm2_budget = esm2_budget or default_esm2_budget(models)
        self.dnabert_budget = dnabert_budget or default_dnabert_budget(models, self.esm2_budget)
        self.oom_hook = oom_hook
        self.on_log: Callable[[str, str], None] = lambda level, message: log.log(getattr(logging, level.upper()), message)
        self.queue_depth = 4

    def numerics(self, inductor_deterministic: bool) -> dict:
        """Everything that decides this engine's arithmetic (the protocol's ``numerics``):
        two engines with the same numerics score a shard bit-identically. ``id`` digests it."""
        fields = {
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
            "torch": torch.__version__,
            "precision": self.models.precision(),
            "esm2_token_budget": self.esm2_budget,
            "dnabert_token_budget": self.dnabert_budget,
            "compile_esm2": self.models.esm2_packed_forward is not None,
            # the compiled layer's kernel choices (compiled.py), which change its rounding
            "esm2_arithmetic": getattr(self.models.esm2_packed_forward, "arithmetic", None),
            "compile_dnabert": self.models.dnabert_padded_embed is not None,
            "inductor_deterministic": inductor_deterministic,
        }
        return {"id": hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16], **fields}

    @torch.inference_mode()
    def warm_up(self) -> dict[str, float]:
        """A small batch through each model, so compilation and kernel selection happen at
        load time rather than inside the first shard. Returns the seconds each model took."""
        proteins = ["M" + "ACDEFGHIKLMNPQRSTVWY"[: k % 20] * (k // 20) for k in (37, 101, 166)]
        nucleotides = ["ACGTTGCA" * k for k in (20, 40, 62)]
        esm2 = packing.assemble_packed(tokenizers.tokenize_proteins(proteins), np.arange(3))
        dna = packing.assemble_padded(self.models.dna_tokenizer.tokenize(nucleotides), np.arange(3), self.models.dnabert_pad_id)
        seconds = {}
        started = time.perf_counter()
        self.models.embed_proteins_packed(esm2.tokens.to(self.device), esm2.cu_seqlens.to(self.device), esm2.max_seqlen)
        self._synchronize()
        seconds["esm2_warm_up_s"] = time.perf_counter() - started
        started = time.perf_counter()
        self.models.embed_nucleotides_padded(dna.input_ids.to(self.device), dna.lengths.to(self.device))
        self._synchronize()
        seconds["dnabert_warm_up_s"] = time.perf_counter() - started
        return seconds

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # --- 1. CPU side -----------------------------------------------------------------
    def prepare(self, shard_path: str) -> PreparedShard:
        started = time.perf_counter()
        shard = shards.read_frames(shard_path)
        esm2_tokens = tokenizers.tokenize_proteins(shard.proteins)
        esm2_rows, dnabert_rows = (_rows_to_compute(len(shard), shard.imported.get(model)) for model in ("esm2", "dnabert"))

        def dnabert() -> tuple[tokenizers.TokenizedSet, list[np.ndarray]]:
            tokens = self.models.dna_tokenizer.tokenize(shard.nucleotides)  # releases the GIL
            return tokens, [dnabert_rows[b] for b in packing.plan_padded(tokens.lengths[dnabert_rows], self.dnabert_budget)]

        return PreparedShard(
            path=str(shard_path),
            keys=shard.keys,
            esm2_tokens=esm2_tokens,
            esm2_plan=[esm2_rows[b] for b in packing.plan_packed(esm2_tokens.lengths[esm2_rows], self.esm2_budget)],
            dnabert=_dna_tokenizing.submit(dnabert),
            prepare_seconds=time.perf_counter() - started,
            imported=shard.imported,
        )

    # --- 2. device side --------------------------------------------------------------
    @torch.inference_mode()
    def run(
        self,
        prepared: PreparedShard,
        embeddings: bool = False,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> RunOutput:
        started = time.perf_counter()
        started_at = time.time()
        n = len(prepared)
        progress = progress or Progress(frames_total=n)
        cancel = cancel or threading.Event()
        budgets = _Budgets(self.esm2_budget, self.dnabert_budget)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        dnabert_out = torch.empty(n, DNABERT_WIDTH, dtype=torch.float32, device=self.device)
        esm2_out = torch.empty(n, ESM2_WIDTH, dtype=torch.float32, device=self.device)
        for name, out in (("dnabert", dnabert_out), ("esm2", esm2_out)):
            if name in prepared.imported:
                found = prepared.imported[name]
                out.index_copy_(0, torch.from_numpy(found.rows).to(self.device), torch.from_numpy(found.values).to(self.device))

        work = _work_order(prepared)
        batches: queue.Queue = queue.Queue(maxsize=self.queue_depth)
        stop = threading.Event()
        producer = threading.Thread(
            target=self._produce, args=(prepared, work, batches, stop), name="batch-producer", daemon=True
        )
        producer.start()
        try:
            while True:
                item = batches.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                if cancel.is_set():
                    raise RunCancelled(f"run of {prepared.path} cancelled")
                kind, batch = item
                if kind == "dnabert":
                    self._dnabert_batch(prepared, batch, dnabert_out, budgets)
                else:
                    self._esm2_batch(prepared, batch, esm2_out, progress, budgets)
            scores = self._classify(dnabert_out, esm2_out)
            host = [scores] + ([dnabert_out, esm2_out] if embeddings else [])
            host = [t.to("cpu", non_blocking=self.device.type == "cuda") for t in host]
            if self.device.type == "cuda":
                torch.cuda.current_stream(self.device).synchronize()
        finally:
            stop.set()
            producer.join()
            del dnabert_out, esm2_out
            if self.device.type == "cuda":
                torch.cuda.empty_cache()  # between shards, hand fragmented blocks back
        progress.snapshot()
        return RunOutput(
            keys=prepared.keys,
            scores=host[0].numpy(),
            dnabert=host[1].numpy() if embeddings else None,
            esm2=host[2].numpy() if embeddings else None,
            esm2_tokens=prepared.computed_tokens("esm2"),
            dnabert_tokens=prepared.computed_tokens("dnabert"),
            seconds=time.perf_counter() - started,
            started_at=started_at,
            finished_at=time.time(),
            oom_retries=budgets.oom_retries,
            peak_memory_bytes=int(torch.cuda.max_memory_reserved(self.device)) if self.device.type == "cuda" else None,
        )

    def _produce(self, prepared: PreparedShard, work, batches: queue.Queue, stop: threading.Event) -> None:
        pin = self.device.type == "cuda"
        try:
            for kind, rows in work:
                if kind == "dnabert":
                    batch = packing.assemble_padded(prepared.dnabert_tokens, rows, self.models.dnabert_pad_id, pin)
                else:
                    batch = packing.assemble_packed(prepared.esm2_tokens, rows, pin)
                if not _put_unless_stopped(batches, (kind, batch), stop):
                    return
            _put_unless_stopped(batches, _DONE, stop)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            _put_unless_stopped(batches, exc, stop)

    def _esm2_batch(self, prepared: PreparedShard, batch: packing.PackedBatch, out: torch.Tensor, progress: Progress, budgets: _Budgets) -> None:
        try:
            if self.oom_hook:
                self.oom_hook("esm2", batch.n_tokens)
            tokens = batch.tokens.to(self.device, non_blocking=True)
            cu_seqlens = batch.cu_seqlens.to(self.device, non_blocking=True)
            rows = batch.rows.to(self.device, non_blocking=True)
            pooled = self.models.embed_proteins_packed(tokens, cu_seqlens, batch.max_seqlen)
            out.index_copy_(0, rows, pooled)
        except torch.OutOfMemoryError:
            budgets.esm2 = self._halve_after_oom("esm2", batch, budgets.esm2, budgets)
            for rows in packing.plan_packed(prepared.esm2_tokens.lengths[batch.rows.numpy()], budgets.esm2):
                sub = packing.assemble_packed(prepared.esm2_tokens, batch.rows.numpy()[rows], pin=False)
                self._esm2_batch(prepared, sub, out, progress, budgets)
            return
        progress.batch_launched(len(batch.rows), batch.n_tokens, self.device)

    def _dnabert_batch(self, prepared: PreparedShard, batch: packing.PaddedBatch, out: torch.Tensor, budgets: _Budgets) -> None:
        try:
            if self.oom_hook:
                self.oom_hook("dnabert", int(batch.input_ids.numel()))
            input_ids = batch.input_ids.to(self.device, non_blocking=True)
            lengths = batch.lengths.to(self.device, non_blocking=True)
            rows = batch.rows.to(self.device, non_blocking=True)
            pooled = self.models.embed_nucleotides_padded(input_ids, lengths)
            out.index_copy_(0, rows, pooled)
        except torch.OutOfMemoryError:
            budgets.dnabert = self._halve_after_oom("dnabert", batch, budgets.dnabert, budgets)
            for rows in packing.plan_padded(prepared.dnabert_tokens.lengths[batch.rows.numpy()], budgets.dnabert):
                sub = packing.assemble_padded(
                    prepared.dnabert_tokens, batch.rows.numpy()[rows], self.models.dnabert_pad_id, pin=False
                )
                self._dnabert_batch(prepared, sub, out, budgets)

    def _halve_after_oom(self, model: str, batch, budget: int, budgets: _Budgets) -> int:
        if len(batch.rows) == 1:
            raise EngineOOM(f"{model}: out of memory on a single sequence of {batch.n_tokens} tokens")
        size = batch.n_tokens if model == "esm2" else int(batch.input_ids.numel())
        new_budget = max(1, min(budget, size) // 2)
        budgets.oom_retries += 1
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self.on_log("warning", f"{model}: out of memory on a batch of {size} tokens; token budget {budget} -> {new_budget} for the rest of this shard, retrying the same rows")
        return new_budget

    # --- 3. classifier -----------------------------------------------------------------
    def _classify(self, dnabert: torch.Tensor, esm2: torch.Tensor) -> torch.Tensor:
        return classify(self.models.classifier, dnabert, esm2)


@torch.inference_mode()
def classify(classifier: torch.nn.Module, dnabert: torch.Tensor, esm2: torch.Tensor, rows_per_step: int = 65536) -> torch.Tensor:
    """Softmax scores [N, 2] (P(others), P(virus)) of the classifier on concat(DNABERT-S, ESM-2)."""
    scores = torch.empty(dnabert.shape[0], 2, dtype=torch.float32, device=dnabert.device)
    for start in range(0, dnabert.shape[0], rows_per_step):
        end = start + rows_per_step
        features = torch.cat([dnabert[start:end], esm2[start:end]], dim=1)  # DNABERT-S first, as the original
        logits = classifier(features).float()
        scores[start:end] = torch.softmax(logits, dim=1)
    return scores


def _work_order(prepared: PreparedShard):
    """ESM-2's batches while DNABERT-S's tokens are still being made, then the rest of both
    models' batches interleaved. A batch computes the same whatever ran before it, so the
    order (which depends on when the tokeniser finishes) changes no result."""
    esm2_started = 0
    while esm2_started < len(prepared.esm2_plan) and not prepared.dnabert.done():
        yield "esm2", prepared.esm2_plan[esm2_started]
        esm2_started += 1
    yield from interleaved(prepared.dnabert_plan, prepared.esm2_plan, esm2_started)


def interleaved(dnabert_plan: list[np.ndarray], esm2_plan: list[np.ndarray], esm2_started: int = 0) -> list[tuple[str, np.ndarray]]:
    """Both models' batches as one sequence, each model's in its planned order, merged by the
    share of the model's rows done before the batch (DNABERT-S first on a tie), leaving out
    the first ``esm2_started`` ESM-2 batches. Progress is counted on ESM-2 batches, so with
    all of DNABERT-S first a shard showed no progress for its first seconds."""
    def shares(model: str, plan: list[np.ndarray]):
        total = sum(len(rows) for rows in plan) or 1
        done = 0
        for rows in plan:
            yield done / total, model == "esm2", model, rows
            done += len(rows)

    merged = heapq.merge(shares("dnabert", dnabert_plan), itertools.islice(shares("esm2", esm2_plan), esm2_started, None),
                         key=lambda batch: batch[:2])
    return [(model, rows) for _share, _esm2, model, rows in merged]


def _rows_to_compute(n: int, imported: shards.Imported | None) -> np.ndarray:
    rows = np.arange(n, dtype=np.int64)
    return rows if imported is None else np.setdiff1d(rows, imported.rows, assume_unique=True)


def _put_unless_stopped(target: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            target.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


# Share of a GPU's total memory the runtime plans to use: the rest is left to the CUDA
# context, cuBLAS workspaces and the allocator's rounding.
CUDA_USABLE_FRACTION = 0.92


def activation_memory_bytes(models: LoadedModels, total_memory: int | None = None) -> int:
    """Memory for the batches' activations: the device's usable total less the resident
    weights. Derived from the GPU model and the models, never from the memory free at load
    time, so it is the same for every runtime on that GPU model (see Determinism above).
    ``total_memory``: another card's size, for checking the rule on this one."""
    total = total_memory or torch.cuda.get_device_properties(models.device).total_memory
    return max(0, int(total * CUDA_USABLE_FRACTION) - models.weight_bytes())


def default_esm2_budget(models: LoadedModels, total_memory: int | None = None) -> int:
    if models.device.type != "cuda":
        return DEFAULT_CPU_ESM2_BUDGET
    per_token = esm2_bytes_per_token(models.esm2_hidden, models.esm2_ffn, models.dtype.itemsize)
    fits = int(activation_memory_bytes(models, total_memory) * CUDA_MEMORY_FRACTION_FOR_ACTIVATIONS) // per_token
    return max(1024, min(MAX_CUDA_ESM2_BUDGET, fits))


# Bytes per padded DNABERT-S token, fp32 (it always runs fp32): the layer's live tensors
# (residual, fused QKV, attention output, the gated MLP's 2 x intermediate and its product,
# about 8 x hidden + 4 x intermediate elements) plus its [B, heads, L, L] ALiBi bias at
# widths up to 256 tokens. ~86 KB, on the safe side: on the H200 a 262,144-token budget
# peaked at 24.9 GiB with the ESM-2 weights resident, where this estimate gives ~29 GiB
# (bench/results/2026-11-30-nvidia-h200-500-tf32-dnabert.json).
def dnabert_bytes_per_token(hidden: int = DNABERT_WIDTH, intermediate: int = 3072, heads: int = 12, width: int = 256) -> int:
    return (8 * hidden + 4 * intermediate + heads * width) * 4


def default_dnabert_budget(models: LoadedModels, esm2_budget: int, total_memory: int | None = None) -> int:
    """4x the ESM-2 budget (a DNABERT-S token is ~1/20 of the work), capped by the share of
    activation memory ESM-2's budget also gets: the two models' batches never overlap in time."""
    if models.device.type != "cuda":
        return DEFAULT_CPU_DNABERT_BUDGET
    return dnabert_budget_for(activation_memory_bytes(models, total_memory), esm2_budget)


def dnabert_budget_for(activation_bytes: int, esm2_budget: int) -> int:
    fits = int(activation_bytes * CUDA_MEMORY_FRACTION_FOR_ACTIVATIONS) // dnabert_bytes_per_token()
    return max(4096, min(4 * esm2_budget, fits))
