"""The benchmark script end to end on a CPU with tiny models: every stage runs, the JSON
carries the agreed fields, and --tune stores a budget that serve's loader then reads."""
import argparse
import json

import pytest
import torch

from virnucpro_runtime import tuning
from virnucpro_runtime.measure import bench

REQUIRED = ("gpu", "torch", "commit", "date", "read_length", "esm2_tokens_per_s", "dnabert_tokens_per_s",
            "end_to_end_frames_per_s", "gpu_busy_fraction", "peak_memory_gib", "parity")


def _run_bench(tmp_path, monkeypatch, *extra: str) -> dict:
    """``bench`` on the CPU with the tiny models and small samples, plus ``extra`` arguments."""
    monkeypatch.setenv("VIRNUCPRO_STATE_DIR", str(tmp_path / "state"))
    parser = argparse.ArgumentParser()
    bench.configure(parser)
    out = tmp_path / "bench.json"
    args = parser.parse_args(["--device", "cpu", "--size", "tiny", "--sample-frames", "12", "--original-frames", "8",
                              "--repeats", "1", "--out", str(out), *extra])
    assert bench.main(args) == 0
    return json.loads(out.read_text())


def test_bench_runs_every_stage_and_tune_stores_a_budget(tmp_path, monkeypatch):
    report = _run_bench(tmp_path, monkeypatch, "--parity-frames", "24", "--e2e-frames", "16", "--tune")
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
    # no FP8 matmuls on a CPU: the part is skipped, saying why, never emulated unasked
    assert "compute capability >= 8.9" in report["fp8"]["skipped"] and "ours_fp8" not in report["esm2_tokens_per_s"]

    stored = json.loads((tmp_path / "state" / "token-budgets.json").read_text())
    entry = stored["cpu|float32"]
    assert entry["esm2_token_budget"] == report["tune"]["best"] == report["esm2_token_budget"]
    models = bench.build_models("tiny", torch.device("cpu"))
    assert tuning.tuned_budget(torch.device("cpu"), models) == entry["esm2_token_budget"]


def test_bench_measures_the_fp8_path_beside_ours_with_its_parity(tmp_path, monkeypatch):
    """--fp8-emulate: the FP8 part on a CPU (rates meaningless, logic and report real)."""
    report = _run_bench(tmp_path, monkeypatch, "--parity-frames", "40", "--skip", "hf,e2e", "--fp8-emulate")
    assert report["esm2_tokens_per_s"]["ours_fp8"] > 0 and report["fp8_vs_ours"] > 0
    fp8 = report["fp8"]
    assert "float8_e4m3fn" in fp8["precision"]["esm2"] and "emulated" in fp8["precision"]["esm2"]
    assert fp8["compiled_esm2"] is False and "eager" in fp8
    for p in (report["parity"], fp8["parity"]):
        assert p["frames"] == 40 and 0 < p["held_out_frames"] < 40
        cos = p["esm2_cosine_vs_fp32_engine"]
        assert cos["frames"] == 40 and cos["min"] <= cos["q0.001"] <= cos["q0.01"] <= cos["q0.05"] <= cos["q0.5"] <= 1 + 1e-12
        n, changed = p["held_out_frames"], p["labels_changed"]
        assert 0 < p["label_agreement_lower_95"] <= 1 - changed / n
    assert report["parity"]["esm2_cosine_vs_fp32_engine"]["min"] > 0.99999  # ours is fp32 on a CPU
    assert 0.999 <= fp8["parity"]["esm2_cosine_vs_fp32_engine"]["min"] < 0.99999  # fp8 really ran, and stays close
    # 0 changes in n held-out frames: the one-sided 95% bound is 0.05^(1/n)
    if fp8["parity"]["labels_changed"] == 0:
        assert abs(fp8["parity"]["label_agreement_lower_95"] - 0.05 ** (1 / fp8["parity"]["held_out_frames"])) < 1e-9
    assert "ours_fp8" in bench.table(report)


def test_parity_frames_beyond_the_frame_file_are_refused(tmp_path):
    parser = argparse.ArgumentParser()
    bench.configure(parser)
    args = parser.parse_args(["--device", "cpu", "--size", "tiny", "--parity-frames", "100000", "--out", str(tmp_path / "b.json")])
    with pytest.raises(SystemExit, match="distinct frames"):
        bench.main(args)
