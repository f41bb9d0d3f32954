"""Turning foreign exceptions into the one-line text users read."""

from __future__ import annotations

_MAX = 300


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (whitespace folded, at most 300 characters);
    its type's name when it has no message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _MAX else text[: _MAX - 3] + "..."
