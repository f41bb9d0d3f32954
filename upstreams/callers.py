"""Which client an upstream's request or log line belongs to, and forwarding to it.

An upstream asks its client things mid-call (`sampling/createMessage`, `elicitation/create`,
`roots/list`) and logs (`notifications/message`). Its client is the gateway, which serves
many clients over one upstream session, so each such message must be attributed to the
client whose request caused it:

- a transport that carries the relation (streamable HTTP: the message names our request)
  is exact: the request's origin is its caller;
- a stdio upstream's message names nothing, so the in-flight requests on that upstream
  decide: when they all come from one client (the usual case, and always when one request
  is in flight) that client is meant; when several clients have requests in flight the
  gateway cannot tell, and a request is refused rather than sent to the wrong client (log
  lines then go to every client, as unrelated ones do).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from archon_gateway.core.errors import PeerRequestRefused

log = logging.getLogger(__name__)

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603

# Log lines of one call waiting to reach its client; beyond this they are dropped.
_LOG_BACKLOG = 64
# How long a client may take to take one log line (or the rest, when the call ends).
_LOG_SEND_LIMIT = 1.0

# Server-to-client requests the gateway forwards, and the client capability each needs.
FORWARDED = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}


# Starts a task (a task group's start_soon).
Spawn = Callable[..., Any]


class Caller(Protocol):
    """The client side of one request in flight on an upstream."""

    @property
    def client(self) -> object:
        """Identifies the client connection (equal for requests of one client)."""

    def can(self, method: str, params: dict[str, Any]) -> str | None:
        """None when this client can answer `method`; else why not (one line)."""

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Forward a request to the client; its result (PeerRequestRefused on its error)."""

    async def log(self, upstream: str, params: dict[str, Any]) -> None:
        """Relay an upstream's `notifications/message` params to this client."""


@dataclass
class _Call:
    """One request in flight: its caller, its open questions, and its log lines, which
    are relayed in order, and before the request's result reaches its client. The relay
    task starts with the first log line (most calls log nothing and pay nothing)."""

    caller: Caller
    upstream: str
    asks: set[anyio.CancelScope] = field(default_factory=set)
    logs: MemoryObjectSendStream[dict[str, Any]] | None = None
    logs_relayed: anyio.Event | None = None
    # Lines queued with no task to relay them live: relayed when the call ends.
    unrelayed: MemoryObjectReceiveStream[dict[str, Any]] | None = None

    def queue_log(self, params: dict[str, Any], spawn: Spawn | None) -> None:
        """Queue a log line (dropped when the backlog is full or the call has ended)."""
        if self.logs is None:
            self.logs, lines = anyio.create_memory_object_stream[dict[str, Any]](_LOG_BACKLOG)
            self.logs_relayed = anyio.Event()
            if spawn is None:
                # No task group to relay in while the call runs: at its end, then.
                self.unrelayed = lines
            else:
                spawn(self._relay_logs, lines)
        with suppress(anyio.WouldBlock, anyio.ClosedResourceError):  # a flood, or it ended
            self.logs.send_nowait(params)

    async def finish(self) -> None:
        """The call is answered: its log lines go out first (bounded)."""
        if self.logs is None or self.logs_relayed is None:
            return
        self.logs.close()
        lines, self.unrelayed = self.unrelayed, None
        with anyio.move_on_after(_LOG_SEND_LIMIT):
            if lines is not None:
                await self._relay_logs(lines)
            await self.logs_relayed.wait()

    def close(self) -> None:
        if self.logs is not None:
            self.logs.close()
        for scope in self.asks:
            scope.cancel()

    async def _relay_logs(self, lines: MemoryObjectReceiveStream[dict[str, Any]]) -> None:
        async with lines:
            async for params in lines:
                try:
                    with anyio.fail_after(_LOG_SEND_LIMIT):
                        await self.caller.log(self.upstream, params)
                except Exception as exc:  # a slow or gone client loses a log line
                    log.debug("could not relay a log line of %s: %r", self.upstream, exc)
        assert self.logs_relayed is not None
        self.logs_relayed.set()


