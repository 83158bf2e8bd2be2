"""The parity measurement's parts: frame labels and the held-out split of the benchmark
frames, the trained stand-in classifier, the label figures, and the precision the fast
path gives each model."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from virnucpro_runtime import models_api, shards
from virnucpro_runtime.measure import parity, proxy_classifier

IDS = ["read0000000_chunk_1F2", "read0000001_chunk_1R1", "read0000002_chunk_1F1", "read0000003_chunk_2R3",
       "read0000004_chunk_1F3", "read0000006_chunk_1R2", "read0000007_chunk_1F1"]


def test_labels_follow_make_bench_frames_alternation_and_split_by_pairs_of_reads():
    assert proxy_classifier.bench_frame_labels(IDS).tolist() == [1, 0, 1, 0, 1, 1, 0]
    assert proxy_classifier.held_out_mask(IDS).tolist() == [False, False, True, True, False, True, True]
    with pytest.raises(ValueError, match="not a benchmark frame id"):
        proxy_classifier.bench_frame_labels(["contig_1F1"])


def test_the_bench_frames_give_balanced_halves():
    frames = shards.read_frames(Path(__file__).resolve().parents[2] / "bench/data/frames_500bp.arrow")
    labels = proxy_classifier.bench_frame_labels(frames.frame_ids)
    held_out = proxy_classifier.held_out_mask(frames.frame_ids)
    assert 0.4 < held_out.mean() < 0.6
    assert 0.3 < labels[held_out].mean() < 0.7 and 0.3 < labels[~held_out].mean() < 0.7


def _two_classes(n: int, seed: int, shift: float = 0.6):
    """Features that look like random-weight embeddings (a large shared component plus
    small per-frame variation) with a class signal along one direction."""
    g = torch.Generator().manual_seed(seed)
    common = torch.randn(3328, generator=torch.Generator().manual_seed(0)) * 3
    direction = torch.randn(3328, generator=torch.Generator().manual_seed(1))
    direction /= direction.norm()
    labels = torch.arange(n) % 2
    x = common + 0.05 * torch.randn(n, 3328, generator=g) + shift * (labels[:, None] - 0.5) * direction
    return x, labels


def test_trained_stand_in_learns_a_separable_task():
    x, y = _two_classes(400, seed=2)
    classifier = proxy_classifier.train_classifier(x[:200], y[:200], epochs=20)
    scores = proxy_classifier.virus_scores(classifier, x[200:])
    assert ((scores > 0.5) == y[200:].numpy().astype(bool)).mean() > 0.95
    spread = proxy_classifier.score_spread(scores)
    assert len(spread["deciles"]) == 9 and spread["deciles"][0] < 0.5 < spread["deciles"][-1]


def test_label_figures_count_flips_and_score_differences():
    x, y = _two_classes(200, seed=3)
    classifier = proxy_classifier.train_classifier(x, y, epochs=10)
    ref_scores = proxy_classifier.virus_scores(classifier, x)
    same = parity.label_figures(classifier, x, ref_scores)
    assert same["label_agreement"] == 1.0 and same["labels_changed"] == 0 and same["virus_score_diff_max"] == 0.0
    noisy = parity.label_figures(classifier, x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(4)), ref_scores)
    assert noisy["labels_changed"] > 0 and noisy["label_agreement"] == 1 - noisy["labels_changed"] / 200


def test_parity_report_on_identical_embeddings_agrees_everywhere():
    frame_ids = [f"read{i // 2:07d}_chunk_1F{i % 2 + 1}" for i in range(80)]
    rng = np.random.default_rng(5)
    emb = SimpleNamespace(dnabert=(1 + 0.05 * rng.standard_normal((80, 768))).astype(np.float32),
                          esm2=(1 + 0.05 * rng.standard_normal((80, 2560))).astype(np.float32))
    original = SimpleNamespace(dnabert=emb.dnabert[:16], esm2=emb.esm2[:16])
    report = parity.parity_report(emb, emb, original, frame_ids, torch.device("cpu"))
    assert report["frames"] == 80 and report["frames_vs_original"] == 16 and report["held_out_frames"] == 40
    assert report["label_agreement"] == 1.0 and report["label_agreement_random_direction"] == 1.0
    assert report["esm2_cosine_min"] == pytest.approx(1.0) and report["dnabert_cosine_min"] == pytest.approx(1.0)
    assert set(report["classifiers"]) == {"trained", "random_direction"}
    assert report["classifiers"]["trained"]["label_agreement_fast_dnabert_only"] == 1.0
    assert report["classifiers"]["trained"]["labels_changed_fast_esm2_only"] == 0


def test_parity_report_says_which_models_fast_path_moved_the_labels():
    """Only ESM-2's embeddings differ: every changed label is ESM-2's, none DNABERT-S's."""
    frame_ids = [f"read{i // 2:07d}_chunk_1F{i % 2 + 1}" for i in range(400)]
    rng = np.random.default_rng(6)
    reference = SimpleNamespace(dnabert=(1 + 0.05 * rng.standard_normal((400, 768))).astype(np.float32),
                                esm2=(1 + 0.05 * rng.standard_normal((400, 2560))).astype(np.float32))
    fast = SimpleNamespace(dnabert=reference.dnabert, esm2=reference.esm2 + 0.2 * rng.standard_normal((400, 2560)).astype(np.float32))
    original = SimpleNamespace(dnabert=reference.dnabert[:16], esm2=reference.esm2[:16])
    report = parity.parity_report(fast, reference, original, frame_ids, torch.device("cpu"))
    for name, figures in report["classifiers"].items():
        assert figures["labels_changed_fast_dnabert_only"] == 0, name
        assert figures["labels_changed_fast_esm2_only"] == figures["labels_changed"], name
    assert report["classifiers"]["random_direction"]["labels_changed"] > 0  # the test has something to attribute


def test_dnabert_stays_fp32_and_uses_tf32_only_on_the_cuda_fast_path():
    assert models_api.dnabert_uses_tf32(torch.device("cuda", 0), torch.bfloat16)
    assert not models_api.dnabert_uses_tf32(torch.device("cuda", 0), torch.float32)
    assert not models_api.dnabert_uses_tf32(torch.device("cpu"), torch.bfloat16)
    models = models_api.load_models(torch.device("cpu"), torch.bfloat16, synthetic="tiny")
    assert next(models.esm2.parameters()).dtype == torch.bfloat16
    assert next(models.dnabert.parameters()).dtype == torch.float32
    assert models.precision() == {"esm2": "bfloat16", "dnabert": "float32", "classifier": "float32"}


def test_tf32_matmuls_restores_the_previous_setting():
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    with models_api.tf32_matmuls():
        assert matmul.fp32_precision == "tf32"
    assert matmul.fp32_precision == before


def test_clopper_pearson_bound_of_the_label_change_rate():
    """The one-sided 95% upper bound used for "labels unchanged on >= 99.9%": known values."""
    change_rate_upper_bound = parity.change_rate_upper_bound
    assert abs(change_rate_upper_bound(0, 1549) - (1 - 0.05 ** (1 / 1549))) < 1e-12  # ~0.19%, the README's "~0.2%"
    assert abs(change_rate_upper_bound(1, 10) - 0.39416) < 1e-4  # Beta(0.95; 2, 9)
    assert change_rate_upper_bound(12, 20_000) < 0.001 < change_rate_upper_bound(14, 20_000)
    assert change_rate_upper_bound(5, 5) == 1.0
