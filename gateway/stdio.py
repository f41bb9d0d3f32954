"""The stdio transport: newline-delimited JSON-RPC on the process's stdin and stdout.

Why not the MCP SDK's `stdio_server`: it reads stdin in a worker thread that cannot be
cancelled (a SIGTERM waits for the client's next line) and silently drops malformed lines.
Here reads wait on the descriptor itself, so shutdown is immediate, and every line that is
not a valid JSON-RPC message is answered with a JSON-RPC error (parse error or invalid
request), as the spec asks, while the session goes on.

While serving, fd 0 points at /dev/null and fd 1 at stderr, so stray `print`s or child
processes cannot corrupt the protocol; both are restored on exit.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import mcp_types as mt
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from archon_gateway.core.bounded_json import JsonRejected, parse_json
from archon_gateway.core.errors import FrontDoorFailed
from archon_gateway.core.line_framing import READ_SIZE, BoundedLines, OversizedLine

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
# A write of at most PIPE_BUF bytes to a pipe that polls writable never blocks.
_WRITE_CHUNK = getattr(select, "PIPE_BUF", 512)

ReadStream = MemoryObjectReceiveStream[SessionMessage | Exception]
WriteStream = MemoryObjectSendStream[SessionMessage]


@dataclass(frozen=True)
class RawLine:
    """A message already encoded (by the lane), and the request id it answers, if any."""

    data: bytes
    answers: str | int | None


Outgoing = SessionMessage | RawLine


class LineTap(Protocol):
    """Takes some requests off the line before the SDK sees them (the lane)."""

    def take(
        self,
        message: Any,
        spawn: Callable[..., object],
        send: Callable[[bytes, str | int | None], Awaitable[None]],
    ) -> bool: ...

    def cancel(self, request_id: Any) -> None: ...


@dataclass
class StdioChannel:
    """Streams for an MCP server: `read` ends at stdin EOF or after `close_input()`."""

    read: ReadStream
    write: WriteStream
    _reader_scope: anyio.CancelScope

    def close_input(self) -> None:
        """Stop reading, as if stdin had closed: the server finishes and replies drain."""
        self._reader_scope.cancel()


class _Outstanding:
    """Requests handed to the session and not yet answered. At stdin EOF the SDK cancels
    whatever is still running, so EOF is held back until these are answered (bounded)."""

    def __init__(self) -> None:
        self._ids: set[str | int] = set()
        self._changed = anyio.Event()

    def delivered(self, message: mt.JSONRPCMessage) -> None:
        if isinstance(message, mt.JSONRPCRequest):
            self._ids.add(message.id)
        elif isinstance(message, mt.JSONRPCNotification) and message.method == (
            "notifications/cancelled"
        ):
            # A cancelled request is never answered.
            self._settle((message.params or {}).get("requestId"))

    def taken(self, request_id: str | int) -> None:
        self._ids.add(request_id)

    def answered(self, message: mt.JSONRPCMessage) -> None:
        if isinstance(message, mt.JSONRPCResponse | mt.JSONRPCError):
            self._settle(message.id)

    def settled(self, request_id: str | int | None) -> None:
        if request_id is not None:
            self._settle(request_id)

    def _settle(self, request_id: Any) -> None:
        if isinstance(request_id, str | int) and request_id in self._ids:
            self._ids.discard(request_id)
            self._changed.set()
            self._changed = anyio.Event()

    async def wait_answered(self, within: float) -> None:
        with anyio.move_on_after(within):
            while self._ids:
                await self._changed.wait()
        if self._ids:
            log.warning(
                "stdin closed with %d request(s) unanswered after %g s", len(self._ids), within
            )


@asynccontextmanager
async def stdio_streams(
    max_message_bytes: int,
    stdin_fd: int = 0,
    stdout_fd: int = 1,
    *,
    eof_grace: float = 1.0,
    tap: LineTap | None = None,
) -> AsyncIterator[StdioChannel]:
    """Serve newline-delimited JSON-RPC on `stdin_fd`/`stdout_fd` until EOF or close_input().
    At EOF, requests already read get up to `eof_grace` seconds to be answered. `tap`
    (the lane) may take requests off the line; it answers them on the same stdout."""
    in_fd, restore_stdin = _claim(stdin_fd, os.open(os.devnull, os.O_RDONLY))
    _flush_sys_stdout()
    out_fd, restore_stdout = _claim(stdout_fd, os.dup(2))
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_recv = anyio.create_memory_object_stream[Outgoing](0)
    try:
        async with anyio.create_task_group() as tg:
            outstanding = _Outstanding()
            reader = _LineReader(
                in_fd, max_message_bytes, read_send, write_send.clone(), outstanding, eof_grace
            )
            reader_scope = anyio.CancelScope()
            tg.start_soon(_write_messages, out_fd, write_recv, outstanding)
            # Calls the tap took outlive the reader (stopping closes input first, then lets
            # their answers out), within the same grace as the rest.
            async with anyio.create_task_group() as taken, write_send.clone() as answers:
                if tap is not None:
                    reader.tap_into(tap, taken, answers)
                tg.start_soon(reader.run, reader_scope)
                try:
                    yield StdioChannel(read_recv, write_send, reader_scope)
                finally:
                    # The server is done: stop reading, let taken calls answer (bounded),
                    # then let the writer drain what is queued.
                    reader_scope.cancel()
                    taken.cancel_scope.deadline = anyio.current_time() + eof_grace
            await write_send.aclose()
    finally:
        _flush_sys_stdout()
        restore_stdout()
        restore_stdin()


def _flush_sys_stdout() -> None:
    # Text a stray print left in Python's buffer must not reach the wire later.
    if sys.stdout is not None:
        sys.stdout.flush()


def _claim(fd: int, diversion: int) -> tuple[int, Callable[[], None]]:
    """Move `fd` to a private descriptor and point `fd` itself at `diversion`."""
    try:
        private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    except OSError as exc:
        os.close(diversion)
        raise FrontDoorFailed(
            f"the stdio transport needs an open stdin and stdout, but fd {fd} is not "
            f"usable ({exc.strerror}); for a service run `--transport http`"
        ) from exc
    os.dup2(diversion, fd)
    os.close(diversion)

    def restore() -> None:
        os.dup2(private, fd)
        os.close(private)

    return private, restore


class _LineReader:
    def __init__(
        self,
        fd: int,
        max_bytes: int,
        messages: MemoryObjectSendStream[SessionMessage | Exception],
        replies: MemoryObjectSendStream[Outgoing],
        outstanding: _Outstanding,
        eof_grace: float,
    ) -> None:
        self.tap: LineTap | None = None
        self._taken: TaskGroup | None = None
        self._answers: MemoryObjectSendStream[Outgoing] | None = None
        self._outstanding = outstanding
        self._eof_grace = eof_grace
        self._fd = fd
        self._max_bytes = max_bytes
        self._messages = messages
        self._replies = replies
        self._pollable = True

    def tap_into(
        self, tap: LineTap, taken: TaskGroup, answers: MemoryObjectSendStream[Outgoing]
    ) -> None:
        """Offer lines to `tap`; what it takes runs in `taken` and answers on `answers`."""
        self.tap, self._taken, self._answers = tap, taken, answers

    async def run(self, scope: anyio.CancelScope) -> None:
        with scope:
            async with self._messages, self._replies:
                await self._read_until_eof()
        log.debug("stdin closed")

    async def _read_until_eof(self) -> None:
        lines = BoundedLines(self._max_bytes)
        while chunk := await self._read_chunk():
            for line in lines.feed(chunk):
                if isinstance(line, OversizedLine):
                    text = self._too_large(line.size)
                    await self._reply_error(line.request_id(), INVALID_REQUEST, text)
                else:
                    await self._handle_line(line)
        if (last := lines.finish()) is not None:
            await self._handle_line(last)
        await self._outstanding.wait_answered(self._eof_grace)

    def _too_large(self, size: int) -> str:
        return (
            f"Invalid Request: message of {size} bytes exceeds the {self._max_bytes} byte "
            "limit (max_message_bytes)"
        )

    async def _read_chunk(self) -> bytes:
        if self._pollable:
            try:
                await anyio.wait_readable(self._fd)
            except OSError:
                # Regular files and /dev/null cannot be polled; reading them never blocks.
                self._pollable = False
        return os.read(self._fd, READ_SIZE)

    async def _handle_line(self, line: bytes) -> None:
        if not line.strip():
            return
        # Parsed once, by the gateway's one bounded parser, for the tap and the SDK alike:
        # it refuses what the SDK's own parser would take and alter (NaN, 1e400).
        try:
            document = parse_json(line, max_bytes=self._max_bytes, what="message")
        except JsonRejected as exc:
            text = f"Parse error: {exc}"
            log.warning("rejected stdin line: %s", text)
            await self._reply_error(_edge_id(line), PARSE_ERROR, text)
            return
        if self.tap is not None and self._offered(line, document):
            return
        try:
            message = mt.jsonrpc_message_adapter.validate_python(document, by_name=False)
        except ValidationError as exc:
            request_id, code, text = _classify_invalid(document, exc)
            log.warning("rejected stdin line: %s", text)
            await self._reply_error(request_id, code, text)
            return
        if isinstance(message, mt.JSONRPCNotification) and "id" in document:
            # The SDK reads a request whose id is not a string or integer (an object, a
            # float, a bool, null) as a notification and never answers it.
            text = "Invalid Request: id must be a string or an integer"
            log.warning("rejected stdin line: %s", text)
            await self._reply_error(None, INVALID_REQUEST, text)
            return
        self._outstanding.delivered(message)
        await self._messages.send(SessionMessage(message))

    def _offered(self, line: bytes, message: Any) -> bool:
        """Whether the tap took the message (a cheap look first: most lines are not calls)."""
        assert self.tap is not None
        calls, cancels = b'"tools/call"' in line, b'"notifications/cancelled"' in line
        if not (calls or cancels):
            return False
        if cancels and isinstance(message, dict) and isinstance(message.get("params"), dict):
            self.tap.cancel(message["params"].get("requestId"))
            return False  # the SDK hears it too (for the requests it serves)
        if self._taken is None:
            return False
        if self.tap.take(message, self._taken.start_soon, self._send_raw):
            self._outstanding.taken(message["id"])
            return True
        return False

    async def _send_raw(self, data: bytes, answers: str | int | None) -> None:
        assert self._answers is not None
        try:
            await self._answers.send(RawLine(data, answers))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            log.debug("stdout closed; dropping a lane reply")

    async def _reply_error(self, request_id: str | int | None, code: int, text: str) -> None:
        error = mt.JSONRPCError(
            jsonrpc="2.0", id=request_id, error=mt.ErrorData(code=code, message=text)
        )
        await self._replies.send(SessionMessage(error))


def _classify_invalid(document: Any, exc: ValidationError) -> tuple[str | int | None, int, str]:
    """Invalid request: the line is JSON but not a JSON-RPC message. The request id is
    echoed back when it is usable."""
    request_id = document.get("id") if isinstance(document, dict) else None
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        request_id = None
    if not isinstance(document, dict):
        reason = "expected a JSON object (batches are not supported)"
    elif document.get("jsonrpc") != "2.0":
        reason = 'missing "jsonrpc": "2.0"'
    elif "method" not in document and "result" not in document and "error" not in document:
        reason = 'expected "method" (request or notification), "result" or "error"'
    else:
        first = exc.errors()[0]
        reason = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return request_id, INVALID_REQUEST, f"Invalid Request: {reason}"


def _edge_id(line: bytes) -> str | int | None:
    """The request id of a line that cannot be parsed, when its edges show it."""
    edges = OversizedLine(line)
    return edges.request_id()


async def _write_messages(
    fd: int, messages: MemoryObjectReceiveStream[Outgoing], outstanding: _Outstanding
) -> None:
    pollable = True
    async with messages:
        async for item in messages:
            if isinstance(item, RawLine):
                outstanding.settled(item.answers)
                data = memoryview(item.data + b"\n")
            else:
                outstanding.answered(item.message)
                payload = item.message.model_dump_json(by_alias=True, exclude_unset=True)
                data = memoryview((payload + "\n").encode())
            try:
                while data:
                    if pollable:
                        try:
                            await anyio.wait_writable(fd)
                        except OSError:
                            pollable = False
                    written = os.write(fd, data[: _WRITE_CHUNK if pollable else len(data)])
                    data = data[written:]
            except BrokenPipeError:
                # The client stopped reading; keep draining so the server never blocks.
                log.debug("stdout closed by the client; dropping a reply")
