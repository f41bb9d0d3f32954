"""The circuit breaker's state machine, driven by an injected clock (no sleeps)."""

from __future__ import annotations

import anyio
import pytest

from archon_gateway.core.circuit_breaker import (
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
)
from archon_gateway.core.errors import (
    CircuitOpen,
    GatewayError,
    ToolTimeout,
    UpstreamUnavailable,
)

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[str, BreakerState, BreakerState]] = []

    def state_change(self, breaker: CircuitBreaker, old: BreakerState, new: BreakerState) -> None:
        self.changes.append((breaker.name, old, new))


class UserMistake(GatewayError):
    pass


async def fail(exc: BaseException) -> None:
    raise exc


async def succeed(value: str = "ok") -> str:
    return value


async def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.fail_max):
        with pytest.raises(UpstreamUnavailable):
            await breaker.call(fail, UpstreamUnavailable("down"))


async def test_opens_after_fail_max_consecutive_failures_and_fails_fast() -> None:
    clock = Clock()
    breaker = CircuitBreaker("upstream zen", fail_max=3, reset_timeout=30, clock=clock)
    for expected in (1, 2):
        with pytest.raises(UpstreamUnavailable):
            await breaker.call(fail, UpstreamUnavailable("down"))
        assert breaker.fail_counter == expected
        assert breaker.current_state == "closed"
    with pytest.raises(UpstreamUnavailable):
        await breaker.call(fail, UpstreamUnavailable("down"))
    assert breaker.current_state == "open"

    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ran"

    clock.now += 10.2
    with pytest.raises(CircuitOpen) as caught:
        await breaker.call(counted)
    assert calls == 0
    assert str(caught.value) == "upstream zen unavailable (circuit open, retry in 20 s)"
    assert caught.value.name == "upstream zen"
    assert caught.value.retry_in == pytest.approx(19.8)
    assert breaker.retry_in() == pytest.approx(19.8)


async def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = CircuitBreaker("b", fail_max=2, clock=Clock())
    with pytest.raises(UpstreamUnavailable):
        await breaker.call(fail, UpstreamUnavailable("down"))
    assert await breaker.call(succeed, "fine") == "fine"
    assert breaker.fail_counter == 0
    with pytest.raises(UpstreamUnavailable):
        await breaker.call(fail, UpstreamUnavailable("down"))
    assert breaker.current_state == "closed"


async def test_excluded_exceptions_do_not_count() -> None:
    breaker = CircuitBreaker("b", fail_max=1, exclude=(UserMistake, KeyError), clock=Clock())
    for exc in (UserMistake("bad input"), KeyError("x")):
        with pytest.raises(type(exc)):
            await breaker.call(fail, exc)
    assert breaker.current_state == "closed"
    assert breaker.fail_counter == 0
    with pytest.raises(ValueError, match="boom"):
        await breaker.call(fail, ValueError("boom"))
    assert breaker.current_state == "open"


async def test_half_opens_after_reset_timeout_and_closes_on_a_successful_trial() -> None:
    clock = Clock()
    recorder = Recorder()
    breaker = CircuitBreaker("b", fail_max=2, reset_timeout=5, clock=clock, listeners=[recorder])
    await trip(breaker)
    clock.now += 4.99
    assert breaker.current_state == "open"
    assert breaker.retry_in() == pytest.approx(0.01)
    clock.now += 0.01
    assert breaker.current_state == "half_open"
    assert breaker.retry_in() == 0
    assert await breaker.call(succeed) == "ok"
    assert breaker.current_state == "closed"
    assert breaker.fail_counter == 0
    assert recorder.changes == [
        ("b", "closed", "open"),
        ("b", "open", "half_open"),
        ("b", "half_open", "closed"),
    ]


async def test_a_failed_trial_reopens_with_a_fresh_reset_timeout() -> None:
    clock = Clock()
    breaker = CircuitBreaker("b", fail_max=3, reset_timeout=5, clock=clock)
    await trip(breaker)
    clock.now += 5
    with pytest.raises(UpstreamUnavailable):
        await breaker.call(fail, UpstreamUnavailable("still down"))
    assert breaker.current_state == "open"
    assert breaker.retry_in() == pytest.approx(5)


