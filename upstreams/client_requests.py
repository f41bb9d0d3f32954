"""What an upstream may ask of the gateway's client mid-call, checked the same way whichever
path serves the call: may this client be asked, is the question well-formed, is its answer,
and how an upstream's log line is addressed to the client."""

from __future__ import annotations

from typing import Any

import mcp_types as mt
from pydantic import ValidationError

from archon_gateway.core.errors import PeerRequestRefused
from archon_gateway.upstreams.callers import FORWARDED, INVALID_REQUEST

REQUEST_TYPES: dict[str, tuple[type[Any], type[Any]]] = {
    "sampling/createMessage": (mt.CreateMessageRequest, mt.CreateMessageResult),
    "elicitation/create": (mt.ElicitRequest, mt.ElicitResult),
    "roots/list": (mt.ListRootsRequest, mt.ListRootsResult),
}

LEVELS: tuple[mt.LoggingLevel, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)


def may_be_asked(declared: mt.ClientCapabilities | None) -> bool:
    """Whether a client that declared `declared` could be asked anything an upstream asks
    mid-call (it declared sampling, elicitation or roots)."""
    return declared is not None and any(
        getattr(declared, capability, None) is not None for capability in FORWARDED.values()
    )


def why_not(
    declared: mt.ClientCapabilities | None, method: str, params: dict[str, Any]
) -> str | None:
    """None when a client that declared `declared` can answer `method`; else why not."""
    capability = FORWARDED.get(method)
    if capability is None:
        return f"the gateway does not forward {method}"
    have = getattr(declared, capability, None) if declared is not None else None
    if have is None:
        return f"the calling client did not declare the '{capability}' capability"
    url_mode = method == "elicitation/create" and params.get("mode") == "url"
    if url_mode and getattr(have, "url", None) is None:
        return "the calling client did not declare URL-mode elicitation"
    return None


def typed_request(method: str, params: dict[str, Any]) -> Any:
    """The SDK's typed request for a forwarded question (PeerRequestRefused if malformed)."""
    try:
        return REQUEST_TYPES[method][0].model_validate({"method": method, "params": params})
    except ValidationError as exc:
        raise PeerRequestRefused(-32602, f"invalid {method} params: {exc}") from exc


def checked_answer(method: str, answer: Any) -> dict[str, Any]:
    """The client's answer as JSON, once it is checked to be an answer to `method`."""
    try:
        result = REQUEST_TYPES[method][1].model_validate(answer)
    except ValidationError as exc:
        raise PeerRequestRefused(
            INVALID_REQUEST, f"the client's answer was invalid: {exc}"
        ) from exc
    dumped: dict[str, Any] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dumped


def log_fields(upstream: str, params: dict[str, Any]) -> tuple[mt.LoggingLevel, Any, str]:
    """(level, data, logger) of an upstream's `notifications/message` as its client gets
    it: the logger is prefixed with the upstream's name; an unknown level reads as info."""
    logger = params.get("logger")
    name = f"{upstream}.{logger}" if isinstance(logger, str) and logger else upstream
    said = params.get("level")
    level: mt.LoggingLevel = said if said in LEVELS else "info"
    return level, params.get("data"), name
