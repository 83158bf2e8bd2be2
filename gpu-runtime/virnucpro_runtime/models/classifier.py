"""VirNucPro's MLP classifier and a loader for its pickled `.pth` files that runs no
pickled code.

    model = load_classifier(path, device)         # eval mode, float32
    probs = softmax_scores(model(x))              # x [B, 3328] = concat(DNABERT-S, ESM-2)
    # probs[:, 0] = P(others), probs[:, 1] = P(virus)

The published `300_model.pth` / `500_model.pth` are whole modules saved with
`torch.save(model)` from a script, so their pickle names the class
`__main__.MLPClassifier` and may hold CUDA tensors. Plain `torch.load` would import and
run whatever the pickle names. `restricted_load` instead resolves only an allow-list of
names: the tensor and parameter rebuild functions, plain containers, and inert stand-ins
for the module classes, whose state (`_parameters`, `_buffers`, `_modules`) is then read
as data (see `weights_pickle`). A plain state-dict file goes through the same loader.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..weights_pickle import check_state, module_state, restricted_load

INPUT_DIM = 768 + 2560  # DNABERT-S first, then ESM-2, as the original concatenates them
HIDDEN_DIM = 512
NUM_CLASSES = 2


class MLPClassifier(nn.Module):
    """Linear(3328, 512) -> BatchNorm1d -> ReLU -> Dropout(0.5) -> Linear(512, 2); the
    attribute names are the original's, so its state-dict keys load unchanged."""

    def __init__(self, input_dim: int = INPUT_DIM, hidden_dim: int = HIDDEN_DIM, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.hidden_layer = nn.Linear(input_dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.dropout = nn.Dropout(0.5)
        self.output_layer = nn.Linear(hidden_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.dropout(torch.relu(self.bn1(self.hidden_layer(x)))))


def softmax_scores(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities in float32: column 0 = others, column 1 = virus."""
    return torch.softmax(logits.float(), dim=1)


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> MLPClassifier:
    """The original's pickled whole-module `.pth`, or a plain state dict, as an eval-mode
    float32 MLPClassifier on `device`."""
    state = module_state(restricted_load(path))
    model = MLPClassifier()
    check_state(path, state, model.state_dict())
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.to(device).eval()
