"""Does the compiled ESM-2 give the same bits in every fresh process? (issue 8's crash study)

Each child process builds ESM-2 3B with seeded random weights on the GPU, compiles the packed
layers with an empty Inductor cache of its own, warms up as the engine does, and embeds the
same real benchmark frames in 64k-token batches; it writes the pooled embeddings' sha256 and
the embeddings themselves. The parent starts the children at once (compilation and Inductor's
on-device tuning then compete for the machine, as two runtimes of one host do), with and
without Inductor's deterministic mode, and compares them bit for bit.

    python3 gpu-runtime/scripts/determinism_probe.py --frames 3072 --out $OUT/determinism.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "gpu-runtime"))


def child(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from virnucpro_runtime import compiled, packing, shards, tokenizers
    from virnucpro_runtime.models.esm2 import ESM2, ESM2_3B, mean_residues_packed

    device = torch.device("cuda:0")
    with torch.device("meta"):
        model = ESM2(ESM2_3B)
    model = model.to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, device=device)
            if param.ndim == 2 and "embed" in name:
                param.copy_(noise)
            elif param.ndim == 2:
                param.copy_(noise / param.shape[1] ** 0.5)
            elif name.endswith("weight"):
                param.copy_(1 + 0.1 * noise)
            else:
                param.copy_(0.1 * noise)
    model = model.to(torch.bfloat16).eval()
    if not args.deterministic:
        # The options the runtime used before issue 8: tuning that times kernels on the device.
        compiled.inductor_options = lambda: {"coordinate_descent_tuning": True}
    forward = compiled.CompiledESM2Packed(model)
    frames = shards.read_frames(REPO / "bench/data/frames_500bp.arrow")
    tokens = tokenizers.tokenize_proteins(frames.proteins[: args.frames])
    outputs = []
    started = time.perf_counter()
    with torch.inference_mode():
        # The engine's warm-up (engine.Engine.warm_up): the first compilation sees these sizes.
        proteins = ["M" + "ACDEFGHIKLMNPQRSTVWY"[: k % 20] * (k // 20) for k in (37, 101, 166)]
        warm = packing.assemble_packed(tokenizers.tokenize_proteins(proteins), np.arange(3))
        forward(warm.tokens.to(device), warm.cu_seqlens.to(device), warm.max_seqlen)
        for rows in packing.plan_packed(tokens.lengths, 65536):
            batch = packing.assemble_packed(tokens, np.sort(rows))
            cu_d = batch.cu_seqlens.to(device)
            hidden = forward(batch.tokens.to(device), cu_d, batch.max_seqlen)
            outputs.append((rows, mean_residues_packed(hidden, cu_d, max_seqlen=batch.max_seqlen).cpu()))
        torch.cuda.synchronize()
    pooled = torch.zeros(args.frames, 2560)
    for rows, values in outputs:
        pooled[torch.from_numpy(np.sort(rows))] = values
    data = pooled.numpy()
    np.save(args.save, data)
    print(json.dumps({"sha256": hashlib.sha256(data.tobytes()).hexdigest(), "seconds": round(time.perf_counter() - started, 1)}))
    return 0


def parent(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    import torch._inductor.config as inductor_config

    work = Path(tempfile.mkdtemp(prefix="determinism-"))
    runs = [("deterministic", True, i) for i in range(args.pairs)] + [("timed tuning", False, i) for i in range(args.pairs)]
    processes = []
    for mode, deterministic, i in runs:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(work / f"cache-{int(deterministic)}-{i}"), TRITON_CACHE_DIR=str(work / f"triton-{int(deterministic)}-{i}"))
        save = work / f"out-{int(deterministic)}-{i}.npy"
        command = [sys.executable, __file__, "--child", "--frames", str(args.frames), "--save", str(save)] + (["--deterministic"] if deterministic else [])
        processes.append((mode, deterministic, save, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    results = []
    for mode, deterministic, save, process in processes:
        out, err = process.communicate(timeout=args.timeout)
        if process.returncode != 0:
            results.append({"mode": mode, "error": err.strip().splitlines()[-5:]})
            continue
        results.append({"mode": mode, **json.loads(out.strip().splitlines()[-1]), "save": str(save)})
    report = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "frames": args.frames,
              "inductor_has_deterministic_mode": hasattr(inductor_config, "deterministic"), "runs": results, "comparisons": {}}
    for mode in ("deterministic", "timed tuning"):
        mine = [r for r in results if r.get("mode") == mode and "sha256" in r]
        if len(mine) >= 2:
            a, b = (np.load(r["save"]) for r in mine[:2])
            norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
            cos = float(((a * b).sum(1) / norm).min())
            report["comparisons"][mode] = {"identical_bits": len({r["sha256"] for r in mine}) == 1,
                                           "max_abs_difference": float(np.abs(a - b).max()), "min_cosine": cos,
                                           "frames_differing": int((np.abs(a - b).max(1) > 0).sum())}
    for r in results:
        r.pop("save", None)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--deterministic", action="store_true")
    parser.add_argument("--frames", type=int, default=3072)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--timeout", type=float, default=400)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    return child(args) if args.child else parent(args)


if __name__ == "__main__":
    sys.exit(main())
