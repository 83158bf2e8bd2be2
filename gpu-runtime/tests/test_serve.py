"""The resident runtime as the GPU activity drives it: a real subprocess speaking JSON lines."""
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from virnucpro_runtime import shards

REPO = Path(__file__).resolve().parents[2]


class Runtime:
    def __init__(self):
        env = dict(os.environ, PYTHONPATH=str(REPO / "gpu-runtime"), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "virnucpro_runtime", "serve", "--device", "cpu", "--progress-interval", "0.2"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )
        self.events = []

    def send(self, message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def reply(self, request_id):
        """Next reply to ``request_id``; events and other replies seen on the way are kept."""
        for line in self.process.stdout:
            message = json.loads(line)  # every stdout line must be protocol JSON
            assert message["v"] == 1
            if message.get("id") == request_id and "ok" in message:
                return message
            self.events.append(message)
        raise AssertionError(f"runtime exited before replying to {request_id}")

    def request(self, request_id, op, **args):
        self.send({"v": 1, "id": request_id, "op": op, "args": args})
        return self.reply(request_id)


@pytest.fixture
def runtime():
    runtime = Runtime()
    yield runtime
    if runtime.process.poll() is None:
        runtime.process.kill()
    runtime.process.wait()


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    full = shards.read_frames(REPO / "bench/data/frames_500bp.arrow")
    path = tmp_path_factory.mktemp("serve") / "frames-00000.arrow"
    n = 24
    shards.write_frames(path, full.keys.take(range(n)), full.nucleotides[:n], [p[:60] for p in full.proteins[:n]])
    return path


@pytest.fixture(scope="module")
def long_shard(tmp_path_factory):
    """Enough full-length frames that a run cannot finish between its first progress event and a cancel."""
    full = shards.read_frames(REPO / "bench/data/frames_500bp.arrow")
    path = tmp_path_factory.mktemp("serve-long") / "frames-00000.arrow"
    n = 2000
    shards.write_frames(path, full.keys.take(range(n)), full.nucleotides[:n], full.proteins[:n])
    return path


def test_load_run_and_shutdown(runtime, shard, tmp_path):
    health = runtime.request("h1", "health")
    assert health["ok"] and health["result"]["loaded"] is False and health["result"]["device"] == "cpu"
    early = runtime.request("r0", "run", shard=str(shard), out=str(tmp_path / "early.arrow"))
    assert early["error"]["type"] == "not_loaded"

    loaded = runtime.request("l1", "load", synthetic="tiny", token_budget=600)
    assert loaded["ok"], loaded
    assert loaded["result"]["numerics"]["esm2_token_budget"] == 600

    out = tmp_path / "results-00000.arrow"
    result = runtime.request("r1", "run", shard=str(shard), out=str(out), embeddings=True)
    assert result["ok"], result
    assert result["result"]["frames"] == 24 and result["result"]["sha256"] == shards.verify_marker(out)["sha256"]
    table = shards.read_results(out)
    keys = shards.read_frames(shard).keys
    assert table.column("frame_id").to_pylist() == keys.frame_ids
    assert table.column("record_index").to_pylist() == keys.record_index.tolist()
    assert table.column("chunk_index").to_pylist() == keys.chunk_index.tolist()
    scores = np.stack([table.column("score_others").to_numpy(), table.column("score_virus").to_numpy()], 1)
    np.testing.assert_allclose(scores.sum(1), 1.0, rtol=1e-5)
    assert any(e.get("event") == "progress" and e["id"] == "r1" and e["frames_done"] == 24 for e in runtime.events)

    bad_shard = runtime.request("r2", "run", shard=str(tmp_path / "missing.arrow"), out=str(tmp_path / "x.arrow"))
    assert bad_shard["error"]["type"] == "input" and "no such file" in bad_shard["error"]["message"]
    assert runtime.request("c1", "cancel", target="nothing-running")["result"] == {"cancelled": False}
    assert runtime.request("s1", "shutdown") == {"v": 1, "id": "s1", "ok": True, "result": {}}
    assert runtime.process.wait(timeout=30) == 0


def test_malformed_lines_get_errors_and_the_loop_survives(runtime):
    runtime.process.stdin.write("this is not json\n")
    runtime.process.stdin.flush()
    first = json.loads(runtime.process.stdout.readline())
    assert first["ok"] is False and first["error"]["type"] == "bad_request" and first["id"] is None
    reply = runtime.request("b1", "run", shard="/x")
    assert reply["error"]["type"] == "bad_request" and "'out'" in reply["error"]["message"]
    assert runtime.request("h2", "health")["ok"]


def test_fp8_on_a_device_without_fp8_matmuls_is_refused_not_emulated(runtime):
    """The CPU emulation of models/fp8.py is for tests; a runtime asked for fp8 on a CPU says
    why it cannot, before loading anything, and stays usable."""
    reply = runtime.request("l1", "load", synthetic="tiny", precision="fp8")
    assert reply["ok"] is False and reply["error"]["type"] == "bad_request"
    assert "compute capability >= 8.9" in reply["error"]["message"] and "--precision bf16" in reply["error"]["message"]
    assert runtime.request("h1", "health")["result"]["loaded"] is False
    loaded = runtime.request("l2", "load", synthetic="tiny", precision="fp32", token_budget=600)
    assert loaded["ok"] and loaded["result"]["numerics"]["precision"]["esm2"] == "float32"


def test_cancel_stops_the_active_run_and_drops_a_queued_one(runtime, long_shard, tmp_path):
    assert runtime.request("l1", "load", synthetic="tiny", token_budget=200)["ok"]
    runtime.send({"v": 1, "id": "long", "op": "run", "args": {"shard": str(long_shard), "out": str(tmp_path / "a.arrow")}})
    runtime.send({"v": 1, "id": "queued", "op": "run", "args": {"shard": str(long_shard), "out": str(tmp_path / "b.arrow")}})
    # wait until the first run reports progress, then cancel both
    while not any(e.get("event") == "progress" and e["id"] == "long" for e in runtime.events):
        runtime.events.append(json.loads(runtime.process.stdout.readline()))
    assert runtime.request("c1", "cancel", target="queued")["result"] == {"cancelled": True}
    assert runtime.request("c2", "cancel", target="long")["result"] == {"cancelled": True}
    replies = {m["id"]: m for m in runtime.events if "ok" in m}
    replies.setdefault("long", runtime.reply("long") if "long" not in replies else replies["long"])
    assert replies["queued"]["error"]["type"] == "cancelled"
    assert replies["long"]["error"]["type"] == "cancelled"
    assert not (tmp_path / "a.arrow").exists()


class _Lines:
    """The server's protocol output, in process: each message with the time it was written."""

    def __init__(self):
        self.messages = []
        self._changed = threading.Condition()
        self._partial = ""

    def write(self, text):
        with self._changed:
            self._partial += text
            while "\n" in self._partial:
                line, self._partial = self._partial.split("\n", 1)
                self.messages.append((time.monotonic(), json.loads(line)))
            self._changed.notify_all()

    def flush(self):
        pass

    def reply(self, request_id, timeout=120):
        with self._changed:
            found = self._changed.wait_for(lambda: next((m for _, m in self.messages if m.get("id") == request_id and "ok" in m), None), timeout)
        assert found, f"no reply to {request_id}"
        return found

    def replied_at(self, request_id):
        return next(t for t, m in self.messages if m.get("id") == request_id and "ok" in m)


def test_a_shard_queued_behind_a_running_one_is_prepared_before_that_one_ends(long_shard, shard, tmp_path):
    """The shard hand-over: the next shard is read and tokenised while the one before computes."""
    from virnucpro_runtime.serve import Server

    requests = queue.Queue()
    out = _Lines()
    server = Server("cpu", out, progress_interval_s=0.2)
    serving = threading.Thread(target=server.serve, args=(iter(requests.get, None),), daemon=True)
    serving.start()
    send = lambda request_id, op, **args: requests.put(json.dumps({"v": 1, "id": request_id, "op": op, "args": args}) + "\n")
    send("l1", "load", synthetic="tiny", token_budget=200)
    assert out.reply("l1")["ok"]
    prepared = {}
    prepare = server.engine.prepare

    def recording_prepare(path):
        result = prepare(path)
        prepared[path] = time.monotonic()
        return result

    server.engine.prepare = recording_prepare
    send("first", "run", shard=str(long_shard), out=str(tmp_path / "first.arrow"))
    send("next", "run", shard=str(shard), out=str(tmp_path / "next.arrow"))
    assert out.reply("first")["ok"] and out.reply("next")["ok"]
    assert prepared[str(shard)] < out.replied_at("first"), "the queued shard was prepared while the first one computed"
    send("s1", "shutdown")
    assert out.reply("s1")["ok"]
    requests.put(None)
    serving.join(timeout=30)
