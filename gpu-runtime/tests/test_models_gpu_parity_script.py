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
    # Seeded weights and proteins: the error is about 4.5e-7 in most processes and 4.6e-5 in
    # some (2 of 12 on the CI machine). The reference moves, not ours: the hidden states of our
    # model hash the same in every process, while fair-esm's rotary module, given the same
    # input, gave three different outputs in 12 processes. Its tables are float32 cos/sin of
    # angles up to ~170 rad, computed afresh by torch.cos on the CPU, whose last bits changed
    # from process to process there. The bound covers that spread; a wrong formula is off by
    # 1e-2 or more.
    worst = max(fp32["max_rel_err_padded_hidden"], fp32["max_rel_err_packed_hidden"], fp32["max_rel_err_packed_mean"])
    assert worst < 1e-4, json.dumps(report, indent=2)
    assert report["bf16_packed_vs_fp32_fair_esm"]["cosine_mean"]["min"] > 0.99
