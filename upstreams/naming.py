"""Namespaced tool names: `{namespace}_{tool}`, at most 64 characters, stable."""

from __future__ import annotations

import hashlib

MAX_TOOL_NAME = 64
_HASH_CHARS = 8


def namespaced(namespace: str, tool: str) -> str:
    """`{namespace}_{tool}`; when that is too long, a prefix of it plus a short hash of the
    whole name, so the mapping is deterministic and distinct names stay distinct."""
    full = f"{namespace}_{tool}"
    if len(full) <= MAX_TOOL_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_HASH_CHARS]
    return f"{full[: MAX_TOOL_NAME - _HASH_CHARS - 1]}_{digest}"
