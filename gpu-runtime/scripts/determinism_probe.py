"""Does the compiled ESM-2 give the same bits in every fresh process? (issue 8's crash study)

Each child process builds ESM-2 3B with seeded random weights on the GPU, builds the packed
path (compiled.CompiledESM2Packed) with empty Inductor and Triton caches of its own, warms up
as the engine does, and embeds the same real benchmark frames in 64k-token batches; it writes
the pooled embeddings' sha256 and the embeddings themselves. The parent starts the children
at once (kernel compilation then competes for the machine, as two runtimes of one host do)
and compares them bit for bit. (Run on 2026-12-04, when the layer was Inductor's, it showed
that Inductor's timed tuning changed bits between processes and its deterministic mode did
not: bench/results/studies/2026-12-04-nvidia-h200-inductor-determinism.json.)

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
    print(json.dumps({"sha256": hashlib.sha256(data.tobytes()).hexdigest(), "arithmetic": forward.arithmetic, "seconds": round(time.perf_counter() - started, 1)}))
    return 0


def parent(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from virnucpro_runtime.measure import bench

    work = Path(tempfile.mkdtemp(prefix="determinism-"))
    processes = []
    for i in range(args.processes):
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(work / f"inductor-{i}"), TRITON_CACHE_DIR=str(work / f"triton-{i}"))
        save = work / f"out-{i}.npy"
        command = [sys.executable, __file__, "--child", "--frames", str(args.frames), "--save", str(save)]
        processes.append((save, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    results = []
    for save, process in processes:
        out, err = process.communicate(timeout=args.timeout)
        if process.returncode != 0:
            results.append({"error": err.strip().splitlines()[-5:]})
            continue
        results.append({**json.loads(out.strip().splitlines()[-1]), "save": str(save)})
    report = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "frames": args.frames,
              "commit": bench.git_commit(), "runs": results}
    done = [r for r in results if "sha256" in r]
    if len(done) >= 2:
        a, b = (np.load(r["save"]) for r in done[:2])
        norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        report["comparison"] = {"processes": len(done), "identical_bits": len({r["sha256"] for r in done}) == 1,
                                "max_abs_difference_first_two": float(np.abs(a - b).max()),
                                "min_cosine_first_two": float(((a * b).sum(1) / norm).min())}
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
    parser.add_argument("--frames", type=int, default=3072)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--timeout", type=float, default=400)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    return child(args) if args.child else parent(args)


if __name__ == "__main__":
    sys.exit(main())
