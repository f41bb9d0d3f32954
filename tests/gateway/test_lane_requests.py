"""Which tools/call requests the lane takes (gateway/lane/requests.py): the rest is the SDK's
to answer, so anything unusual must be left alone."""

from __future__ import annotations

from typing import Any

import pytest

from archon_gateway.gateway.lane.requests import lane_request

VERSION = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
MODERN = {VERSION: "2026-07-28", CAPABILITIES: {}}


def call(**params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}


def test_a_plain_handshake_era_call_is_taken_with_its_progress_token() -> None:
    request = lane_request(call(name="up_echo", arguments={"t": 1}, _meta={"progressToken": "p"}))
    assert request is not None
    assert (request.request_id, request.name, request.arguments) == (7, "up_echo", {"t": 1})
    assert request.modern_version is None
    assert request.progress_token == "p"


def test_missing_arguments_read_as_none_and_a_bool_token_as_no_token() -> None:
    request = lane_request(call(name="up_echo", _meta={"progressToken": True}))
    assert request is not None
    assert request.arguments == {}
    assert request.progress_token is None


def test_a_modern_envelope_is_taken_when_it_declares_nothing_to_be_asked() -> None:
    request = lane_request(call(name="up_echo", _meta=MODERN))
    assert request is not None
    assert request.modern_version == "2026-07-28"


@pytest.mark.parametrize(
    "message",
    [
        call(
            name="up_echo",
            _meta={**MODERN, "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}},
        ),
        call(
            name="up_echo",
            _meta={**MODERN, "io.modelcontextprotocol/clientCapabilities": {"roots": {}}},
        ),
        call(name="up_echo", _meta={"io.modelcontextprotocol/protocolVersion": "2026-07-28"}),
        call(
            name="up_echo",
            _meta={**MODERN, "io.modelcontextprotocol/protocolVersion": "2099-01-01"},
        ),
        call(name="up_echo", arguments=[1, 2]),
        call(name=5),
        call(name="up_echo", task={"ttl": 1}),  # a task-augmented call
        call(name="up_echo", _meta="not an object"),
        {"jsonrpc": "2.0", "id": True, "method": "tools/call", "params": {"name": "up_echo"}},
        {"jsonrpc": "2.0", "id": None, "method": "tools/call", "params": {"name": "up_echo"}},
        {"jsonrpc": "1.0", "id": 1, "method": "tools/call", "params": {"name": "up_echo"}},
        {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "up_echo"}},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        [call(name="up_echo")],
        "tools/call",
    ],
    ids=[
        "asks-sampling",
        "asks-roots",
        "no-capabilities",
        "unknown-version",
        "arguments-not-object",
        "name-not-string",
        "task",
        "meta-not-object",
        "bool-id",
        "null-id",
        "wrong-jsonrpc",
        "notification",
        "other-method",
        "batch",
        "not-an-object",
    ],
)
def test_anything_unusual_is_left_to_the_sdk(message: Any) -> None:
    assert lane_request(message) is None