class _Ambiguous:
    """Several clients have requests in flight: no single caller can be named."""


AMBIGUOUS = _Ambiguous()


@dataclass
class InFlight:
    """The callers with requests in flight on one upstream."""

    upstream: str = ""
    # Where log relays run while their call does (the upstream's supervisor task group).
    spawn: Spawn | None = None
    _calls: dict[int, _Call] = field(default_factory=dict)
    _tokens: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @asynccontextmanager
    async def calling(self, caller: Caller | None) -> AsyncIterator[object]:
        """For the block, `caller` has a request in flight; yields the origin tag to send
        with it. When the request ends, its log lines are relayed first, and what it still
        asks its client is abandoned. No task is started per call: the per-call cost sits
        on every proxied call's path."""
        if caller is None:
            yield None
            return
        token = next(self._tokens)
        call = self._calls[token] = _Call(caller, self.upstream)
        try:
            yield token
            await call.finish()
        finally:
            del self._calls[token]
            call.close()

    def log(self, origin: object, params: dict[str, Any]) -> bool:
        """Queue an upstream's log line for the call it belongs to; False when it belongs
        to no single client's call (then it is for every client)."""
        found = self.attribute(origin)
        if not isinstance(found, _Call):
            return False
        found.queue_log(params, self.spawn)
        return True

    def __len__(self) -> int:
        return len(self._calls)

    def attribute(self, origin: object = None) -> _Call | _Ambiguous | None:
        """The call a message belongs to: its origin's when known, else the only client's
        with requests in flight; AMBIGUOUS when several clients have; None when none."""
        if isinstance(origin, int) and origin in self._calls:
            return self._calls[origin]
        calls = list(self._calls.values())
        if not calls:
            return None
        first = calls[-1]  # the newest: its client, if all calls share one client
        if all(call.caller.client is first.caller.client for call in calls):
            return first
        return AMBIGUOUS


async def forward_request(
    upstream: str,
    in_flight: InFlight,
    method: str,
    params: dict[str, Any],
    origin: object,
    *,
    time_limit: float,
    roots: list[dict[str, Any]],
) -> dict[str, Any]:
    """Answer an upstream's request: ping here, the rest by the client whose request caused
    it (within `time_limit` seconds); roots from the manifest when no client gives them.
    A refusal (PeerRequestRefused) says why in one line."""
    if method == "ping":
        return {}
    if method not in FORWARDED:
        raise PeerRequestRefused(METHOD_NOT_FOUND, f"the gateway does not forward {method}")
    found = in_flight.attribute(origin)
    call = found if isinstance(found, _Call) else None
    why_not = call.caller.can(method, params) if call is not None else None
    if method == "roots/list" and (call is None or why_not is not None):
        return {"roots": roots}
    if found is AMBIGUOUS:
        raise PeerRequestRefused(
            INVALID_REQUEST,
            f"{method} from upstream '{upstream}' refused: requests of several clients are in "
            "flight on it, and a stdio upstream does not say which one it is asking for",
        )
    if call is None:
        raise PeerRequestRefused(
            INVALID_REQUEST,
            f"{method} from upstream '{upstream}' refused: no client request of the gateway "
            "is in flight on it, so there is no client to ask",
        )
    if why_not is not None:
        raise PeerRequestRefused(INVALID_REQUEST, f"{method} refused: {why_not}")
    with anyio.CancelScope() as scope:
        call.asks.add(scope)
        try:
            with anyio.fail_after(time_limit):
                return await call.caller.ask(method, params)
        except TimeoutError as exc:
            raise PeerRequestRefused(
                INTERNAL_ERROR,
                f"{method} refused: the client did not answer within {time_limit:g} s",
            ) from exc
        finally:
            call.asks.discard(scope)
    raise PeerRequestRefused(
        INTERNAL_ERROR, f"{method} abandoned: the client request that caused it has ended"
    )
