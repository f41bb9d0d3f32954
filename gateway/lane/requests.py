"""Which `tools/call` requests the lane takes: well-formed, for a tool by name, from a client
that either holds a handshake-era session or sends a 2026-07-28 envelope that declares
nothing an upstream could ask of it. Anything else is left to the SDK, which answers it
(or refuses it) as the protocol says."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from archon_gateway.upstreams.callers import FORWARDED

PROTOCOL_META = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
LOG_LEVEL_META = "io.modelcontextprotocol/logLevel"
_PARAMS = frozenset(("name", "arguments", "_meta"))


@dataclass(frozen=True)
class LaneRequest:
    request_id: str | int
    name: str
    arguments: dict[str, Any]
    meta: dict[str, Any]
    # The 2026-07-28 protocol version the envelope names, or None (handshake era).
    modern_version: str | None

    @property
    def progress_token(self) -> str | int | None:
        token = self.meta.get("progressToken")
        return token if isinstance(token, str | int) and not isinstance(token, bool) else None


def lane_request(message: Any) -> LaneRequest | None:
    """The request in a parsed JSON-RPC `message` when the lane may take it, else None."""
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return None
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return None
    params = message.get("params")
    if message.get("jsonrpc") != "2.0" or not isinstance(params, dict) or params.keys() - _PARAMS:
        return None
    name, arguments = params.get("name"), params.get("arguments")
    meta = params.get("_meta", {})
    if not isinstance(name, str) or not isinstance(meta, dict):
        return None
    if arguments is None:
        arguments = {}
    elif not isinstance(arguments, dict):
        return None
    version = meta.get(PROTOCOL_META)
    if version is None:
        return LaneRequest(request_id, name, arguments, meta, None)
    if version not in MODERN_PROTOCOL_VERSIONS or not _cannot_be_asked(meta):
        return None
    return LaneRequest(request_id, name, arguments, meta, version)


def _cannot_be_asked(meta: Mapping[str, Any]) -> bool:
    """A modern client that declared anything an upstream may ask is served by the normal
    path, which puts such questions to it between rounds."""
    capabilities = meta.get(CAPABILITIES_META)
    if not isinstance(capabilities, dict):
        return False  # malformed or missing: the SDK says what is wrong
    return all(capabilities.get(name) is None for name in FORWARDED.values())
