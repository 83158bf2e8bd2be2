"""A trained stand-in for the published classifier, for parity measurements without real
weights.

The published ``300_model.pth`` / ``500_model.pth`` were trained on fp32 embeddings of
viral and non-viral reads, so their decision function follows directions that separate
the two classes. A classifier with random weights (``synthetic.calibrate_``) instead
follows an arbitrary direction of the embeddings and, calibrated to spread scores over
(0, 1), puts a large share of frames next to the decision boundary: a worst case for
label agreement, kept in the benchmark as such.

The stand-in is the same architecture (``MLPClassifier``) trained the usual way (Adam,
cross-entropy, BatchNorm in training mode, dropout 0.5) on the fp32 reference embeddings
of the benchmark frames, labelled by origin: ``make_bench_frames.py`` alternates reads
from the viral genomes (even read index) and the Klebsiella genome (odd). Frames are
split by read into a training half and a held-out half; agreement is measured on the
held-out half only.
"""
from __future__ import annotations

import re

import numpy as np
import torch

from ..models.classifier import MLPClassifier, softmax_scores

_READ_INDEX = re.compile(r"^read(\d+)_chunk_")


def read_index(frame_id: str) -> int:
    match = _READ_INDEX.match(frame_id)
    if match is None:
        raise ValueError(f"frame id {frame_id!r} is not a benchmark frame id (readNNNNNNN_chunk_...)")
    return int(match.group(1))


def bench_frame_labels(frame_ids: list[str]) -> np.ndarray:
    """1 for frames of reads cut from a viral genome, 0 for Klebsiella (int64 [N])."""
    return np.array([1 - read_index(f) % 2 for f in frame_ids], dtype=np.int64)


def held_out_mask(frame_ids: list[str]) -> np.ndarray:
    """True for frames of the held-out half: every other pair of reads, so both halves
    keep the viral/Klebsiella balance and no read has frames on both sides."""
    return np.array([(read_index(f) // 2) % 2 == 1 for f in frame_ids], dtype=bool)


def train_classifier(
    features: torch.Tensor, labels: torch.Tensor, seed: int = 11, epochs: int = 40, batch_size: int = 128, lr: float = 1e-3
) -> MLPClassifier:
    """Train MLPClassifier on features [N, 3328] float32 and labels [N] int64 (on one
    device) and return it in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MLPClassifier().to(features.device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = features.shape[0]
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator).to(features.device)
            for start in range(0, n - 1, batch_size):  # a last batch of one would break BatchNorm
                rows = order[start:start + batch_size]
                if rows.numel() < 2:
                    continue
                optimiser.zero_grad(set_to_none=True)
                loss_fn(model(features[rows]), labels[rows]).backward()
                optimiser.step()
    return model.eval()


@torch.inference_mode()
def virus_scores(classifier: MLPClassifier, features: torch.Tensor) -> np.ndarray:
    return softmax_scores(classifier(features))[:, 1].cpu().numpy()


def score_spread(scores: np.ndarray) -> dict:
    """How the virus scores spread over (0, 1): deciles and the share in the middle."""
    return {
        "deciles": [float(q) for q in np.quantile(scores, np.linspace(0.1, 0.9, 9))],
        "share_between_0.1_and_0.9": float(((scores > 0.1) & (scores < 0.9)).mean()),
        "share_between_0.4_and_0.6": float(((scores > 0.4) & (scores < 0.6)).mean()),
    }
