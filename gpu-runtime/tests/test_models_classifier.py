"""The classifier loader against the original's way of unpickling its `.pth`."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from virnucpro_runtime.models.classifier import MLPClassifier, load_classifier, softmax_scores
from virnucpro_runtime.synthetic import save_like_original
from virnucpro_runtime.weights_pickle import CheckpointError

# The original's class as prediction.py / train.py define it, run as a script so that its
# pickle names __main__.MLPClassifier; it saves the whole module and scores inputs the
# original's way (torch.load of the whole module, eval, softmax).
ORIGINAL_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    from torch import nn
    import torch.nn.functional as F

    class MLPClassifier(nn.Module):
        def __init__(self, input_dim, hidden_dim, num_class):
            super(MLPClassifier, self).__init__()
            self.hidden_layer = nn.Linear(input_dim, hidden_dim)
            self.bn1 = nn.BatchNorm1d(hidden_dim)
            self.output_layer = nn.Linear(hidden_dim, num_class)
            self.dropout = nn.Dropout(0.5)

        def forward(self, x):
            x = self.hidden_layer(x)
            x = self.bn1(x)
            x = F.relu(x)
            x = self.dropout(x)
            x = self.output_layer(x)
            return x

    mode, path, inputs, outputs = sys.argv[1:5]
    if mode == "save":
        torch.manual_seed(0)
        model = MLPClassifier(3328, 512, 2)
        model.train()
        for _ in range(3):  # gives BatchNorm non-trivial running statistics
            model(torch.randn(64, 3328) * 2 + 0.5)
        torch.save(model, path)
    model = torch.load(path, weights_only=False)
    model.eval()
    with torch.no_grad():
        probs = F.softmax(model(torch.from_numpy(np.load(inputs))), dim=1)
    np.save(outputs, probs.numpy())
    """
)


def run_original(tmp_path, mode: str, path, inputs: np.ndarray) -> np.ndarray:
    script = tmp_path / "original_prediction.py"
    script.write_text(ORIGINAL_SCRIPT)
    np.save(tmp_path / "inputs.npy", inputs)
    subprocess.run(
        [sys.executable, str(script), mode, str(path), str(tmp_path / "inputs.npy"), str(tmp_path / "outputs.npy")],
        check=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    return np.load(tmp_path / "outputs.npy")


def test_original_pickle_gives_identical_scores(tmp_path):
    inputs = np.random.default_rng(0).normal(size=(50, 3328)).astype(np.float32)
    path = tmp_path / "500_model.pth"
    expected = run_original(tmp_path, "save", path, inputs)
    model = load_classifier(path)
    with torch.no_grad():
        ours = softmax_scores(model(torch.from_numpy(inputs))).numpy()
    np.testing.assert_array_equal(ours, expected)
    assert model.bn1.num_batches_tracked.item() == 3


def test_our_original_style_pickle_loads_in_the_original(tmp_path):
    model = MLPClassifier().eval()
    with torch.no_grad():
        model.bn1.running_var.uniform_(0.5, 2.0)
    path = save_like_original(model, tmp_path / "classifier.pth")
    inputs = np.random.default_rng(1).normal(size=(8, 3328)).astype(np.float32)
    with torch.no_grad():
        ours = softmax_scores(model(torch.from_numpy(inputs))).numpy()
    np.testing.assert_array_equal(run_original(tmp_path, "load", path, inputs), ours)
    assert type(model) is MLPClassifier  # the temporary class swap is undone


def test_plain_state_dict_loads(tmp_path):
    model = MLPClassifier().eval()
    torch.save(model.state_dict(), tmp_path / "state.pt")
    loaded = load_classifier(tmp_path / "state.pt")
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch EXPLOITED",))


def test_malicious_reduce_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"hidden_layer.weight": torch.zeros(1), "payload": Exploit()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refusing to load '(posix|os|nt).system'"):
        load_classifier(tmp_path / "evil.pth")
    assert not (tmp_path / "EXPLOITED").exists()


def test_raw_pickle_with_eval_is_refused(tmp_path):
    (tmp_path / "evil.pth").write_bytes(pickle.dumps(eval, protocol=2))
    with pytest.raises(CheckpointError, match=r"refusing to load '(__builtin__|builtins)\.eval'"):
        load_classifier(tmp_path / "evil.pth")


def test_wrong_shape_names_file_and_key(tmp_path):
    state = MLPClassifier(input_dim=2560).state_dict()  # e.g. an ESM-only classifier
    torch.save(state, tmp_path / "esm_only.pth")
    with pytest.raises(CheckpointError, match=r"esm_only\.pth: key 'hidden_layer.weight' has shape \(512, 2560\), expected \(512, 3328\)"):
        load_classifier(tmp_path / "esm_only.pth")


def test_other_model_is_rejected(tmp_path):
    torch.save({"encoder.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="missing key"):
        load_classifier(tmp_path / "other.pth")
