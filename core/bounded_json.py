"""The one JSON parser for outside input (stdio lines both ways, HTTP bodies, manifests,
client configs): bounded in size and nesting depth, with one error that names the limit.
It never alters a value: a non-finite number (a `NaN` or `Infinity` literal, or a literal
like 1e400 that overflows to infinity) is refused naming its field, since the SDK would
otherwise forward it as `null` (RFC 8259 has no such numbers).

Why pydantic-core's parser and not `json.loads`: the standard library recurses in C and
raises RecursionError (not ValueError) on deep input, which killed readers that caught only
ValueError; pydantic-core's parser (the one the MCP SDK validates messages with) stops at a
fixed depth with a ValueError and is faster on large documents.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pydantic_core

from archon_gateway.core.errors import JsonRejected

__all__ = ["MAX_JSON_DEPTH", "JsonRejected", "dump_json", "non_finite_at", "parse_json"]

# pydantic-core's parser refuses documents nested deeper than this; it cannot be raised.
MAX_JSON_DEPTH = 200
_MAX_PATH_CHARS = 200
_NUMBERS = (float, int)


def parse_json(data: bytes | bytearray | str, *, max_bytes: int, what: str = "message") -> Any:
    """The JSON document in `data`; JsonRejected (one line naming the limit it broke) when
    it is over `max_bytes`, nested deeper than MAX_JSON_DEPTH, has a non-finite number, or
    is not JSON."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > max_bytes:
        raise JsonRejected(f"{what} is {size} bytes, over the {max_bytes}-byte limit", "size")
    try:
        document = pydantic_core.from_json(data, allow_inf_nan=False)
    except ValueError as exc:
        text = str(exc)
        if "recursion limit" in text:
            raise JsonRejected(
                f"{what} is nested deeper than the {MAX_JSON_DEPTH}-level JSON depth limit",
                "depth",
            ) from None
        _refuse_non_finite(_nan_literal_at(data), what)
        raise JsonRejected(f"{what} is not valid JSON ({text})", detail=text) from None
    # Literals like 1e400 parse as infinity. The walk adds 1-3 µs to a typical call
    # (scripts/bench/json_parse.py).
    if _has_non_finite(document):
        _refuse_non_finite(non_finite_at(document), what)
    return document


def _has_non_finite(value: Any) -> bool:
    """Whether any float in a parsed document is infinite or NaN (no paths: the fast
    check every document gets)."""
    kind = type(value)
    if kind is float:
        return not math.isfinite(value)
    if kind is dict:
        children = value.values()
    elif kind is list:
        if value and type(value[0]) in _NUMBERS:
            # NaN and infinities propagate through a sum: a finite sum of a numeric array
            # (an embedding, say) proves every element finite at C speed.
            try:
                if math.isfinite(sum(value)):
                    return False
            except (TypeError, OverflowError):  # not all numbers, or a huge integer
                pass
        children = value
    else:
        return False
    for child in children:
        kind = type(child)
        if kind is float:
            if not math.isfinite(child):
                return True
        elif (kind is dict or kind is list) and _has_non_finite(child):
            return True
    return False


def non_finite_at(document: Any) -> str | None:
    """The path (`params.arguments.text`, `items[3]`) of the first non-finite float in a
    parsed document, or None when every number is finite."""
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                return path or "the top level"
        elif isinstance(value, dict):
            members = [(v, _member(path, k)) for k, v in value.items()]
            stack.extend(reversed(members))
        elif isinstance(value, list):
            stack.extend(reversed([(v, f"{path}[{i}]") for i, v in enumerate(value)]))
    return None


def _member(path: str, key: str) -> str:
    if not key.isidentifier():
        return f"{path}[{json.dumps(key[:64])}]"
    return f"{path}.{key}" if path else key


def _nan_literal_at(data: bytes | bytearray | str) -> str | None:
    """Where a NaN/Infinity literal sits, when that is why the strict parse failed (only
    on the error path: the text is parsed again, allowing them)."""
    try:
        return non_finite_at(pydantic_core.from_json(data, allow_inf_nan=True))
    except ValueError:
        return None


def _refuse_non_finite(path: str | None, what: str) -> None:
    if path is not None:
        if len(path) > _MAX_PATH_CHARS:
            path = path[: _MAX_PATH_CHARS - 3] + "..."
        raise JsonRejected(
            f"{what} has a non-finite number at {path}: NaN, Infinity and numbers beyond "
            "±1.8e308 are not JSON and are not allowed",
            "non_finite",
        )


def dump_json(document: Any) -> bytes:
    """`document` as compact JSON (UTF-8). orjson on the hot path; the standard library for
    what orjson refuses (integers beyond 64 bits, non-string keys)."""
    try:
        return orjson.dumps(document)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
