"""The bounded parts under the remote transports: SSE events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from archon_gateway.upstreams.remote.sse_events import OversizedEvent, SseEvent, sse_events

pytestmark = pytest.mark.anyio


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def events_of(*parts: bytes, limit: int = 64) -> list[SseEvent | OversizedEvent]:
    return [event async for event in sse_events(chunks(*parts), limit)]


async def test_sse_events_split_across_chunks_with_comments_ids_and_multiline_data() -> None:
    found = await events_of(
        b": keep-alive\r\n\r\nevent: endpoint\r\ndata: /message?s",
        b'=1\r\n\r\nid: 7\ndata: {"a":\ndata: 1}\n\n',
    )
    assert found == [
        SseEvent("endpoint", b"/message?s=1", None),
        SseEvent("message", b'{"a":\n1}', "7"),
    ]


async def test_an_sse_event_over_the_limit_is_dropped_and_the_next_one_still_arrives() -> None:
    big = b"data: " + b"x" * 40 + b"\ndata: " + b"y" * 40 + b"\n\n"
    endless_line = b"data: " + b"z" * 500 + b"\n\n"
    found = await events_of(big, endless_line, b"data: ok\n\n")
    assert [type(event) for event in found] == [OversizedEvent, OversizedEvent, SseEvent]
    assert found[-1] == SseEvent("message", b"ok", None)
