"""Server-sent events from a byte stream, each event's data bounded by `max_bytes`.

Lines are split by `line_framing.BoundedLines` (so one endless line cannot eat memory);
an event whose data grows past the bound is dropped and reported as `OversizedEvent`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from archon_gateway.core.line_framing import BoundedLines, OversizedLine


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: bytes
    id: str | None


@dataclass(frozen=True)
class OversizedEvent:
    size: int


async def sse_events(
    chunks: AsyncIterable[bytes], max_bytes: int
) -> AsyncIterator[SseEvent | OversizedEvent]:
    lines = BoundedLines(max_bytes)
    event, data, size, event_id = "message", bytearray(), 0, None
    oversized = False
    async for chunk in chunks:
        for raw in lines.feed(chunk):
            if isinstance(raw, OversizedLine):
                oversized, size = True, size + raw.size
                continue
            line = raw.removesuffix(b"\r")
            if not line:  # blank line: the event is complete
                if oversized:
                    yield OversizedEvent(size)
                elif data:
                    yield SseEvent(event, bytes(data[:-1]), event_id)
                event, data, size, oversized = "message", bytearray(), 0, False
                continue
            if line.startswith(b":"):
                continue  # a comment (keep-alive)
            name, _, value = line.partition(b":")
            value = value.removeprefix(b" ")
            if name == b"data":
                size += len(value) + 1
                if size > max_bytes:
                    oversized, data = True, bytearray()
                elif not oversized:
                    data += value + b"\n"
            elif name == b"event":
                event = value.decode(errors="replace")
            elif name == b"id":
                event_id = value.decode(errors="replace")
