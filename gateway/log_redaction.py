"""Keeps secrets out of the log: a filter on the gateway's one log handler.

- uvicorn's access lines carry the request target, query string included, and callers may
  put a token there (`/mcp?X-Service-Auth=...`): the query string is replaced by `?…`.
- FastMCP logs every tool call's (and prompt's) full arguments at debug level, and tool
  arguments carry users' secrets: those records show argument names and sizes instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

# FastMCP's debug lines that interpolate a call's arguments as their second argument.
_ARGUMENT_LINES = ("Handler called: call_tool", "Handler called: get_prompt")


def without_query(target: str) -> str:
    path, question, _ = target.partition("?")
    return path + "?…" if question else path


def argument_summary(arguments: Any) -> str:
    """`{name: N bytes, ...}`: what was passed, never the values."""
    if not isinstance(arguments, Mapping):
        return f"<{type(arguments).__name__}>"
    sizes = (f"{name}: {_size(value)} bytes" for name, value in arguments.items())
    return "{" + ", ".join(sizes) + "}"


def _size(value: Any) -> int:
    try:
        return len(json.dumps(value, default=str))
    except (TypeError, ValueError, RecursionError):
        return len(repr(value))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple):
            return True
        if record.name == "uvicorn.access" and len(args) >= 3:
            record.args = (*args[:2], without_query(str(args[2])), *args[3:])
        elif len(args) == 2 and any(line in str(record.msg) for line in _ARGUMENT_LINES):
            record.args = (args[0], argument_summary(args[1]))
        return True
