"""Backoff and crash-loop decisions on an injected clock: no sleeping."""

from __future__ import annotations

import pytest

from archon_gateway.upstreams.restarts import CrashHistory, RestartPolicy

POLICY = RestartPolicy(
    backoff_initial=0.5,
    backoff_max=8.0,
    jitter=0.2,
    crash_loop_after=5,
    crash_loop_window=60.0,
    crash_loop_retry=300.0,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def history(clock: Clock, rand: float = 0.5) -> CrashHistory:
    return CrashHistory(POLICY, clock=clock, rand=lambda: rand)


def test_delays_double_per_crash_up_to_the_maximum() -> None:
    clock = Clock()
    crashes = history(clock)  # rand 0.5: no jitter
    delays = []
    for _ in range(4):
        delays.append(crashes.crashed(uptime=0.1))
        clock.now += 1
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert not crashes.looping


def test_the_maximum_caps_the_backoff() -> None:
    clock = Clock()
    policy = RestartPolicy(backoff_initial=1, backoff_max=3, jitter=0, crash_loop_after=99)
    crashes = CrashHistory(policy, clock=clock)
    assert [crashes.crashed(uptime=0) for _ in range(4)] == [1, 2, 3, 3]


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 0.4), (1.0, 0.6)])
def test_jitter_spreads_each_delay_within_its_fraction(rand: float, expected: float) -> None:
    assert history(Clock(), rand).crashed(uptime=0) == pytest.approx(expected)


def test_k_crashes_within_the_window_mean_crash_looping_and_slow_retries() -> None:
    clock = Clock()
    crashes = history(clock)
    for _ in range(4):
        crashes.crashed(uptime=0.1)
        clock.now += 2
    assert not crashes.looping
    assert crashes.crashed(uptime=0.1) == 300.0
    assert crashes.looping
    assert crashes.recent == 5


def test_crashes_spread_wider_than_the_window_never_loop() -> None:
    clock = Clock()
    crashes = history(clock)
    for _ in range(10):
        assert crashes.crashed(uptime=1) < 300
        clock.now += 30  # two crashes per 60 s window at most
    assert not crashes.looping
    assert crashes.recent == 2


def test_crash_looping_lasts_until_a_run_stays_up_for_a_window() -> None:
    clock = Clock()
    crashes = history(clock)
    for _ in range(5):
        crashes.crashed(uptime=0.1)
    assert crashes.looping
    clock.now += 300  # the slow retry: earlier crashes have left the window...
    assert crashes.crashed(uptime=0.1) == 300.0  # ...but it died at once again: still looping
    clock.now += 300
    assert crashes.crashed(uptime=61) == 0.5  # it ran a whole window first: a fresh start
    assert not crashes.looping


def test_every_crash_of_a_loop_is_counted_in_a_row_after_the_window_has_let_it_go() -> None:
    clock = Clock()
    crashes = history(clock)
    for _ in range(5):
        crashes.crashed(uptime=0.1)
    for _ in range(2):
        clock.now += 300  # slow retries: the window now holds only the latest crash
        crashes.crashed(uptime=0.1)
    assert (crashes.recent, crashes.in_a_row) == (1, 7)
    crashes.crashed(uptime=61)  # it ran a whole window first: a fresh count
    assert crashes.in_a_row == 1


def test_reset_forgives_the_history() -> None:
    clock = Clock()
    crashes = history(clock)
    for _ in range(5):
        crashes.crashed(uptime=0)
    crashes.reset()
    assert not crashes.looping
    assert crashes.crashed(uptime=0) == 0.5
