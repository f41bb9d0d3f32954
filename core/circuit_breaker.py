"""Circuit breakers, anyio-native: closed -> open after `fail_max` consecutive failures ->
half-open once `reset_timeout` has passed -> closed on a successful trial call.

Why not a library: pybreaker's async path needs tornado and uses threading locks and the
wall clock; aiobreaker is asyncio-only, unmaintained since 2021, reads the wall clock and
lets every concurrent call through while half-open; purgatory counts cancellation as a
failure (it handles any BaseException), reads `time.time()` and also lets every call
through while half-open. None takes an injected monotonic clock.

Rules here:
- Only outages count as failures (`errors.counts_as_outage`: not caller errors, not
  refusals of a dependency that is up), minus an optional extra `exclude`. Cancellation
  (the caller went away; anyio's cancel exception is a BaseException) never counts; a timeout
  raised inside the guard (`ToolTimeout`, `TimeoutError`, httpx timeouts translated to
  `UpstreamUnavailable`) does. So put time limits *inside* the guard.
- Half-open admits one trial call at a time; the others fail fast. Success closes, failure
  re-opens, a cancelled trial frees the slot for the next caller.
- Every state change happens synchronously (no await between deciding and recording), so
  cancellation can never leave the breaker half-updated.
- Results of calls that started in an earlier state (a slow call that was already running
  when the breaker opened) are ignored.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, ParamSpec, Protocol, TypeVar

from archon_gateway.core.errors import CircuitOpen, counts_as_outage

log = logging.getLogger(__name__)

BreakerState = Literal["closed", "open", "half_open"]
STATES: tuple[BreakerState, ...] = ("closed", "open", "half_open")

P = ParamSpec("P")
T = TypeVar("T")


class BreakerListener(Protocol):
    def state_change(
        self, breaker: CircuitBreaker, old: BreakerState, new: BreakerState
    ) -> None: ...


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        exclude: tuple[type[BaseException], ...] = (),
        listeners: Sequence[BreakerListener] = (),
        clock: Callable[[], float] = time.monotonic,
        enabled: bool = True,
    ) -> None:
        if fail_max < 1:
            raise ValueError(f"fail_max must be at least 1, not {fail_max}")
        if reset_timeout < 0:
            raise ValueError(f"reset_timeout must not be negative, not {reset_timeout}")
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self.exclude = exclude
        self.enabled = enabled
        self._listeners = list(listeners)
        self._clock = clock
        self._state: BreakerState = "closed"
        self._epoch = 0  # bumped on every state change
        self._fail_counter = 0
        self._opened_at = 0.0
        self._trial_running = False

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, {self.current_state}, fails={self._fail_counter})"

    @property
    def current_state(self) -> BreakerState:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_timeout:
            self._set_state("half_open")
        return self._state

    @property
    def fail_counter(self) -> int:
        return self._fail_counter

    def retry_in(self) -> float:
        """Seconds until the breaker half-opens; 0 when it is not open."""
        if self.current_state != "open":
            return 0.0
        return max(0.0, self._opened_at + self.reset_timeout - self._clock())

    def add_listener(self, listener: BreakerListener) -> None:
        self._listeners.append(listener)

    def reset(self) -> None:
        """Close the breaker now (an operator knows the dependency is back)."""
        self._fail_counter = 0
        self._set_state("closed")

    def trip(self) -> None:
        """Open the breaker now (an operator takes the dependency out); it half-opens after
        `reset_timeout` as usual."""
        self._open()

    def guard(self) -> AbstractAsyncContextManager[None]:
        """`async with breaker.guard(): ...` runs the block as one call through the breaker;
        raises CircuitOpen before the block when the breaker is open."""
        return _Guard(self)

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        async with _Guard(self):
            return await fn(*args, **kwargs)

    # --- state machine (synchronous on purpose) -------------------------------------------

    def _admit(self) -> tuple[int, bool]:
        """Let a call in or raise CircuitOpen; returns (epoch, is_trial)."""
        state = self.current_state
        if state == "closed":
            return self._epoch, False
        if state == "half_open" and not self._trial_running:
            self._trial_running = True
            return self._epoch, True
        # Open, or half-open with its one trial call still running.
        raise CircuitOpen(self.name, self.retry_in() if state == "open" else 1.0)

    def _record(self, epoch: int, trial: bool, exc: BaseException | None) -> None:
        if trial:
            self._trial_running = False
        if epoch != self._epoch:
            return  # the call began in an earlier state; its result says nothing now
        if exc is not None and not self._counts(exc):
            return
        if exc is None:
            self._fail_counter = 0
            if trial:
                self._set_state("closed")
            return
        self._fail_counter += 1
        if trial or self._fail_counter >= self.fail_max:
            self._open()

    def _counts(self, exc: BaseException) -> bool:
        if isinstance(exc, BaseExceptionGroup):
            return any(self._counts(inner) for inner in exc.exceptions)
        return counts_as_outage(exc) and not isinstance(exc, self.exclude)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set_state("open")

    def _set_state(self, new: BreakerState) -> None:
        old = self._state
        if old == new:
            return
        self._state = new
        self._epoch += 1
        if new == "closed":
            self._fail_counter = 0
        log.info("circuit breaker %s: %s -> %s", self.name, old, new)
        for listener in self._listeners:
            try:
                listener.state_change(self, old, new)
            except Exception:
                log.exception("circuit breaker %s: a state listener failed", self.name)


class _Guard:
    __slots__ = ("_breaker", "_epoch", "_trial")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._epoch = 0
        self._trial = False

    async def __aenter__(self) -> None:
        if self._breaker.enabled:
            self._epoch, self._trial = self._breaker._admit()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._breaker.enabled:
            self._breaker._record(self._epoch, self._trial, exc)


@dataclass(frozen=True)
class BreakerSnapshot:
    name: str
    state: BreakerState
    fail_counter: int
    retry_in: float

    def as_dict(self) -> dict[str, str | int | float]:
        return {
            "state": self.state,
            "fail_counter": self.fail_counter,
            "retry_in_s": math.ceil(self.retry_in),
        }


class BreakerRegistry:
    """The gateway's breakers by name: one per upstream and one per HTTP backend. Settings
    given here are the defaults for breakers it creates; `listeners` observe them all."""

    def __init__(
        self,
        *,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        enabled: bool = True,
        listeners: Sequence[BreakerListener] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self.enabled = enabled
        self._listeners = list(listeners)
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get_or_create(
        self,
        name: str,
        *,
        fail_max: int | None = None,
        reset_timeout: float | None = None,
        exclude: tuple[type[BaseException], ...] = (),
    ) -> CircuitBreaker:
        """The breaker called `name`, created on first use (later arguments are ignored)."""
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(
                name,
                fail_max=self.fail_max if fail_max is None else fail_max,
                reset_timeout=self.reset_timeout if reset_timeout is None else reset_timeout,
                exclude=exclude,
                listeners=self._listeners,
                clock=self._clock,
                enabled=self.enabled,
            )
            self._breakers[name] = breaker
        return breaker

    def reconfigure(self, *, fail_max: int, reset_timeout: float) -> None:
        """New defaults (a configuration reload): breakers that use the old defaults take
        the new ones now, keeping their state; breakers given their own values keep them."""
        for breaker in self._breakers.values():
            if breaker.fail_max == self.fail_max:
                breaker.fail_max = fail_max
            if breaker.reset_timeout == self.reset_timeout:
                breaker.reset_timeout = reset_timeout
        self.fail_max, self.reset_timeout = fail_max, reset_timeout

    def add_listener(self, listener: BreakerListener) -> None:
        """Observe every breaker, present and future."""
        self._listeners.append(listener)
        for breaker in self._breakers.values():
            breaker.add_listener(listener)

    def get(self, name: str) -> CircuitBreaker | None:
        return self._breakers.get(name)

    def __iter__(self) -> Iterator[CircuitBreaker]:
        return iter(list(self._breakers.values()))

    def __len__(self) -> int:
        return len(self._breakers)

    def snapshot(self) -> dict[str, BreakerSnapshot]:
        return {
            name: BreakerSnapshot(name, b.current_state, b.fail_counter, b.retry_in())
            for name, b in sorted(self._breakers.items())
        }
