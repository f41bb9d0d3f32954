"""Which handshake-era session is idle, expired, or closed first at the cap (injected clock)."""

from __future__ import annotations

from archon_gateway.gateway.session_activity import SessionActivity


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_session_with_nothing_in_flight_expires_after_the_idle_time() -> None:
    clock = Clock()
    activity = SessionActivity(clock)
    activity.opened("a")
    assert activity.next_expiry(10) == 110
    clock.now = 109.9
    assert activity.expired(10) == []
    clock.now = 110
    assert activity.expired(10) == ["a"]


def test_a_request_in_flight_or_an_open_stream_holds_a_session_open() -> None:
    clock = Clock()
    activity = SessionActivity(clock)
    activity.began("call", stream=False)
    activity.began("listener", stream=True)
    clock.now += 1000
    assert activity.expired(10) == []
    assert activity.next_expiry(10) is None
    activity.ended("call", stream=False)
    clock.now += 10
    assert activity.expired(10) == ["call"]


def test_at_the_cap_streamless_idle_sessions_go_first_then_listeners_never_busy_ones() -> None:
    clock = Clock()
    activity = SessionActivity(clock)
    activity.began("listener", stream=True)  # oldest, but a client listens
    clock.now += 1
    activity.opened("quiet")
    clock.now += 1
    activity.opened("recent")
    activity.began("busy", stream=False)
    assert activity.least_recently_used_idle() == "quiet"
    activity.forget("quiet")
    assert activity.least_recently_used_idle() == "recent"
    activity.forget("recent")
    assert activity.least_recently_used_idle() == "listener"
    activity.forget("listener")
    assert activity.least_recently_used_idle() is None


def test_sessions_that_ended_elsewhere_are_forgotten_and_unseen_live_ones_learnt() -> None:
    activity = SessionActivity(Clock())
    activity.opened("gone")
    activity.keep_only(["live"])
    assert ("gone" in activity, "live" in activity, len(activity)) == (False, True, 1)
