"""The 3B GPU parity script, run in its small CPU mode so that it cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_parity_3b.py"


def test_small_mode_reports_parity(tmp_path):
    out = tmp_path / "parity.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "small", "--device", "cpu", "--proteins", "6", "--batch", "4", "--out", str(out)],
        check=True, capture_output=True,
    )
    report = json.loads(out.read_text())
    fp32 = report["fp32_vs_fair_esm"]
    assert report["proteins"] == 6
    assert max(fp32["max_rel_err_padded_hidden"], fp32["max_rel_err_packed_hidden"], fp32["max_rel_err_packed_mean"]) < 1e-5
    assert report["bf16_packed_vs_fp32_fair_esm"]["cosine_mean"]["min"] > 0.99
