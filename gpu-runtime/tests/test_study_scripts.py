"""The GPU study scripts (gpu-runtime/scripts/) on a CPU with tiny models, so that they
still run when a GPU session needs them: each writes its JSON with the fields the
benchmark notes quote."""
import json
import os
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
    _run("profile_esm2.py", "--device", "cpu", "--size", "tiny", "--frames", "48", "--budget", "2048",
         "--variants", "inductor_layer", "inductor_gelu", "cudnn_attention", "--parity-frames", "24", "--out", str(out))
    report = json.loads(out.read_text())
    assert report["tokens_per_s"]["compiled"] > 0 and report["tokens_per_s"]["inductor_gelu"] > 0 and report["tokens"] > 0
    assert report["unseen_batches_tokens_per_s"]["inductor_layer"] > 0
    # fp32 on the CPU: every path matches the eager fp32 model on every parity frame
    for variant in ("compiled", "inductor_layer", "inductor_gelu"):
        assert report["cosine_vs_fp32"][variant]["frames"] == 24 and report["cosine_vs_fp32"][variant]["min"] > 0.99999
    # a kernel the device lacks is recorded, and the study goes on
    assert "cudnn_attention" in report["errors"] and "cudnn_attention" not in report["tokens_per_s"]


def test_fp8_bench_script_runs_the_bench_with_its_short_defaults(tmp_path):
    """fp8_bench.sh on a CPU (the emulation, tiny models): it runs, and the JSON it writes
    holds the FP8 rate beside ours and both parities."""
    env = {**os.environ, "DEVICE": "cpu", "RESULTS": str(tmp_path), "PYTHON": sys.executable, "VIRNUCPRO_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(["bash", str(SCRIPTS / "fp8_bench.sh"), "--size", "tiny", "--fp8-emulate", "--sample-frames", "12",
                           "--original-frames", "8", "--parity-frames", "24", "--repeats", "1", "--skip", "e2e,hf"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (out,) = tmp_path.glob("*-cpu-500-fp8.json")
    report = json.loads(out.read_text())
    assert report["model_size"] == "tiny" and report["esm2_tokens_per_s"]["ours_fp8"] > 0
    assert report["fp8"]["parity"]["frames"] == 24 and "label_agreement_lower_95" in report["fp8"]["parity"]
    assert out.with_suffix(".log").read_text().count("ours_fp8") >= 2  # the table and the parity line
