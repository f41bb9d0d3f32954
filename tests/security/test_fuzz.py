"""Property-based fuzzing (hypothesis, bounded examples, derandomized so CI is
deterministic) of the stdio framing, the bounded parser and the HTTP endpoint."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archon_gateway.core.bounded_json import JsonRejected, parse_json
from archon_gateway.core.line_framing import BoundedLines, OversizedLine
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.serve_loop import bind_listener, http_url, serve
from archon_gateway.gateway.settings import Settings
from tests.support import INITIALIZE

FUZZ = settings(max_examples=200, derandomize=True, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(
    lines=st.lists(st.binary(max_size=80).map(lambda b: b.replace(b"\n", b"")), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=800), max_size=10),
    max_bytes=st.integers(min_value=1, max_value=100),
)
def test_framing_gives_the_same_lines_however_the_stream_is_cut(
    lines: list[bytes], cuts: list[int], max_bytes: int
) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    framing = BoundedLines(max_bytes)
    got: list[bytes | int] = []
    start = 0
    for cut in [*sorted({min(c, len(stream)) for c in cuts}), len(stream)]:
        for line in framing.feed(stream[start:cut]):
            got.append(line.size if isinstance(line, OversizedLine) else line)
        start = cut
    expected = [line if len(line) <= max_bytes else len(line) for line in lines]
    assert got == expected
    assert framing.finish() is None


@FUZZ
@given(data=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_the_bounded_parser_only_ever_raises_its_own_error(data: bytes) -> None:
    with contextlib.suppress(JsonRejected):
        parse_json(data, max_bytes=200)


@pytest.mark.anyio
async def test_the_http_endpoint_answers_any_body_and_keeps_serving(tmp_path: Path) -> None:
    gateway = build_gateway(
        Settings(transport="http", data_dir=tmp_path, enable_external_gateway=False)
    )
    listener = bind_listener("127.0.0.1", 0)
    url = http_url(listener, "/mcp")
    stop = anyio.Event()
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    statuses: set[int] = set()

    bodies = st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {"jsonrpc": st.just("2.0"), "method": st.text(max_size=20)},
            optional={"id": json_values, "params": json_values},
        ).map(lambda v: json.dumps(v).encode()),
    )
    examples: list[bytes] = []

    @settings(
        max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(body=bodies)
    def collect(body: bytes) -> None:
        examples.append(body)

    collect()

    async def fuzz() -> None:
        try:
            async with httpx.AsyncClient(headers=headers, timeout=20) as web:
                for body in examples:
                    answer = await web.post(url, content=body)
                    statuses.add(answer.status_code)
                    assert answer.status_code < 500, (body, answer.text)
                good: dict[str, Any] = {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": INITIALIZE,
                }
                assert (await web.post(url, json=good)).status_code == 200
        finally:
            stop.set()

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: serve(
                    gateway, stdio=False, listener=listener, handle_signals=False, stop=stop
                )
            )
            tg.start_soon(fuzz)
    assert statuses  # every example was answered
