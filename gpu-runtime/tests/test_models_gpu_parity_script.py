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
    # Seeded weights and proteins: the errors are bit-identical from run to run (about 4.5e-7),
    # whatever the load or thread count. A single unexplained 4.6e-5 was seen once; the whole
    # report goes into the message so that a recurrence says which kernels and threads ran.
    worst = max(fp32["max_rel_err_padded_hidden"], fp32["max_rel_err_packed_hidden"], fp32["max_rel_err_packed_mean"])
    assert worst < 1e-5, json.dumps(report, indent=2)
    assert report["bf16_packed_vs_fp32_fair_esm"]["cosine_mean"]["min"] > 0.99