async def test_half_open_admits_one_trial_at_a_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker("b", fail_max=1, reset_timeout=5, clock=clock)
    await trip(breaker)
    clock.now += 5
    trial_started = anyio.Event()
    release = anyio.Event()

    async def slow_trial() -> str:
        trial_started.set()
        await release.wait()
        return "recovered"

    results: list[str] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def run_trial() -> None:
                results.append(await breaker.call(slow_trial))

            tg.start_soon(run_trial)
            await trial_started.wait()
            with pytest.raises(
                CircuitOpen, match=r"^b unavailable \(circuit open, retry in 1 s\)$"
            ):
                await breaker.call(succeed)
            release.set()
    assert results == ["recovered"]
    assert breaker.current_state == "closed"


async def test_cancellation_is_not_a_failure_and_frees_the_trial_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker("b", fail_max=1, reset_timeout=5, clock=clock)

    async def hang() -> None:
        await anyio.sleep_forever()

    # Closed: a caller that goes away does not open the breaker.
    with anyio.fail_after(5), anyio.move_on_after(0.01):
        await breaker.call(hang)
    assert breaker.current_state == "closed"
    assert breaker.fail_counter == 0

    await trip(breaker)
    clock.now += 5
    # Half-open: the cancelled trial leaves it half-open for the next caller.
    with anyio.fail_after(5), anyio.move_on_after(0.01):
        await breaker.call(hang)
    assert breaker.current_state == "half_open"
    assert await breaker.call(succeed) == "ok"
    assert breaker.current_state == "closed"


async def test_timeouts_inside_the_guard_count_as_failures() -> None:
    breaker = CircuitBreaker("b", fail_max=2, clock=Clock())

    async def times_out() -> None:
        with anyio.fail_after(0.01):
            await anyio.sleep_forever()

    with anyio.fail_after(5):
        with pytest.raises(TimeoutError):
            await breaker.call(times_out)
        with pytest.raises(ToolTimeout):
            async with breaker.guard():
                raise ToolTimeout("zen_chat", 0.01)
    assert breaker.current_state == "open"


async def test_an_exception_group_counts_unless_every_member_is_excluded() -> None:
    breaker = CircuitBreaker("b", fail_max=1, exclude=(UserMistake,), clock=Clock())
    with pytest.raises(ExceptionGroup):
        async with breaker.guard():
            raise ExceptionGroup("g", [UserMistake("a"), UserMistake("b")])
    assert breaker.current_state == "closed"
    with pytest.raises(ExceptionGroup):
        async with breaker.guard():
            raise ExceptionGroup("g", [UserMistake("a"), OSError("b")])
    assert breaker.current_state == "open"


async def test_a_call_that_began_before_the_breaker_opened_does_not_change_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker("b", fail_max=1, reset_timeout=5, clock=clock)
    entered = anyio.Event()
    finish = anyio.Event()

    async def slow_success() -> str:
        entered.set()
        await finish.wait()
        return "late"

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(breaker.call, slow_success)
            await entered.wait()
            await trip(breaker)
            finish.set()
    assert breaker.current_state == "open"


async def test_trip_opens_a_closed_breaker_at_once_and_it_half_opens_as_usual() -> None:
    clock = Clock()
    recorder = Recorder()
    breaker = CircuitBreaker("b", fail_max=5, reset_timeout=10, clock=clock, listeners=[recorder])
    breaker.trip()
    assert breaker.current_state == "open"
    with pytest.raises(CircuitOpen) as refused:
        await breaker.call(succeed)
    assert refused.value.retry_in == pytest.approx(10)
    clock.now += 10
    assert breaker.current_state == "half_open"
    assert await breaker.call(succeed) == "ok"
    assert breaker.current_state == "closed"
    assert recorder.changes == [
        ("b", "closed", "open"),
        ("b", "open", "half_open"),
        ("b", "half_open", "closed"),
    ]


async def test_trip_on_an_open_breaker_starts_its_reset_timeout_again() -> None:
    clock = Clock()
    recorder = Recorder()
    breaker = CircuitBreaker("b", fail_max=1, reset_timeout=10, clock=clock, listeners=[recorder])
    await trip(breaker)
    clock.now += 8
    breaker.trip()
    assert breaker.retry_in() == pytest.approx(10)
    clock.now += 9
    assert breaker.current_state == "open"
    assert recorder.changes == [("b", "closed", "open")]  # no second "opened"


