"""The fast path on CPU (fp32, tiny synthetic models): agreement with the original's way,
order restoration, determinism, out-of-memory retries and cancellation."""
import threading

import numpy as np
import pytest
import torch

from virnucpro_runtime import engine, models_api, shards
from virnucpro_runtime.measure import parity, reference

BENCH_FRAMES = "bench/data/frames_500bp.arrow"


@pytest.fixture(scope="module")
def models():
    return models_api.load_models(torch.device("cpu"), torch.float32, synthetic="tiny")


@pytest.fixture(scope="module")
def small_shard(tmp_path_factory):
    """24 real frames (from the benchmark set) with a few short ones, rows shuffled so that
    length-sorting really reorders them."""
    full = shards.read_frames(_repo_file(BENCH_FRAMES))
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(full))[:24]
    proteins = [full.proteins[r] if i % 4 else full.proteins[r][: 10 + i] for i, r in enumerate(rows)]
    path = tmp_path_factory.mktemp("shard") / "frames-00000.arrow"
    shards.write_frames(path, full.keys.take(rows), [full.nucleotides[r] for r in rows], proteins)
    return path


def _repo_file(relative):
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / relative


def _engine(models, **kwargs):
    # Small budgets so that a 24-frame shard spans several batches of each model.
    return engine.Engine(models, esm2_budget=kwargs.pop("esm2_budget", 800), dnabert_budget=kwargs.pop("dnabert_budget", 1000), **kwargs)


def test_fast_path_matches_the_originals_way_row_by_row(models, small_shard):
    fast = _engine(models)
    prepared = fast.prepare(small_shard)
    assert len(prepared.esm2_plan) > 2 and len(prepared.dnabert_plan) > 2
    out = fast.run(prepared, embeddings=True)
    shard = shards.read_frames(small_shard)
    ref = reference.run_reference(models, shard.nucleotides, shard.proteins)
    figures = parity.report_against_reference(out.dnabert, out.esm2, out.scores, ref)
    assert figures["esm2_cosine_min"] > 0.99999 and figures["dnabert_cosine_min"] > 0.99999
    assert figures["virus_score_diff_max"] < 1e-4 and figures["label_agreement"] == 1.0
    low, _, high = figures["reference_virus_score_quartiles"]
    assert high - low > 0.1, "the synthetic classifier should spread scores"
    # The frames' identity comes out as it went in, for the output writers to join on.
    assert out.keys.frame_ids == shard.frame_ids
    assert out.keys.record_index.tolist() == shard.keys.record_index.tolist()
    assert out.keys.chunk_index.tolist() == shard.keys.chunk_index.tolist()


def test_same_shard_twice_gives_bit_identical_scores(models, small_shard):
    fast = _engine(models)
    prepared = fast.prepare(small_shard)
    first, second = fast.run(prepared), fast.run(prepared)
    assert first.scores.tobytes() == second.scores.tobytes()


def test_the_models_batches_are_interleaved_in_planned_order_and_change_no_result(models, small_shard, monkeypatch):
    fast = _engine(models)
    prepared = fast.prepare(small_shard)
    work = engine.interleaved(prepared.dnabert_plan, prepared.esm2_plan)
    for model, plan in (("dnabert", prepared.dnabert_plan), ("esm2", prepared.esm2_plan)):
        assert [rows.tolist() for name, rows in work if name == model] == [rows.tolist() for rows in plan]
    # ESM-2 (what progress counts) starts right after DNABERT-S's first batch, not after all of them.
    assert [name for name, _ in work[:2]] == ["dnabert", "esm2"]
    merged = fast.run(prepared, embeddings=True)
    monkeypatch.setattr(engine, "_work_order", lambda p: [("dnabert", r) for r in p.dnabert_plan] + [("esm2", r) for r in p.esm2_plan])
    one_model_after_the_other = fast.run(prepared, embeddings=True)
    for name in ("scores", "dnabert", "esm2"):
        assert getattr(merged, name).tobytes() == getattr(one_model_after_the_other, name).tobytes()


def test_esm2_batches_run_while_dnabert_s_is_still_being_tokenised(models, small_shard):
    import concurrent.futures
    import dataclasses

    fast = _engine(models)
    ready = fast.prepare(small_shard)
    pending = dataclasses.replace(ready, dnabert=concurrent.futures.Future())
    order = engine._work_order(pending)
    first_two = [next(order), next(order)]
    assert [name for name, _ in first_two] == ["esm2", "esm2"]
    pending.dnabert.set_result(ready.dnabert.result())
    rest = list(order)
    assert [rows.tolist() for name, rows in first_two + rest if name == "esm2"] == [rows.tolist() for rows in ready.esm2_plan]
    assert [rows.tolist() for name, rows in rest if name == "dnabert"] == [rows.tolist() for rows in ready.dnabert_plan]


