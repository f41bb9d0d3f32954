"""The versioned JSON envelope every event travels in, and the records built from it
(responses, dead letters). Parsing bounds the size before decoding and the nesting depth
before validating, so a hostile producer cannot make the consumer spend unbounded memory or
recursion on one message."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json

from archon_gateway.core.errors import MalformedEvent

# Event types are dotted words (`codegen.validation.requested`): they become metric labels
# only once a handler is found for them, so user input cannot mint labels.
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+){1,7}$"
DEFAULT_MAX_DEPTH = 32


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=128)
    event_type: str = Field(max_length=128, pattern=EVENT_TYPE_PATTERN)
    correlation_id: str = Field(min_length=1, max_length=128)
    timestamp: datetime
    source: str = Field(min_length=1, max_length=128)
    payload: dict[str, Any]


def new_envelope(
    event_type: str,
    payload: dict[str, Any],
    *,
    source: str,
    correlation_id: str | None = None,
) -> Envelope:
    event_id = uuid4_text()
    return Envelope(
        event_id=event_id,
        event_type=event_type,
        correlation_id=correlation_id or event_id,
        timestamp=datetime.now(UTC),
        source=source,
        payload=payload,
    )


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def encode_event(
    event_type: str,
    payload: dict[str, Any],
    *,
    source: str,
    correlation_id: str | None = None,
) -> bytes:
    """A new event from the gateway's own values, straight to JSON: no model is built
    (this is every response's path; the envelope model costs more than the rest)."""
    event_id = uuid4_text()
    event = {
        "event_id": event_id,
        "event_type": event_type,
        "correlation_id": correlation_id or event_id,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "source": source,
        "payload": payload,
    }
    # pydantic-core's encoder: a few times faster than json.dumps (every response's path).
    return to_json(event, fallback=str)


def uuid4_text() -> str:
    """`str(uuid.uuid4())` without the UUID object (a tenth of every response's cost)."""
    bits = int.from_bytes(os.urandom(16))
    bits = (bits & _UUID4_CLEAR) | _UUID4_SET  # version 4, RFC 4122 variant
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def parse_envelope(
    data: bytes | None, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH
) -> Envelope:
    """Validate one record's value; raises MalformedEvent with a one-line reason."""
    if data is None:
        raise MalformedEvent("empty record (no value)")
    if len(data) > max_bytes:
        raise MalformedEvent(f"event is {len(data)} bytes, over the {max_bytes}-byte limit")
    # Fast path: fewer brackets in all than the limit cannot nest deeper than it.
    brackets = data.count(b"[") + data.count(b"{")
    if brackets > max_depth and json_depth(data) > max_depth:
        raise MalformedEvent(f"event nests deeper than {max_depth} levels")
    try:
        return Envelope.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            reason = str(first["msg"]).removeprefix("Invalid JSON: ")
            raise MalformedEvent(f"not JSON: {reason}") from exc
        raise MalformedEvent(f"not a valid envelope: {describe(exc)}") from exc


def json_depth(data: bytes) -> int:
    """The deepest bracket nesting in JSON text, counted without decoding it (brackets
    inside strings are skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def describe(exc: ValidationError) -> str:
    """Which fields are wrong and why, never the values (they may be secrets)."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "event"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def response_type(request_type: str, ok: bool) -> str:
    """`pattern.search.requested` -> `pattern.search.completed` (or `.failed`)."""
    stem = request_type.removesuffix(".requested")
    return f"{stem}.{'completed' if ok else 'failed'}"


def response_for(
    request: Envelope, *, source: str, result: Any = None, error: dict[str, Any] | None = None
) -> bytes:
    payload: dict[str, Any] = {"error": error} if error is not None else {"result": result}
    return encode_event(
        response_type(request.event_type, error is None),
        payload,
        source=source,
        correlation_id=request.correlation_id,
    )


def dead_letter(
    value: bytes | None,
    *,
    reason: str,
    attempts: int,
    topic: str,
    partition: int,
    offset: int,
    source: str,
    max_bytes: int = 1_000_000,
) -> bytes:
    """A DLQ record: the original bytes (as text when they decode, else hex), why, how many
    times it was tried, and where it came from. It stays within `max_bytes` so it can be
    produced: a large original is cut (`truncated`, its full size in `bytes`), harder when
    JSON escaping blows it up."""
    where = {"reason": reason, "attempts": attempts, "topic": topic}
    where |= {"partition": partition, "offset": offset}
    for cut in (max_bytes // 2, max_bytes // 8):  # escaping grows text at most 6 times
        record = encode_event(
            "gateway.event.dead-lettered",
            {**where, "original": _original(value, cut)},
            source=source,
        )
        if len(record) <= max_bytes:
            break
    return record


def _original(value: bytes | None, cut: int) -> dict[str, Any]:
    if value is None:
        return {"text": None}
    original: dict[str, Any] = {}
    kept = value
    if len(value) > cut:
        kept = value[:cut]
        original = {"truncated": True, "bytes": len(value)}
    try:
        original["text"] = kept.decode()
    except UnicodeDecodeError as exc:
        if kept is not value and exc.start >= len(kept) - 3:
            original["text"] = kept[: exc.start].decode()  # the cut split a character
        else:  # hex doubles the size: half as many bytes
            half = cut // 2
            if len(value) > half:
                original = {"truncated": True, "bytes": len(value)}
            original["hex"] = value[:half].hex()
    return original
