"""The GPU study scripts (gpu-runtime/scripts/) on a CPU with tiny models, so that they
still run when a GPU session needs them: each writes its JSON with the fields the
benchmark notes quote."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _run(script: str, *args: str) -> None:
    done = subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_precision_study_scores_every_combination(tmp_path):
    out = tmp_path / "study.json"
    _run("precision_study.py", "--device", "cpu", "--size", "tiny", "--frames", "96", "--budget", "2048", "--out", str(out))
    report = json.loads(out.read_text())
    assert len(report["combinations"]) == 2 * 3 * 4  # classifiers x ESM-2 precisions x DNABERT-S precisions
    exact = report["combinations"]["trained/esm2_fp32+dnabert_fp32"]
    assert exact["label_agreement"] == 1.0 and exact["flips"] == 0
    assert report["embeddings"]["esm2_bf16"]["cos_min"] > 0.999


def test_esm2_profile_times_the_compiled_path(tmp_path):
    out = tmp_path / "profile.json"
    _run("profile_esm2.py", "--device", "cpu", "--size", "tiny", "--frames", "48", "--budget", "2048", "--variants", "--out", str(out))
    report = json.loads(out.read_text())
    assert report["tokens_per_s"]["compiled"] > 0 and report["tokens"] > 0
