"""The runtime protocol (docs/runtime-protocol.md): JSON lines between the GPU activity and
this process. Every message carries ``"v": 1``.

The messages are declared once, in TypeScript (activities/gpu/protocol.ts); this module
reads their JSON Schema export, ``protocol.schema.json`` beside it, and validates every
request against it, so that a malformed line gets an error reply naming the problem instead
of a crash, and the two sides cannot drift apart (both are tested on one fixture,
test/fixtures/protocol/requests.json).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA: dict[str, Any] = json.loads(Path(__file__).with_name("protocol.schema.json").read_text())
VERSION: int = SCHEMA["version"]
ERROR_TYPES: tuple[str, ...] = tuple(SCHEMA["error_types"])
OPS: tuple[str, ...] = tuple(SCHEMA["requests"])
PROGRESS_FIELDS: tuple[str, ...] = tuple(
    name for name in SCHEMA["events"]["progress"]["properties"] if name not in ("v", "event", "id")
)


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
    if not isinstance(request_id, str) or not request_id:
        raise ProtocolError("bad_request", "'id' must be a non-empty string")
    op = message.get("op")
    if op not in OPS:
        raise ProtocolError("bad_request", f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    args = message.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("bad_request", f"'args' of {op} must be an object")
    spec = SCHEMA["requests"][op]
    known = spec.get("properties", {})
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise ProtocolError("bad_request", f"unknown argument(s) for {op}: {', '.join(unknown)}")
    for name in spec.get("required", []):
        if name not in args:
            raise ProtocolError("bad_request", f"{op} needs argument '{name}' ({_describe(known[name])})")
    for name, value in args.items():
        if not conforms(known[name], value):
            raise ProtocolError("bad_request", f"{op}.{name} must be {_describe(known[name])}, got {value!r}")
    extra = sorted(set(message) - {"v", "id", "op", "args"})
    if extra:
        raise ProtocolError("bad_request", f"unknown field(s) in request: {', '.join(extra)}")
    return Request(id=request_id, op=op, args=dict(args))


def _describe(schema: dict[str, Any]) -> str:
    return schema.get("description") or json.dumps({k: v for k, v in schema.items() if k != "default"})


_TYPES = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def conforms(schema: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` satisfies ``schema``: the JSON Schema subset zod exports for the
    protocol (type, anyOf, enum, const, bounds, pattern, properties, required, items)."""
    if "anyOf" in schema:
        return any(conforms(option, value) for option in schema["anyOf"])
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if kinds and not any(_TYPES[k](value) for k in kinds):
        return False
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return False
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "maximum" in schema and value > schema["maximum"]:
            return False
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return False
    if isinstance(value, dict) and "object" in kinds:
        properties = schema.get("properties", {})
        if any(name not in value for name in schema.get("required", [])):
            return False
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                if not conforms(properties[name], item):
                    return False
            elif extra is False or (isinstance(extra, dict) and not conforms(extra, item)):
                return False
    if isinstance(value, list) and "items" in schema:
        return all(conforms(schema["items"], item) for item in value)
    return True


def ok_reply(request_id: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"v": VERSION, "id": request_id, "ok": True, "result": result}


def error_reply(request_id: str | None, type_: str, message: str) -> dict[str, Any]:
    assert type_ in ERROR_TYPES, type_
    return {"v": VERSION, "id": request_id, "ok": False, "error": {"type": type_, "message": message}}


def progress_event(run_id: str, **fields: Any) -> dict[str, Any]:
    missing = [name for name in PROGRESS_FIELDS if name not in fields]
    assert not missing and set(fields) == set(PROGRESS_FIELDS), f"progress fields: missing {missing}"
    return {"v": VERSION, "event": "progress", "id": run_id, **fields}


def log_event(level: str, message: str) -> dict[str, Any]:
    assert level in SCHEMA["events"]["log"]["properties"]["level"]["enum"], level
    return {"v": VERSION, "event": "log", "level": level, "message": message}


def encode(message: dict[str, Any]) -> str:
    """One protocol line (no embedded newlines: json.dumps escapes them)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)
