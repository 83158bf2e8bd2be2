"""Drive ``python -m virnucpro_runtime serve`` through one protocol session on a device:
health, load, run a shard twice (the second run's shard is prefetched while the first
computes), health, shutdown. Prints every message the runtime sends and exits non-zero
if a reply is an error or the two runs' scores differ (they must be bit-identical).

    python gpu-runtime/scripts/serve_smoke.py --device cuda:0 --synthetic tiny \
        --shard bench/data/frames_500bp.arrow --work /tmp/smoke
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

GPU_RUNTIME = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(GPU_RUNTIME))
from virnucpro_runtime import shards  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--synthetic", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--shard", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(GPU_RUNTIME), os.environ.get("PYTHONPATH")])))
    runtime = subprocess.Popen(
        [sys.executable, "-m", "virnucpro_runtime", "serve", "--device", args.device],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )
    requests = [
        ("health", {}),
        ("load", {"synthetic": args.synthetic}),
        ("run", {"shard": str(args.shard), "out": str(args.work / "results-a.arrow")}),
        ("run", {"shard": str(args.shard), "out": str(args.work / "results-b.arrow")}),
        ("health", {}),
    ]
    for index, (op, op_args) in enumerate(requests):
        runtime.stdin.write(json.dumps({"v": 1, "id": f"{op}-{index}", "op": op, "args": op_args}) + "\n")
    runtime.stdin.flush()
    failures = 0
    pending = {f"{op}-{index}" for index, (op, _) in enumerate(requests)}
    while pending:
        line = runtime.stdout.readline()
        if not line:
            print("runtime exited early", flush=True)
            return 1
        message = json.loads(line)
        print(json.dumps(message), flush=True)
        if "ok" in message:
            pending.discard(message["id"])
            failures += not message["ok"]
    runtime.stdin.write(json.dumps({"v": 1, "id": "bye", "op": "shutdown", "args": {}}) + "\n")
    runtime.stdin.flush()
    print(runtime.stdout.readline().strip(), flush=True)
    code = runtime.wait(timeout=60)
    a, b = (shards.read_results(args.work / f"results-{x}.arrow") for x in "ab")
    identical = a.column("score_virus").equals(b.column("score_virus"))
    print(f"exit {code}; failures {failures}; two runs bit-identical: {identical}", flush=True)
    return 0 if code == 0 and failures == 0 and identical else 1


if __name__ == "__main__":
    sys.exit(main())
