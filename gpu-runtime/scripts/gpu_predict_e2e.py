"""`virnucpro predict` end to end on a GPU host, as users run it: from the installed offline
bundle, through Temporal, with crashes (issue 8).

Phases (each one call; they share --work, where e2e-state.json accumulates the results, so a
session can run them in several calls on a machine that stays up):

    reads       cut the read sets (500 bp, half viral, half Klebsiella; fixed seeds)
    synthetic   write the synthetic full-size weights once (they stand for downloaded weights)
    cold        predict on the large set with no cache (fresh state, no server running)
    warm        the same again into another folder: second run on the host
    alone       the runtime alone (serve protocol, models loaded) on the warm run's shards
    crash-clean the small set, uninterrupted: the reference for the crash runs
    crash KIND  the small set with KIND SIGKILLed at a random point of the embed step:
                runtime | worker (the run served by a separate `virnucpro worker`) |
                server (the Temporal dev server) | cli (then the same command again)
    report      write bench/results/<date>-<gpu>-predict-e2e.json-style JSON to --out
    scaling N,M the scaling read set (150,000 frames per GPU of the largest count, fixed seed)
                through predict on the first N GPUs, then the first M, ... (issue 10); with
                --out, bench/results/<date>-<gpu>x<max>-scaling.json-style JSON there
    faults N    the scaling read set on the first N GPUs twice more: one GPU's runtime
                SIGKILLed, then one SIGSTOPped (the run's watchdog must replace it), each at a
                random point of the embed step; compared with the clean runs of `scaling`

    python3 gpu-runtime/scripts/gpu_predict_e2e.py --bundle B --genomes G --work /tmp/e2e PHASE...

A dry run of the whole flow on a CPU host: --device cpu --synthetic tiny --scale 0.01.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_bench_frames import cut_reads  # noqa: E402

OUTPUT_FILES = ("prediction_results.txt", "prediction_results_highestscore.csv", "sequence_summary.tsv")
READ_SETS = {"large": (100_000, 500, 20260101), "small": (30_000, 500, 20260102)}
# Issue 10: at least 150,000 frames per GPU used; 500 bp reads keep about 0.58 frames each.
SCALING_FRAMES_PER_GPU = 150_000
SCALING_SEED = 20260103
FRAMES_PER_READ = 0.58
SHARD_FRAMES = {"large": 20_000, "small": 4_000}
KILLS = ("runtime", "worker", "server", "cli")
# Issue 10's faults inside a run on several GPUs: one device's runtime killed, or stopped.
DEVICE_FAULTS = {"runtime": signal.SIGKILL, "runtime-stop": signal.SIGSTOP}


class E2E:
    def __init__(self, args: argparse.Namespace):
        self.device = args.device
        self.synthetic_kind = args.synthetic
        self.scale = args.scale
        self.bundle = args.bundle.resolve()
        self.genomes = args.genomes
        self.work = args.work.resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.state_file = self.work / "e2e-state.json"
        self.state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        self.xdg = self.work / "xdg-state"
        self.env = dict(os.environ, XDG_STATE_HOME=str(self.xdg), PYTHONUNBUFFERED="1")
        self.rng = random.Random(args.seed)

    # --- bookkeeping -------------------------------------------------------------------
    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state, indent=1) + "\n")

    def log(self, message: str) -> None:
        print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)

    @property
    def virnucpro(self) -> str:
        return str(self.bundle / "bin" / "virnucpro")

    def reads_file(self, name: str) -> Path:
        return self.work / f"reads-{name}.fa"

    # --- phases --------------------------------------------------------------------------
    def reads(self) -> None:
        for name, (count, size, seed) in READ_SETS.items():
            count = max(100, int(count * self.scale))
            path = self.reads_file(name)
            with open(path, "w") as out:
                for i, read in zip(range(count), cut_reads(self.genomes, size, seed)):
                    out.write(f">r{i:07d}\n{read}\n")
            self.state.setdefault("reads", {})[name] = count
            self.log(f"{count} reads -> {path}")
        self.save()

    def synthetic(self) -> None:
        started = time.time()
        env = dict(self.env, VIRNUCPRO_STATE_DIR=str(self.xdg / "virnucpro"))
        code = f"from virnucpro_runtime import synthetic; print(synthetic.cached_checkpoints({self.synthetic_kind!r}))"
        self.python([sys.executable, "-c", code], env)
        self.state["synthetic_seconds"] = round(time.time() - started, 1)
        self.log(f"synthetic {self.synthetic_kind} weights written in {self.state['synthetic_seconds']} s")
        self.save()

    def python(self, command: list[str], env: dict) -> None:
        env = dict(env, PYTHONPATH=f"{self.bundle / 'app' / 'gpu-runtime'}:{self.bundle / 'lib' / 'python'}")
        subprocess.run(command, env=env, check=True)

    def clear_caches(self) -> None:
        """A host on which virnucpro never ran: only the (synthetic) weight files are there."""
        state = self.xdg / "virnucpro"
        subprocess.run([self.virnucpro, "server", "stop"], env=self.env, capture_output=True)
        for entry in state.iterdir() if state.exists() else []:
            if entry.name != "synthetic":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    def cold(self) -> None:
        self.clear_caches()
        self.state["cold"] = self.predict("large", "cold")
        self.save()

    def warm(self) -> None:
        self.state["warm"] = self.predict("large", "warm")
        self.save()

    def crash_clean(self) -> None:
        self.state["crash_clean"] = self.predict("small", "crash-clean")
        self.save()

    def crash(self, kind: str) -> None:
        run = self.predict("small", f"crash-{kind}", kill=kind)
        reference = self.state["crash_clean"]["sha256"]
        run["identical"] = run["sha256"] == reference
        self.state.setdefault("crash_runs", {})[kind] = run
        self.log(f"crash {kind} at {run['at_s']} s: identical={run['identical']}")
        self.save()

    # --- one predict run ---------------------------------------------------------------
    def predict(self, reads: str, label: str, kill: str | None = None, devices: int | None = None) -> dict:
        """One predict run; ``devices``: on the first N GPUs (a CPU dry run: N CPU devices of a
        separate worker), with the shard sizes predict chooses."""
        out = self.work / "runs" / f"{label}-{time.time():.0f}"  # a new folder: a new run
        command = [self.virnucpro, "predict", str(self.reads_file(reads)), "-o", str(out), "--synthetic-weights", self.synthetic_kind,
                   "-k", "--no-progress"]
        if devices is None:
            command += ["--shard-frames", str(max(50, int(SHARD_FRAMES[reads] * self.scale))), "--device", self.device]
        elif self.device != "cpu":
            command += ["--gpus", ",".join(str(i) for i in range(devices))]
        worker = None
        if kill == "worker" or (devices is not None and self.device == "cpu"):
            command.append("--no-workers")
            worker = self.start_worker(label, None if devices is None else f"cpu:{devices}")
        log = open(self.work / f"{label}.log", "w")
        started = time.time()
        run = Run(self, command, log)
        run.start()
        killed_at = None
        try:
            if kill:
                killed_at, worker = self.kill_during_embed(kill, run, worker, started, label, log)
            rc = run.wait()
            if rc != 0:
                raise RuntimeError(f"{label}: predict exited {rc}; see {log.name}")
        finally:
            if worker is not None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=60)
            run.stop_watch()
            log.close()
        exited = round(time.time() - started, 1)
        # The run's wall time: from the start of `predict` to its last output file (the report).
        wall = round(max((out / name).stat().st_mtime for name in (*OUTPUT_FILES, "run_report.json", "run_report.md")) - started, 1)
        report = json.loads((out / "run_report.json").read_text())
        trace = read_trace(out / "trace.tsv")
        first_start = min(row["start"] for row in trace) / 1000
        last_end = max(row["end"] for row in trace) / 1000
        frames = report["results"]["frames"]
        result = {
            "reads": self.state["reads"][reads],
            "frames": frames,
            "shards": len(trace),
            "wall_s": wall,
            "exit_s": exited,
            "first_frame_s": round(first_start - started, 1),
            "embed_s": round(last_end - first_start, 1),
            "embed_frames_per_s": round(frames / (last_end - first_start), 1),
            "whole_run_frames_per_s": round(frames / wall, 1),
            "max_progress_gap_s": run.max_progress_gap(),
            "restarts": sum(d["restarts"] for d in report["devices"].values()),
            "numerics": sorted({row["numerics"] for row in trace}),
            "sha256": {name: sha256(out / name) for name in OUTPUT_FILES},
            "output": str(out),
        }
        try:
            result["timeline_s"] = timeline(out, report, started, first_start, last_end)
        except Exception as exc:  # noqa: BLE001 - a diagnostic: never lose the run's figures for it
            result["timeline_s"] = {"error": repr(exc)}
        if kill:
            result["kill"] = kill
            result["at_s"] = killed_at
        self.log(f"{label}: {frames} frames, wall {wall} s, first frame {result['first_frame_s']} s, "
                 f"embed {result['embed_frames_per_s']} frames/s, max progress gap {result['max_progress_gap_s']} s")
        return result

    def start_worker(self, label: str, devices: str | None = None) -> subprocess.Popen:
        handle = open(self.work / f"{label}-worker-{time.time():.0f}.log", "w")
        devices = devices or ("cpu" if self.device == "cpu" else self.device.removeprefix("cuda:"))
        worker = subprocess.Popen([self.virnucpro, "worker", "--devices", devices, "--announce-interval", "2"], env=self.env,
                                  stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(3)
        return worker

    def kill_during_embed(self, kind: str, run: "Run", worker, started: float, label: str, log) -> tuple[float, subprocess.Popen | None]:
        """Waits for the embed step to compute, then kills `kind` a random while into it."""
        run.wait_for_frames(1)
        delay = self.rng.uniform(3.0, 20.0) * max(self.scale, 0.1)
        time.sleep(delay)
        at = round(time.time() - started, 1)
        if kind in DEVICE_FAULTS:
            os.kill(self.rng.choice(runtime_pids()), DEVICE_FAULTS[kind])
        elif kind == "worker":
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            worker = self.start_worker(label)
        elif kind == "server":
            record = json.loads((self.xdg / "virnucpro" / "server.json").read_text())
            os.kill(record["pid"], signal.SIGKILL)
        elif kind == "cli":
            os.killpg(run.process.pid, signal.SIGKILL)
            run.process.wait()
            log.write(f"\n--- CLI killed at {at} s; the same command again ---\n")
            log.flush()
            run.restart()
        self.log(f"{label}: killed the {kind} {at} s into the run ({delay:.1f} s into the embed step)")
        return at, worker

    # --- several GPUs (issue 10) ---------------------------------------------------------
    def scaling(self, counts: str, out: Path | None) -> None:
        """The same reads through predict on 1..N GPUs, each a fresh run on the warm host."""
        numbers = sorted({int(c) for c in counts.split(",")})
        frames = int(SCALING_FRAMES_PER_GPU * max(numbers) * self.scale)
        reads = max(100, round(frames / FRAMES_PER_READ))
        path = self.reads_file("scaling")
        if self.state.get("reads", {}).get("scaling") != reads:
            with open(path, "w") as handle:
                for i, read in zip(range(reads), cut_reads(self.genomes, 500, SCALING_SEED)):
                    handle.write(f">s{i:08d}\n{read}\n")
            self.state.setdefault("reads", {})["scaling"] = reads
        runs = self.state.setdefault("scaling", {})
        for n in numbers:
            run = self.predict("scaling", f"scaling-{n}", devices=n)
            run["devices"] = device_figures(Path(run["output"]))
            runs[str(n)] = run
            self.save()
            self.log(f"scaling {n}: wall {run['wall_s']} s, devices {json.dumps(run['devices'])}")
        if out is not None:
            self.scaling_report(out)

    def faults(self, count: str, out: Path | None) -> None:
        """One GPU's runtime SIGKILLed, then one SIGSTOPped, in runs on the first N GPUs."""
        n = str(int(count))
        clean = self.state.get("scaling", {}).get(n) or self.state.get("scaling", {}).get("1")
        if clean is None:
            raise RuntimeError("faults: run `scaling` first (its clean runs are the reference)")
        faults = self.state.setdefault("scaling_faults", {})
        for kind in DEVICE_FAULTS:
            run = self.predict("scaling", f"fault-{kind}-{n}", kill=kind, devices=int(n))
            run["devices"] = device_figures(Path(run["output"]))
            run["identical"] = run["sha256"] == clean["sha256"]
            faults[kind] = run
            self.save()
            self.log(f"fault {kind} on {n} devices at {run['at_s']} s: identical={run['identical']}, restarts={run['restarts']}")
        if out is not None:
            self.scaling_report(out)

    def scaling_report(self, out: Path) -> None:
        runs = self.state["scaling"]
        base = runs.get("1")
        result = {
            "what": "issue 10: the same reads through virnucpro predict on 1..N GPUs of one host, from the offline bundle, "
                    f"--synthetic-weights {self.synthetic_kind}, predict's own shard sizes",
            "date": dt.date.today().isoformat(),
            "gpu": gpu_name(),
            "commit": json.loads((self.bundle / "BUNDLE.json").read_text())["commit"],
            "reads": self.state["reads"]["scaling"],
            "frames": next(iter(runs.values()))["frames"],
            "runs": runs,
            "speedup": {n: round(base["wall_s"] / r["wall_s"], 3) for n, r in runs.items() if base and n != "1"},
            "identical_to_one_gpu": {n: r["sha256"] == base["sha256"] for n, r in runs.items() if base and n != "1"},
            "faults": self.state.get("scaling_faults", {}),
            "targets": {"speedup": {"2": 1.95, "4": 3.85, "8": 7.6}, "busy_fraction_min": 0.95, "finish_spread_max": 0.02},
            "notes": "wall_s: start of predict to its last output file. devices (run_report.json, trace.tsv, telemetry.tsv): per GPU the "
                     "frames, shards, busy_fraction (its shards' time over the embed step, first shard start to last shard end of the run), "
                     "idle_gaps_s (between its shards), stalls, restarts, finish_s (its last shard's end after the embed step started), nvml_busy (mean "
                     "GPU utilisation of its samples during the embed step, null without NVML); computed_twice: shards with more than "
                     "one completed row. faults: runs on the most devices with one device's runtime SIGKILLed (runtime) or SIGSTOPped "
                     "(runtime-stop) at at_s, identical: the same output bytes as the clean run on as many devices.",
        }
        out.write_text(json.dumps(result, indent=1) + "\n")
        self.log(f"scaling report -> {out}")

    # --- the runtime alone ---------------------------------------------------------------
    def alone(self) -> None:
        shard_files = sorted((Path(self.state["warm"]["output"]) / ".virnucpro" / "work" / "prepare").glob("*/frames-*.arrow"))
        if not shard_files:
            raise RuntimeError("the warm run kept no shards")
        cuda = self.device != "cpu"
        env = dict(self.env, VIRNUCPRO_STATE_DIR=str(self.xdg / "virnucpro"), CUDA_VISIBLE_DEVICES=self.device.removeprefix("cuda:") if cuda else "",
                   PYTHONPATH=f"{self.bundle / 'app' / 'gpu-runtime'}:{self.bundle / 'lib' / 'python'}")
        python = (self.bundle / "install.env").read_text().split("=", 1)[1].strip().strip("'")
        serve = subprocess.Popen([python, "-m", "virnucpro_runtime", "serve", "--device", "cuda:0" if cuda else "cpu"], env=env, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.work / "alone.log", "w"))
        replies = {}

        def request(rid: str, op: str, **args) -> None:
            serve.stdin.write(json.dumps({"v": 1, "id": rid, "op": op, "args": args}) + "\n")
            serve.stdin.flush()

        def wait(rid: str) -> dict:
            while rid not in replies:
                message = json.loads(serve.stdout.readline())
                if "ok" in message:
                    replies[message["id"]] = message
            if not replies[rid]["ok"]:
                raise RuntimeError(f"runtime alone: {rid}: {replies[rid]['error']}")
            return replies[rid]["result"]

        # What predict loads on this device (cli/commands/predict.ts: fp32 on CPUs, the fast path on GPUs).
        request("load", "load", synthetic=self.synthetic_kind, **({} if cuda else {"precision": "fp32"}))
        loaded = wait("load")
        started = time.time()
        for i, shard in enumerate(shard_files):
            request(f"r{i}", "run", shard=str(shard), out=str(self.work / "alone" / f"results-{i}.arrow"))
        results = [wait(f"r{i}") for i in range(len(shard_files))]
        seconds = time.time() - started
        request("bye", "shutdown")
        serve.wait(timeout=120)
        frames = sum(r["frames"] for r in results)
        self.state["alone"] = {"frames": frames, "seconds": round(seconds, 1), "frames_per_s": round(frames / seconds, 1),
                               "shards": len(results), "numerics": loaded["numerics"], "load": loaded["phases"]}
        self.log(f"runtime alone: {frames} frames in {seconds:.1f} s = {frames / seconds:.1f} frames/s")
        self.save()

    # --- report --------------------------------------------------------------------------
    def report(self, out: Path) -> None:
        s = self.state
        gpu = gpu_name()
        torch_version = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True).stdout.strip()
        bundle = json.loads((self.bundle / "BUNDLE.json").read_text())
        warm = s["warm"]
        result = {
            "what": f"virnucpro predict through Temporal from the offline bundle, --synthetic-weights {self.synthetic_kind} (issue 8)",
            "device": self.device,
            "date": dt.date.today().isoformat(),
            "gpu": gpu,
            "torch": torch_version,
            "commit": bundle["commit"],
            "bundle": {k: bundle[k] for k in ("version", "node", "temporal_cli")},
            "reads": warm["reads"],
            "frames": warm["frames"],
            "shard_frames": max(50, int(SHARD_FRAMES["large"] * self.scale)),
            "wall_s": warm["wall_s"],
            "embed_frames_per_s": warm["embed_frames_per_s"],
            "runtime_alone_frames_per_s": s["alone"]["frames_per_s"],
            "efficiency": round(warm["whole_run_frames_per_s"] / s["alone"]["frames_per_s"], 3),
            "first_frame_s": {"cold": s["cold"]["first_frame_s"], "warm": warm["first_frame_s"]},
            "max_progress_gap_s": max(r["max_progress_gap_s"] or 0 for r in (s["cold"], warm)),
            "clean_sha256": warm["sha256"],
            "cold_identical_to_warm": s["cold"]["sha256"] == warm["sha256"],
            "crash_reads": s["crash_clean"]["reads"],
            "crash_frames": s["crash_clean"]["frames"],
            "crash_clean_sha256": s["crash_clean"]["sha256"],
            "crash_runs": [{k: r[k] for k in ("kill", "at_s", "sha256", "identical", "wall_s", "restarts")} for r in s.get("crash_runs", {}).values()],
            "runs": {k: s[k] for k in ("cold", "warm", "crash_clean") if k in s},
            "runtime_alone": s["alone"],
            "synthetic_weights_seconds": s.get("synthetic_seconds"),
            "notes": "cold: empty state directory (no compiled kernels, no converted weights, no workflow bundle, no server running) but the synthetic weight files present, as downloaded weights would be; warm: the second run on the host. first_frame_s: from the start of `predict` to the first batch of the first shard on the GPU (trace.tsv). efficiency: whole-run frames/s (frames / wall from start to the last output file) over the runtime alone on the same shards with its models loaded. max_progress_gap_s: longest interval without a change of the frames done that `virnucpro status --watch --json --interval 1` showed during the embed step.",
        }
        out.write_text(json.dumps(result, indent=1) + "\n")
        self.log(f"report -> {out}")
        print(json.dumps({k: result[k] for k in ("gpu", "frames", "wall_s", "embed_frames_per_s", "runtime_alone_frames_per_s", "efficiency", "first_frame_s", "max_progress_gap_s", "cold_identical_to_warm")}))
        print(json.dumps(result["crash_runs"]))