async def test_reset_closes_an_open_breaker_at_once_and_forgets_its_failures() -> None:
    clock = Clock()
    recorder = Recorder()
    breaker = CircuitBreaker("b", fail_max=2, reset_timeout=30, clock=clock, listeners=[recorder])
    await trip(breaker)
    breaker.reset()
    assert breaker.current_state == "closed"
    assert (breaker.fail_counter, breaker.retry_in()) == (0, 0)
    assert await breaker.call(succeed) == "ok"
    # A full fail_max of new failures is needed to open it again.
    with pytest.raises(UpstreamUnavailable):
        await breaker.call(fail, UpstreamUnavailable("down"))
    assert breaker.current_state == "closed"
    assert recorder.changes == [("b", "closed", "open"), ("b", "open", "closed")]


async def test_reset_of_a_closed_breaker_clears_its_count_without_a_state_change() -> None:
    recorder = Recorder()
    breaker = CircuitBreaker("b", fail_max=3, clock=Clock(), listeners=[recorder])
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await breaker.call(fail, UpstreamUnavailable("down"))
    breaker.reset()
    assert (breaker.current_state, breaker.fail_counter) == ("closed", 0)
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await breaker.call(fail, UpstreamUnavailable("down"))
    assert breaker.current_state == "closed"  # 2 < 3 since the reset
    assert recorder.changes == []


async def test_a_call_that_began_before_a_reset_does_not_reopen_the_breaker() -> None:
    breaker = CircuitBreaker("b", fail_max=1, reset_timeout=30, clock=Clock())
    await trip(breaker)
    breaker.reset()
    entered = anyio.Event()
    finish = anyio.Event()

    async def slow_failure() -> None:
        entered.set()
        await finish.wait()
        raise UpstreamUnavailable("down, but from before")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                with pytest.raises(UpstreamUnavailable):
                    await breaker.call(slow_failure)

            tg.start_soon(call)
            await entered.wait()
            breaker.trip()
            breaker.reset()  # the operator changes their mind while the call runs
            finish.set()
    assert breaker.current_state == "closed"


async def test_a_failing_listener_does_not_break_the_breaker() -> None:
    class Broken:
        def state_change(
            self, breaker: CircuitBreaker, old: BreakerState, new: BreakerState
        ) -> None:
            raise RuntimeError("listener bug")

    breaker = CircuitBreaker("b", fail_max=1, clock=Clock(), listeners=[Broken()])
    await trip(breaker)
    assert breaker.current_state == "open"


async def test_a_disabled_breaker_never_opens() -> None:
    breaker = CircuitBreaker("b", fail_max=1, clock=Clock(), enabled=False)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await breaker.call(fail, UpstreamUnavailable("down"))
    assert breaker.current_state == "closed"
    assert await breaker.call(succeed) == "ok"


async def test_registry_shares_breakers_by_name_with_its_defaults_and_listeners() -> None:
    clock = Clock()
    recorder = Recorder()
    registry = BreakerRegistry(fail_max=2, reset_timeout=7, clock=clock, listeners=[recorder])
    first = registry.get_or_create("coordinator")
    assert registry.get_or_create("coordinator", fail_max=9) is first
    assert (first.fail_max, first.reset_timeout) == (2, 7)
    other = registry.get_or_create("qdrant", fail_max=1, exclude=(UserMistake,))
    late = Recorder()
    registry.add_listener(late)
    await trip(other)
    assert [b.name for b in registry] == ["coordinator", "qdrant"]
    snapshot = registry.snapshot()
    assert snapshot["coordinator"].state == "closed"
    assert snapshot["qdrant"].as_dict() == {"state": "open", "fail_counter": 1, "retry_in_s": 7}
    assert recorder.changes == late.changes == [("qdrant", "closed", "open")]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="fail_max"):
        CircuitBreaker("b", fail_max=0)
    with pytest.raises(ValueError, match="reset_timeout"):
        CircuitBreaker("b", reset_timeout=-1)
