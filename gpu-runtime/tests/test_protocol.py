import json
from pathlib import Path

import pytest

from virnucpro_runtime import protocol


def line(**message):
    return json.dumps({"v": 1, **message})


def test_valid_run_request_is_parsed_with_its_arguments():
    request = protocol.parse_request(line(id="r1", op="run", args={"shard": "/s.arrow", "out": "/o.arrow", "embeddings": True}))
    assert (request.id, request.op, request.args["embeddings"]) == ("r1", "run", True)


SHARED_CASES = json.loads((Path(__file__).resolve().parents[2] / "test/fixtures/protocol/requests.json").read_text())["cases"]


@pytest.mark.parametrize("case", SHARED_CASES, ids=lambda c: f"{c['op']}-{'ok' if c['valid'] else c['error']}")
def test_requests_are_judged_as_the_typescript_side_judges_them(case):
    text = line(id="a", op=case["op"], args=case["args"])
    if case["valid"]:
        assert protocol.parse_request(text).args == case["args"]
        return
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.parse_request(text)
    assert caught.value.type == "bad_request"
    assert case["error"] in str(caught.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"v": 2, "id": "a", "op": "health"}), "version"),
        (line(op="health"), "'id'"),
        (line(id="a", op="explode"), "unknown op"),
        (line(id="a", op="health", extra=1), "unknown field"),
    ],
)
def test_malformed_requests_are_rejected_naming_the_problem(text, fragment):
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.parse_request(text)
    assert caught.value.type == "bad_request"
    assert fragment in str(caught.value)


def test_error_keeps_the_request_id_when_one_was_readable():
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.parse_request(line(id="r7", op="run", args={}))
    assert caught.value.request_id == "r7"


def test_replies_and_events_round_trip_as_single_json_lines():
    reply = protocol.encode(protocol.error_reply("r1", "input", "bad shard\nsecond line"))
    assert "\n" not in reply and json.loads(reply)["error"] == {"type": "input", "message": "bad shard\nsecond line"}
    event = protocol.progress_event(
        "r1", frames_done=1, frames_total=2, tokens_per_s=3.0, frames_per_s=4.0,
        gpu_memory_bytes=None, gpu_utilization=None, elapsed_s=0.5,
    )
    assert json.loads(protocol.encode(event))["event"] == "progress"


def test_replies_the_runtime_sends_conform_to_the_declared_results():
    result = {"cancelled": True}
    assert protocol.conforms(protocol.SCHEMA["results"]["cancel"], result)
    assert not protocol.conforms(protocol.SCHEMA["results"]["cancel"], {"cancelled": "yes"})
    assert protocol.conforms(protocol.SCHEMA["events"]["log"], protocol.log_event("info", "x"))
