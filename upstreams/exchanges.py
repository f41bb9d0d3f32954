"""Server-to-client requests for 2026-07-28 clients: one upstream call over several rounds.

A 2026-07-28 client cannot be sent a request mid-call. A server that needs input answers the
call with `input_required` (the requests embedded, plus an opaque `requestState`); the client
answers them and retries the call with its answers and that state. The upstream, a
handshake-era server, instead sends `sampling/createMessage` (say) mid-call and waits. So the
gateway keeps the upstream call running in an *exchange* that outlives the client's request:

    round 1: the call starts; the upstream asks  -> the client gets input_required(state)
    round 2: the retry carries the answers        -> the upstream gets them; the call goes on
    ...      until the upstream's result          -> the client gets it

The state names the exchange (the SDK seals it, so a client cannot forge another's). An
exchange whose client does not come back within the client time limit has its question
refused (the upstream gets an error) and is dropped when its call ends.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup

from archon_gateway.core.errors import (
    InternalFault,
    PeerRequestRefused,
    UpstreamUnavailable,
)
from archon_gateway.upstreams.callers import INTERNAL_ERROR, INVALID_REQUEST

log = logging.getLogger(__name__)

# At most this many exchanges wait for their clients at once; more are refused.
MAX_EXCHANGES = 256
# Questions one upstream may have open at once within one exchange.
_MAX_OPEN_ASKS = 16


@dataclass
class Ask:
    """One question of the upstream to the client, waiting for its answer."""

    method: str
    params: dict[str, Any]
    answered: anyio.Event = field(default_factory=anyio.Event)
    result: dict[str, Any] | None = None
    refusal: PeerRequestRefused | None = None

    def answer(self, result: dict[str, Any]) -> None:
        self.result = result
        self.answered.set()

    def refuse(self, code: int, message: str) -> None:
        self.refusal = PeerRequestRefused(code, message)
        self.answered.set()


@dataclass
class Exchange:
    """One upstream call of a 2026-07-28 client and the questions it asks meanwhile."""

    token: str
    caller: object = None  # the upstream's view of the client (set by who starts it)
    _asks_send: Any = None
    _asks_receive: Any = None
    outcome: dict[str, Any] | None = None
    failure: BaseException | None = None
    finished: anyio.Event = field(default_factory=anyio.Event)
    open_asks: dict[str, Ask] = field(default_factory=dict)
    _keys: int = 0
    _scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    delivered: anyio.Event = field(default_factory=anyio.Event)  # this round's answers came
    collected: anyio.Event = field(default_factory=anyio.Event)  # the client has the result

    def __post_init__(self) -> None:
        self._asks_send, self._asks_receive = anyio.create_memory_object_stream[Ask](_MAX_OPEN_ASKS)

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Called for the upstream: wait until the client's next round answers."""
        question = Ask(method, params)
        try:
            self._asks_send.send_nowait(question)
        except anyio.WouldBlock as exc:
            raise PeerRequestRefused(INVALID_REQUEST, "too many open questions") from exc
        await question.answered.wait()
        if question.refusal is not None:
            raise question.refusal
        assert question.result is not None
        return question.result

    async def next_round(self) -> dict[str, Ask] | None:
        """Wait for the call to end (None) or to ask something; the questions to put to
        the client now, by the keys its answers will carry."""
        asks: list[Ask] = []
        async with anyio.create_task_group() as tg:

            async def first_ask() -> None:
                try:
                    asks.append(await self._asks_receive.receive())
                except anyio.EndOfStream:
                    return  # the call ended: `ended` sees it
                tg.cancel_scope.cancel()

            async def ended() -> None:
                await self.finished.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(first_ask)
            tg.start_soon(ended)
        if not asks:
            return None
        while True:  # the upstream may ask several things at once
            try:
                asks.append(self._asks_receive.receive_nowait())
            except anyio.WouldBlock:
                break
        for question in asks:
            self._keys += 1
            self.open_asks[f"q{self._keys}"] = question
        self.delivered = anyio.Event()
        return dict(self.open_asks)

    def deliver(self, answers: dict[str, dict[str, Any]]) -> None:
        """The client's answers (by key); an open question it did not answer is refused."""
        for key, question in self.open_asks.items():
            if key in answers:
                question.answer(answers[key])
            else:
                question.refuse(INVALID_REQUEST, "the client did not answer it")
        self.open_asks.clear()
        self.delivered.set()

    def abandon(self) -> None:
        """The client went away mid-round: end the upstream call (which tells it)."""
        for question in self.open_asks.values():
            question.refuse(INTERNAL_ERROR, "the client's request ended")
        self.open_asks.clear()
        self._scope.cancel()


class Exchanges:
    """The exchanges in progress; their upstream calls run in this object's task group."""

    def __init__(self, client_limit: float) -> None:
        self.client_limit = client_limit
        self._open: dict[str, Exchange] = {}
        self._tg: TaskGroup | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Exchanges]:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    def find(self, token: str | None) -> Exchange | None:
        return self._open.get(token) if token else None

    def start(self, call: Callable[[Exchange], Awaitable[dict[str, Any]]]) -> Exchange:
        """Run `call(exchange)` (the upstream call) beside the client's requests."""
        if self._tg is None:
            raise InternalFault("the gateway is not serving exchanges")
        if len(self._open) >= MAX_EXCHANGES:
            raise UpstreamUnavailable(
                f"{MAX_EXCHANGES} calls already wait for their clients' answers; retry later"
            )
        exchange = Exchange(secrets.token_urlsafe(16))
        self._open[exchange.token] = exchange
        self._tg.start_soon(self._run, exchange, call)
        return exchange

    async def _run(
        self, exchange: Exchange, call: Callable[[Exchange], Awaitable[dict[str, Any]]]
    ) -> None:
        try:
            with exchange._scope:
                exchange.outcome = await call(exchange)
        except Exception as exc:
            exchange.failure = exc
        if exchange.outcome is None and exchange.failure is None:
            exchange.failure = UpstreamUnavailable("the call was abandoned")
        exchange.finished.set()
        exchange._asks_send.close()
        # Its result waits for the client's next round, but not forever.
        with anyio.move_on_after(self.client_limit):
            await exchange.collected.wait()
        self._open.pop(exchange.token, None)

    def park(self, exchange: Exchange) -> None:
        """The client was asked: refuse the questions if it does not come back in time."""
        if self._tg is not None:
            self._tg.start_soon(self._expire, exchange, exchange.delivered)

    async def _expire(self, exchange: Exchange, delivered: anyio.Event) -> None:
        with anyio.move_on_after(self.client_limit):
            await delivered.wait()
            return
        log.info("a client did not come back with its answers within %g s", self.client_limit)
        exchange.deliver({})
