"""Namespaced names: tools and prompts `{namespace}_{name}` (at most 64 characters, stable);
resource URIs `{scheme}://{namespace}/{rest}`."""

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


def namespaced_uri(namespace: str, uri: str) -> str:
    """A resource URI (or URI template) as the gateway lists it: the upstream's name becomes
    the first path segment after the scheme, `demo://x/y` -> `demo://{namespace}/x/y`
    (FastMCP's mounted servers do the same). A URI without `//` becomes
    `{namespace}+{uri}`. Upstream names hold no `/` or `+`, so the mapping is reversible
    and two upstreams never collide."""
    scheme, sep, rest = uri.partition("://")
    if sep and scheme:
        return f"{scheme}://{namespace}/{rest}"
    return f"{namespace}+{uri}"


def split_uri(uri: str) -> tuple[str, str] | None:
    """The (namespace, upstream URI) behind a namespaced URI, or None if it is not one."""
    scheme, sep, rest = uri.partition("://")
    if sep and scheme:
        namespace, slash, tail = rest.partition("/")
        return (namespace, f"{scheme}://{tail}") if slash and namespace else None
    namespace, plus, tail = uri.partition("+")
    return (namespace, tail) if plus and namespace and tail else None