class Run:
    """One `predict` process (restartable with the same command) and a `status --watch` beside it."""

    def __init__(self, e2e: E2E, command: list[str], log):
        self.e2e, self.command, self.log = e2e, command, log
        self.run_id: str | None = None
        self.samples: list[tuple[float, int, int | None]] = []  # (time, frames done, frames total)
        self.watch: subprocess.Popen | None = None
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.e2e.env, stdout=self.log, stderr=subprocess.PIPE, text=True, start_new_session=True)
        threading.Thread(target=self._read_stderr, args=(self.process,), daemon=True).start()

    def restart(self) -> None:
        self.start()

    def _read_stderr(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            self.log.write(line)
            self.log.flush()
            for marker in ("started run ", "attached to run "):
                if marker in line and self.run_id is None:
                    self.run_id = line.split(marker, 1)[1].split()[0]
                    threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        self.watch = subprocess.Popen([self.e2e.virnucpro, "status", self.run_id, "--watch", "--json", "--interval", "1"],
                                      env=self.e2e.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in self.watch.stdout:
            try:
                view = json.loads(line).get("view") or {}
            except json.JSONDecodeError:
                continue
            self.samples.append((time.time(), view.get("framesDone", 0), view.get("framesTotal")))

    def wait_for_frames(self, frames: int, timeout: float = 600) -> None:
        deadline = time.time() + timeout
        while not any(done >= frames for _, done, _ in self.samples):
            if time.time() > deadline:
                raise RuntimeError("the embed step did not start")
            time.sleep(0.2)

    def wait(self) -> int:
        return self.process.wait()

    def stop_watch(self) -> None:
        if self.watch and self.watch.poll() is None:
            self.watch.terminate()

    def max_progress_gap(self) -> float | None:
        """Longest time between two increases of the frames done, within the embed step."""
        changes = []
        last = None
        for at, done, total in self.samples:
            if done > 0 and done != last and (total is None or last is None or last < total):
                changes.append(at)
            last = done
        gaps = [b - a for a, b in zip(changes, changes[1:])]
        return round(max(gaps), 1) if gaps else None


def runtime_pids() -> list[int]:
    """The runtime processes (one per device) running now."""
    found = subprocess.run(["pgrep", "-f", "virnucpro_runtime serve"], capture_output=True, text=True).stdout.split()
    if not found:
        raise RuntimeError("no runtime process to kill")
    return sorted(int(pid) for pid in found)


def timeline(out: Path, report: dict, started: float, first_start: float, last_end: float) -> dict:
    """Where a run's wall time went, in seconds from the start of `predict`: each step's first
    start and last end (run_report.json), each device's models loaded (the run log), the first
    frame on a device and the last shard's end (trace.tsv)."""
    def at(iso: str | None) -> float | None:
        return None if iso is None else round(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() - started, 1)

    line = {name: [at(step.get("startedAt")), at(step.get("finishedAt"))] for name, step in report["steps"].items()}
    line["first_frame"] = round(first_start - started, 1)
    line["last_shard_end"] = round(last_end - started, 1)
    log = out / ".virnucpro" / "virnucpro.log"
    for entry in (json.loads(l) for l in log.read_text().splitlines() if l.startswith("{")) if log.exists() else []:
        message = str(entry.get("message", ""))
        if "models loaded in" in message:
            line[f"loaded {message.split(':')[0]}"] = {"at": at(entry.get("timestamp")), "phases": entry.get("phases")}
    return line


def gpu_name() -> str:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True) if shutil.which("nvidia-smi") else None
    return smi.stdout.strip().splitlines()[0] if smi and smi.returncode == 0 and smi.stdout.strip() else "cpu"


def device_figures(out: Path) -> dict:
    """Per device of one run: what run_report.json says of it (frames, shards, busy fraction of
    the embed step, idle gaps, stalls, restarts: activities/outputs/device-use.ts), plus when it
    finished and its mean NVML utilisation during the embed step; and shards computed twice."""
    devices = json.loads((out / "run_report.json").read_text())["devices"]
    trace = read_trace(out / "trace.tsv")
    start, end = min(r["start"] for r in trace), max(r["end"] for r in trace)
    telemetry = read_tsv(out / "telemetry.tsv")
    figures = {}
    for device, d in sorted(devices.items()):
        util = [float(t["gpu_utilization"]) for t in telemetry if t["device"] == device and t["gpu_utilization"] not in ("", None)
                and start <= float(t["time"]) * 1000 <= end]
        figures[device] = {
            "frames": d["frames"],
            "shards": d["shards"],
            "busy_fraction": round(d["busyFraction"], 4),
            "idle_gaps_s": round(d["idleGapsSeconds"], 1),
            "stalls": d["stalls"],
            "restarts": d["restarts"],
            "finish_s": round((max(ends) - start) / 1000, 1) if (ends := [r["end"] for r in trace if r["device"] == device]) else None,
            "nvml_busy": round(sum(util) / len(util), 4) if util else None,
        }
    shards = [r["shard"] for r in trace]
    figures["computed_twice"] = len(shards) - len(set(shards))
    return figures


def read_tsv(path: Path) -> list[dict]:
    """The rows of one of our TSV files, keyed by column (a synthetic run's banner line skipped)."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")] if path.exists() else []
    if not lines:
        return []
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def read_trace(path: Path) -> list[dict]:
    rows = read_tsv(path)
    for row in rows:
        row["start"], row["end"] = int(row["start"]), int(row["end"])
    return [r for r in rows if r["step"] == "embed"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="the installed bundle folder")
    parser.add_argument("--genomes", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/virnucpro-e2e"))
    parser.add_argument("--out", type=Path, help="report: where the JSON goes")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--device", default="cuda:0", help="cuda:N, or cpu for a dry run")
    parser.add_argument("--synthetic", choices=("tiny", "full"), default="full")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the read-set and shard sizes (dry runs)")
    parser.add_argument("phases", nargs="+")
    args = parser.parse_args()
    e2e = E2E(args)
    phases = list(args.phases)
    while phases:
        phase = phases.pop(0)
        e2e.log(f"phase {phase}")
        if phase == "crash":
            e2e.crash(phases.pop(0))
        elif phase == "report":
            e2e.report(args.out)
        elif phase == "scaling":
            e2e.scaling(phases.pop(0), args.out)
        elif phase == "faults":
            e2e.faults(phases.pop(0), args.out)
        else:
            getattr(e2e, phase.replace("-", "_"))()
    return 0


if __name__ == "__main__":
    sys.exit(main())
