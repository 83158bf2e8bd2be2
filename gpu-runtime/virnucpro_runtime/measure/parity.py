"""How right the fast path is: its embeddings and labels against the fp32 reference.

Embeddings: the cosine of every ESM-2 and DNABERT-S vector with the original's way
(reference.py: fp32, padded fair-esm batches, DNABERT-S one sequence at a time).

Against the fp32 engine on every parity frame: the ESM-2 cosine's minimum and low quantiles,
and the label agreement's one-sided 95% lower bound (Clopper-Pearson: 0 changes in n frames
bound the change rate below ~3/n, so 99.9% needs ~3,000 held-out frames without a change,
and ~20,000 to allow a dozen).

Labels and scores need a classifier, and the published ones cannot be downloaded here.
Two stand-ins, both fitted on the fp32 reference features of one half of the frames and
measured on the other, held-out half (split by read, proxy_classifier.held_out_mask):

- ``trained``: the original's architecture trained on viral vs Klebsiella frames
  (proxy_classifier), as the published classifier was trained on real classes. Its
  decision boundary follows directions that separate the classes, as the real one's does.
  This is the headline figure.
- ``random_direction``: a random MLP calibrated so its scores spread evenly over (0, 1)
  (synthetic.calibrate_): its boundary follows an arbitrary direction of the embeddings
  and puts many frames next to it. The worst case, reported beside the headline.

A label depends only on the sign of the logit difference, so rescaling the trained
classifier's logits to spread its scores (a temperature) moves no label: its agreement
holds for any such spread.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import synthetic
from ..models.classifier import MLPClassifier
from . import proxy_classifier


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def cosine_figures(prefix: str, fast: np.ndarray, ref: np.ndarray) -> dict:
    c = cosines(fast, ref)
    return {f"{prefix}_cosine_min": float(c.min()), f"{prefix}_cosine_median": float(np.median(c))}


COSINE_QUANTILES = (0.001, 0.01, 0.05, 0.5)


def cosine_quantiles(fast: np.ndarray, ref: np.ndarray) -> dict:
    """The cosines' minimum and low quantiles: a proof of parity needs the tail, not the median."""
    c = cosines(fast, ref)
    return {"frames": int(len(c)), "min": float(c.min()), **{f"q{q:g}": float(np.quantile(c, q)) for q in COSINE_QUANTILES}}


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (n may be 10^5)."""
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0 if k < n else 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    return min(1.0, sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
                        for i in range(k + 1)))


def change_rate_upper_bound(changed: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate from ``changed`` events in ``n``
    trials: the largest rate under which ``changed`` or fewer would still be seen with
    probability >= 1 - confidence (0 of n: 1 - 0.05^(1/n), about 3/n)."""
    if changed >= n:
        return 1.0
    alpha, low, high = 1 - confidence, changed / n, 1.0
    for _ in range(60):  # bisection: the CDF falls as the rate grows
        middle = (low + high) / 2
        low, high = (middle, high) if _binomial_cdf(changed, n, middle) > alpha else (low, middle)
    return high


def report_against_reference(fast_dnabert: np.ndarray, fast_esm2: np.ndarray, fast_scores: np.ndarray, ref) -> dict:
    """Cosines of every embedding, virus-score differences and label agreement against
    ``ref`` (a reference.ReferenceOutput), whose own scores stand for the labels."""
    diff = np.abs(fast_scores[:, 1].astype(np.float64) - ref.scores[:, 1])
    same_label = (fast_scores.argmax(1) == ref.scores.argmax(1)).mean()
    virus = ref.scores[:, 1]
    return {
        "frames": int(len(diff)),
        **cosine_figures("esm2", fast_esm2, ref.esm2),
        **cosine_figures("dnabert", fast_dnabert, ref.dnabert),
        "virus_score_diff_max": float(diff.max()),
        "virus_score_diff_p99": float(np.quantile(diff, 0.99)),
        "label_agreement": float(same_label),
        "reference_virus_score_quartiles": [float(q) for q in np.quantile(virus, [0.25, 0.5, 0.75])],
    }


def features(dnabert: np.ndarray, esm2: np.ndarray, device: torch.device) -> torch.Tensor:
    """The classifier's input: DNABERT-S first, then ESM-2, as the original concatenates."""
    return torch.from_numpy(np.concatenate([dnabert, esm2], axis=1)).to(device)


