"""The runtime protocol (docs/runtime-protocol.md): JSON lines between the GPU activity and
this process. Every message carries ``"v": 1``. Requests are validated here with explicit
checks so that a malformed line gets an error reply naming the problem instead of a crash.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

VERSION = 1

ERROR_TYPES = ("bad_request", "not_loaded", "input", "weights", "oom", "cancelled", "internal")


class ProtocolError(Exception):
    """A request that cannot be accepted; ``type`` is one of ERROR_TYPES."""

    def __init__(self, type_: str, message: str):
        assert type_ in ERROR_TYPES, type_
        super().__init__(message)
        self.type = type_
        self.request_id: str | None = None


@dataclass(frozen=True)
class Request:
    id: str
    op: str
    args: dict[str, Any]


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda value: value in choices


# op -> {arg: (required, check, description used in error messages)}
_ARG_SPECS: dict[str, dict[str, tuple[bool, Callable[[Any], bool], str]]] = {
    "health": {},
    "load": {
        "esm2": (False, _optional(_is_str), "a path or null"),
        "dnabert": (False, _optional(_is_str), "a path or null"),
        "classifier": (False, _optional(_is_str), "a path or null"),
        "synthetic": (False, _optional(_one_of("tiny", "full")), 'null, "tiny" or "full"'),
        "dtype": (False, _optional(_one_of("bfloat16", "float32")), '"bfloat16" or "float32"'),
        "token_budget": (False, _optional(_is_positive_int), "a positive integer or null"),
    },
    "run": {
        "shard": (True, _is_str, "a path"),
        "out": (True, _is_str, "a path"),
        "embeddings": (False, _is_bool, "a boolean"),
    },
    "cancel": {"target": (True, _is_str, "the id of a run request")},
    "shutdown": {},
}

OPS = tuple(_ARG_SPECS)


def parse_request(line: str) -> Request:
    """Parse and validate one request line. Raises ProtocolError('bad_request', ...).

    When the line is valid JSON with a string ``id`` but otherwise malformed, the error
    carries that id in ``request_id`` so the reply can still be matched."""
    try:
        message = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ProtocolError("bad_request", f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(message, dict):
        raise ProtocolError("bad_request", "a request must be a JSON object")
    request_id = message.get("id")
    try:
        return _validate(message)
    except ProtocolError as exc:
        exc.request_id = request_id if isinstance(request_id, str) else None
        raise


def _validate(message: dict[str, Any]) -> Request:
    if message.get("v") != VERSION:
        raise ProtocolError("bad_request", f"unsupported protocol version {message.get('v')!r}; this runtime speaks v={VERSION}")
    request_id = message.get("id")
    if not _is_str(request_id):
        raise ProtocolError("bad_request", "'id' must be a non-empty string")
    op = message.get("op")
    if op not in _ARG_SPECS:
        raise ProtocolError("bad_request", f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    args = message.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("bad_request", f"'args' of {op} must be an object")
    spec = _ARG_SPECS[op]
    unknown = sorted(set(args) - set(spec))
    if unknown:
        raise ProtocolError("bad_request", f"unknown argument(s) for {op}: {', '.join(unknown)}")
    for name, (required, check, description) in spec.items():
        if name not in args:
            if required:
                raise ProtocolError("bad_request", f"{op} needs argument '{name}' ({description})")
            continue
        if not check(args[name]):
            raise ProtocolError("bad_request", f"{op}.{name} must be {description}, got {args[name]!r}")
    extra = sorted(set(message) - {"v", "id", "op", "args"})
    if extra:
        raise ProtocolError("bad_request", f"unknown field(s) in request: {', '.join(extra)}")
    return Request(id=request_id, op=op, args=dict(args))


def ok_reply(request_id: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"v": VERSION, "id": request_id, "ok": True, "result": result}


def error_reply(request_id: str | None, type_: str, message: str) -> dict[str, Any]:
    assert type_ in ERROR_TYPES, type_
    return {"v": VERSION, "id": request_id, "ok": False, "error": {"type": type_, "message": message}}


PROGRESS_FIELDS = ("frames_done", "frames_total", "tokens_per_s", "frames_per_s",
                   "gpu_memory_bytes", "gpu_utilization", "elapsed_s")


def progress_event(run_id: str, **fields: Any) -> dict[str, Any]:
    missing = [name for name in PROGRESS_FIELDS if name not in fields]
    assert not missing and set(fields) == set(PROGRESS_FIELDS), f"progress fields: missing {missing}"
    return {"v": VERSION, "event": "progress", "id": run_id, **fields}


def log_event(level: str, message: str) -> dict[str, Any]:
    assert level in ("debug", "info", "warning", "error"), level
    return {"v": VERSION, "event": "log", "level": level, "message": message}


def encode(message: dict[str, Any]) -> str:
    """One protocol line (no embedded newlines: json.dumps escapes them)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)