def test_out_of_memory_halves_the_budget_for_the_shard_and_retries_the_same_rows(models, small_shard):
    limit = {"esm2": 500, "dnabert": 600}

    def fake_device_limit(model, tokens):
        if tokens > limit[model]:
            raise torch.cuda.OutOfMemoryError(f"test hook: {tokens} tokens exceed {limit[model]}")

    logged = []
    constrained = _engine(models, oom_hook=fake_device_limit)
    constrained.on_log = lambda level, message: logged.append((level, message))
    prepared = constrained.prepare(small_shard)
    out = constrained.run(prepared)
    baseline = _engine(models).run(_engine(models).prepare(small_shard))
    assert any("esm2: out of memory" in m for _, m in logged) and any("dnabert: out of memory" in m for _, m in logged)
    assert out.oom_retries >= 2
    np.testing.assert_allclose(out.scores, baseline.scores, atol=1e-5)
    # The next shard starts from the configured budgets again: a shard's batches never depend
    # on an earlier shard, so it gives the same scores after the same retries.
    assert (constrained.esm2_budget, constrained.dnabert_budget) == (800, 1000)
    again = constrained.run(constrained.prepare(small_shard))
    assert again.oom_retries == out.oom_retries and again.scores.tobytes() == out.scores.tobytes()


def test_out_of_memory_on_a_single_sequence_is_reported_not_skipped(models, small_shard):
    def nothing_fits(model, tokens):
        raise torch.cuda.OutOfMemoryError("test hook: no memory at all")

    with pytest.raises(engine.EngineOOM, match="single sequence"):
        _engine(models, oom_hook=nothing_fits).run(_engine(models).prepare(small_shard))


def test_cancelled_run_stops_with_run_cancelled(models, small_shard):
    fast = _engine(models)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(engine.RunCancelled):
        fast.run(fast.prepare(small_shard), cancel=cancel)


def test_progress_counts_every_frame_once(models, small_shard):
    fast = _engine(models)
    progress = engine.Progress(frames_total=24)
    fast.run(fast.prepare(small_shard), progress=progress)
    frames, tokens, _ = progress.snapshot()
    assert frames == 24 and tokens == sum(len(p) + 2 for p in shards.read_frames(small_shard).proteins)


def test_dnabert_budget_is_four_esm2_budgets_unless_memory_is_short():
    gib = 2**30
    assert engine.dnabert_budget_for(130 * gib, 65536) == 4 * 65536  # an H200: memory is no limit
    small = engine.dnabert_budget_for(17 * gib, 59000)  # a 24 GB card after loading the models
    assert 4096 <= small < 4 * 59000
    assert small * engine.dnabert_bytes_per_token() <= 17 * gib * engine.CUDA_MEMORY_FRACTION_FOR_ACTIVATIONS


def test_rate_window_spans_shards_and_forgets_old_samples():
    window = engine.RateWindow(seconds=10)
    assert window.sample(0, 0, now=0.0) == (0.0, 0.0)
    assert window.sample(100, 1_000, now=1.0) == (100.0, 1_000.0)
    assert window.sample(200, 2_000, now=2.0) == (100.0, 1_000.0)
    window.run_finished(200, 2_000)
    # The next shard's first sample: its own count restarts, the device's rate does not dip.
    assert window.sample(0, 0, now=2.5) == (80.0, 800.0)
    assert window.sample(100, 1_000, now=3.0) == (100.0, 1_000.0)
    # Twenty seconds later, at half the speed: only the last ten seconds count.
    for step in range(1, 21):
        rate = window.sample(100 + 50 * step, 1_000 + 500 * step, now=3.0 + step)
    assert rate == pytest.approx((50.0, 500.0), rel=0.01)


def test_imported_embeddings_are_used_as_given_and_only_the_rest_is_computed(models, small_shard, tmp_path):
    fast = _engine(models)
    full = fast.run(fast.prepare(small_shard), embeddings=True)
    shard = shards.read_frames(small_shard)
    rng = np.random.default_rng(1)
    given_dnabert = rng.standard_normal((24, 768)).astype(np.float32)
    given_esm2 = rng.standard_normal((24, 2560)).astype(np.float32)
    # DNABERT-S imported for all frames but two, ESM-2 for every third frame.
    dnabert = [None if i in (3, 17) else given_dnabert[i] for i in range(24)]
    esm2 = [given_esm2[i] if i % 3 == 0 else None for i in range(24)]
    path = tmp_path / "frames-00000.arrow"
    shards.write_frames(path, shard.keys, shard.nucleotides, shard.proteins, {"dnabert": dnabert, "esm2": esm2})
    prepared = fast.prepare(path)
    assert sorted(np.concatenate(prepared.dnabert_plan).tolist()) == [3, 17]
    assert sorted(np.concatenate(prepared.esm2_plan).tolist()) == [i for i in range(24) if i % 3]
    out = fast.run(prepared, embeddings=True)
    for i in range(24):
        expected_dnabert = full.dnabert[i] if i in (3, 17) else given_dnabert[i]
        expected_esm2 = given_esm2[i] if i % 3 == 0 else full.esm2[i]
        np.testing.assert_allclose(out.dnabert[i], expected_dnabert, rtol=0, atol=1e-5)
        np.testing.assert_allclose(out.esm2[i], expected_esm2, rtol=0, atol=1e-5)
    assert out.dnabert_tokens == int(prepared.dnabert_tokens.lengths[[3, 17]].sum())
