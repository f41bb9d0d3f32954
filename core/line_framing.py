"""Newline-delimited JSON-RPC framing with a size bound, shared by both stdio directions
(our stdin from a client, and each upstream's stdout).

A line over the bound is dropped as it arrives, so a runaway peer cannot eat memory; only
its first and last bytes are kept, to recover the request id and fail just that request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

# Where a top-level id can be read without parsing the whole line: as the first member
# (after "jsonrpc"), as Python SDKs write it, or as the last member, as the TypeScript SDK does.
_ID_VALUE = rb'(-?\d+|"(?:[^"\\]|\\.)*")'
_LEADING_ID = re.compile(rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*' + _ID_VALUE)
_TRAILING_ID = re.compile(rb'"id"\s*:\s*' + _ID_VALUE + rb"\s*\}\s*$")
_EDGE = 256
# How much one read of a pipe (our stdin, an upstream's stdout or stderr) asks for.
READ_SIZE = 64 * 1024


class OversizedLine:
    """Keeps only the edges of a line that is too large, to answer it with its request id."""

    def __init__(self, start: bytes | bytearray) -> None:
        # Slices only: copying a buffer of max_bytes would double the peak memory.
        self._head = bytes(start[:_EDGE])
        self._tail = bytes(start[-_EDGE:])
        self.size = len(start)
        self.answered = False  # set by a reader that already failed its request

    def drop(self, more: bytes) -> None:
        self._tail = (self._tail + more)[-_EDGE:]
        self.size += len(more)

    def request_id(self) -> str | int | None:
        """The id, from either edge (once the line has ended)."""
        return _id_of(_LEADING_ID.match(self._head) or _TRAILING_ID.search(self._tail))

    def leading_id(self) -> str | int | None:
        """The id when the line starts with it: known while the line is still arriving."""
        return _id_of(_LEADING_ID.match(self._head))


def _id_of(found: re.Match[bytes] | None) -> str | int | None:
    if found is None:
        return None
    value: str | int = json.loads(found.group(1))
    return value


@dataclass
class BoundedLines:
    """Splits a byte stream into lines of at most `max_bytes`; feed chunks, get lines."""

    max_bytes: int

    def __post_init__(self) -> None:
        self._buffer = bytearray()
        self._oversized: OversizedLine | None = None

    def feed(self, chunk: bytes) -> Iterator[bytes | OversizedLine]:
        """Complete lines (without the newline) and ended oversized lines, in order."""
        start = 0
        while start <= len(chunk):
            newline = chunk.find(b"\n", start)
            end = len(chunk) if newline == -1 else newline
            if self._oversized is not None:
                self._oversized.drop(chunk[start:end])
            else:
                self._buffer += chunk[start:end]
                if len(self._buffer) > self.max_bytes:
                    self._oversized = OversizedLine(self._buffer)
                    self._buffer.clear()
            if newline == -1:
                return
            if self._oversized is not None:
                yield self._oversized
                self._oversized = None
            else:
                yield bytes(self._buffer)
            self._buffer.clear()
            start = newline + 1

    @property
    def oversized(self) -> OversizedLine | None:
        """The oversized line still arriving, if any."""
        return self._oversized

    def finish(self) -> bytes | None:
        """At end of stream: the last line when it had no newline (and was not oversized)."""
        if self._buffer and self._oversized is None:
            return bytes(self._buffer)
        return None
