"""The one JSON parser for outside input (stdio lines both ways, HTTP bodies, manifests,
client configs): bounded in size and nesting depth, with one error that names the limit.

Why pydantic-core's parser and not `json.loads`: the standard library recurses in C and
raises RecursionError (not ValueError) on deep input, which killed readers that caught only
ValueError; pydantic-core's parser (the one the MCP SDK validates messages with) stops at a
fixed depth with a ValueError and is faster on large documents.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pydantic_core

from archon_gateway.core.errors import JsonRejected

__all__ = ["MAX_JSON_DEPTH", "JsonRejected", "dump_json", "parse_json"]

# pydantic-core's parser refuses documents nested deeper than this; it cannot be raised.
MAX_JSON_DEPTH = 200


def parse_json(data: bytes | bytearray | str, *, max_bytes: int, what: str = "message") -> Any:
    """The JSON document in `data`; JsonRejected (one line naming the limit it broke) when
    it is over `max_bytes`, nested deeper than MAX_JSON_DEPTH, or not JSON."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > max_bytes:
        raise JsonRejected(f"{what} is {size} bytes, over the {max_bytes}-byte limit", "size")
    try:
        return pydantic_core.from_json(data, allow_inf_nan=False)
    except ValueError as exc:
        text = str(exc)
        if "recursion limit" in text:
            raise JsonRejected(
                f"{what} is nested deeper than the {MAX_JSON_DEPTH}-level JSON depth limit",
                "depth",
            ) from None
        raise JsonRejected(f"{what} is not valid JSON ({text})", detail=text) from None


def dump_json(document: Any) -> bytes:
    """`document` as compact JSON (UTF-8). orjson on the hot path; the standard library for
    what orjson refuses (integers beyond 64 bits, non-string keys)."""
    try:
        return orjson.dumps(document)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
