"""The benchmark script end to end on a CPU with tiny models: every stage runs, the JSON
carries the agreed fields, and --tune stores a budget that serve's loader then reads."""
import argparse
import json

import torch

from virnucpro_runtime import tuning
from virnucpro_runtime.measure import bench

REQUIRED = ("gpu", "torch", "commit", "date", "read_length", "esm2_tokens_per_s", "dnabert_tokens_per_s",
            "end_to_end_frames_per_s", "gpu_busy_fraction", "peak_memory_gib", "parity")


def test_bench_runs_every_stage_and_tune_stores_a_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("VIRNUCPRO_STATE_DIR", str(tmp_path / "state"))
    parser = argparse.ArgumentParser()
    bench.configure(parser)
    out = tmp_path / "bench.json"
    args = parser.parse_args(["--device", "cpu", "--size", "tiny", "--sample-frames", "12", "--original-frames", "8", "--parity-frames", "24",
                              "--e2e-frames", "16", "--repeats", "1", "--tune", "--out", str(out)])
    assert bench.main(args) == 0
    report = json.loads(out.read_text())
    assert all(key in report for key in REQUIRED)
    assert report["read_length"] == 500
    assert set(report["esm2_tokens_per_s"]) >= {"ours", "original"} and report["dnabert_tokens_per_s"]["hf_bf16"] > 0
    parity = report["parity"]
    assert parity["frames"] == 24 and parity["frames_vs_original"] == 8 and 0 < parity["held_out_frames"] < 24
    # fp32 on CPU: the fast path computes the reference's numbers, so no label may move
    assert parity["label_agreement"] == 1.0 and parity["label_agreement_random_direction"] == 1.0
    assert parity["esm2_cosine_min"] > 0.99999 and parity["dnabert_cosine_min"] > 0.99999
    assert report["precision_ours"] == {"esm2": "float32", "dnabert": "float32", "classifier": "float32"}
    assert set(parity["inter_frame_cosine_median"]) == {"esm2", "dnabert"}
    assert report["end_to_end"]["frames"] == 16

    stored = json.loads((tmp_path / "state" / "token-budgets.json").read_text())
    entry = stored["cpu|float32"]
    assert entry["esm2_token_budget"] == report["tune"]["best"] == report["esm2_token_budget"]
    models = bench.build_models("tiny", torch.device("cpu"))
    assert tuning.tuned_budget(torch.device("cpu"), models) == entry["esm2_token_budget"]
