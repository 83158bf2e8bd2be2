import json

import pytest

from virnucpro_runtime import protocol


def line(**message):
    return json.dumps({"v": 1, **message})


def test_valid_run_request_is_parsed_with_its_arguments():
    request = protocol.parse_request(line(id="r1", op="run", args={"shard": "/s.arrow", "out": "/o.arrow", "embeddings": True}))
    assert (request.id, request.op, request.args["embeddings"]) == ("r1", "run", True)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"v": 2, "id": "a", "op": "health"}), "version"),
        (line(op="health"), "'id'"),
        (line(id="a", op="explode"), "unknown op"),
        (line(id="a", op="run", args={"out": "/o"}), "needs argument 'shard'"),
        (line(id="a", op="run", args={"shard": "/s", "out": "/o", "embeddings": "yes"}), "run.embeddings"),
        (line(id="a", op="load", args={"synthetic": "huge"}), "load.synthetic"),
        (line(id="a", op="load", args={"token_budget": 0}), "load.token_budget"),
        (line(id="a", op="health", args={"x": 1}), "unknown argument"),
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