def fit_classifiers(reference: torch.Tensor, frame_ids: list[str]) -> dict[str, MLPClassifier]:
    """Both stand-ins, fitted on the training half of ``reference`` [N, 3328] (fp32)."""
    train = torch.from_numpy(~proxy_classifier.held_out_mask(frame_ids)).to(reference.device)
    labels = torch.from_numpy(proxy_classifier.bench_frame_labels(frame_ids)).to(reference.device)
    random_mlp = synthetic.randomize_(MLPClassifier(), seed=5).to(reference.device).eval()
    return {
        "trained": proxy_classifier.train_classifier(reference[train], labels[train]),
        "random_direction": synthetic.calibrate_(random_mlp, reference[train]),
    }


def median_pairwise_cosine(x: np.ndarray, k: int = 256) -> float:
    """How far apart frames are to begin with: with random weights, embeddings of
    different frames are nearly parallel, which magnifies rounding for a classifier."""
    unit = x[:k] / np.linalg.norm(x[:k], axis=1, keepdims=True)
    pairs = unit @ unit.T
    return float(np.median(pairs[np.triu_indices(len(unit), 1)]))


def label_figures(classifier: MLPClassifier, fast: torch.Tensor, ref_scores: np.ndarray) -> dict:
    """Labels and virus scores of ``fast`` features against the reference's scores."""
    scores = proxy_classifier.virus_scores(classifier, fast)
    diff = np.abs(scores.astype(np.float64) - ref_scores)
    flips = int(((scores > 0.5) != (ref_scores > 0.5)).sum())
    return {
        "label_agreement": 1 - flips / len(scores),
        "labels_changed": flips,
        "virus_score_diff_max": float(diff.max()),
        "virus_score_diff_p99": float(np.quantile(diff, 0.99)),
        "reference_scores": proxy_classifier.score_spread(ref_scores),
    }


def parity_report(fast, reference, original, frame_ids: list[str], device: torch.device) -> dict:
    """``fast`` and ``reference``: embeddings (``.dnabert``, ``.esm2``) of the same frames
    from the fast path and from the fp32 engine; ``original``: the original's way on the
    first frames (its cosines are the embedding figures)."""
    n_original = len(original.esm2)
    report = {
        "frames": len(frame_ids),
        "frames_vs_original": n_original,
        **cosine_figures("esm2", fast.esm2[:n_original], original.esm2),
        **cosine_figures("dnabert", fast.dnabert[:n_original], original.dnabert),
    }
    held_out = torch.from_numpy(proxy_classifier.held_out_mask(frame_ids)).to(device)
    labels = proxy_classifier.bench_frame_labels(frame_ids)
    ref_x = features(reference.dnabert, reference.esm2, device)
    fast_x = features(fast.dnabert, fast.esm2, device)
    report["held_out_frames"] = int(held_out.sum())
    report["classifiers"] = {}
    # Which model's rounding moves labels: the fast embeddings of one model at a time.
    one_fast = {"dnabert": features(fast.dnabert, reference.esm2, device)[held_out],
                "esm2": features(reference.dnabert, fast.esm2, device)[held_out]}
    for name, classifier in fit_classifiers(ref_x, frame_ids).items():
        ref_scores = proxy_classifier.virus_scores(classifier, ref_x[held_out])
        figures = label_figures(classifier, fast_x[held_out], ref_scores)
        figures["reference_accuracy_vs_origin"] = float(((ref_scores > 0.5) == labels[held_out.cpu().numpy()]).mean())
        for model, mixed in one_fast.items():
            alone = label_figures(classifier, mixed, ref_scores)
            figures[f"label_agreement_fast_{model}_only"] = alone["label_agreement"]
            figures[f"labels_changed_fast_{model}_only"] = alone["labels_changed"]
        report["classifiers"][name] = figures
    headline = report["classifiers"]["trained"]
    for key in ("label_agreement", "labels_changed", "virus_score_diff_max", "virus_score_diff_p99"):
        report[key] = headline[key]
    report["label_agreement_lower_95"] = 1 - change_rate_upper_bound(headline["labels_changed"], report["held_out_frames"])
    report["esm2_cosine_vs_fp32_engine"] = cosine_quantiles(fast.esm2, reference.esm2)
    report["label_agreement_random_direction"] = report["classifiers"]["random_direction"]["label_agreement"]
    report["inter_frame_cosine_median"] = {"esm2": median_pairwise_cosine(reference.esm2),
                                           "dnabert": median_pairwise_cosine(reference.dnabert)}
    return report
