"""The connection slots: at the cap the longest-waiting connection gives way; busy ones never."""

from __future__ import annotations

from archon_gateway.core.connection_slots import ConnectionSlots


class Conn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.cut_off = False

    def cut(self) -> None:
        self.cut_off = True


def test_below_the_cap_every_connection_is_admitted() -> None:
    slots = ConnectionSlots(2)
    assert slots.admit(Conn("a"))
    assert slots.admit(Conn("b"))
    assert (len(slots), slots.waiting_count) == (2, 2)


def test_at_the_cap_the_longest_waiting_connection_is_cut_not_a_busy_one() -> None:
    slots = ConnectionSlots(3)
    busy, old, newer = Conn("busy"), Conn("old"), Conn("newer")
    for conn in (busy, old, newer):
        slots.admit(conn)
    slots.busy(busy)
    assert slots.admit(Conn("new"))
    assert (busy.cut_off, old.cut_off, newer.cut_off) == (False, True, False)
    assert (len(slots), slots.evicted) == (3, 1)
    slots.closed(old)  # its connection_lost arrives later: counted once only
    assert len(slots) == 3


def test_a_connection_that_finished_a_request_waits_at_the_back_of_the_line() -> None:
    slots = ConnectionSlots(2)
    first, second = Conn("first"), Conn("second")
    slots.admit(first)
    slots.admit(second)
    slots.busy(first)
    slots.waiting(first)  # its response completed: it has waited least
    slots.admit(Conn("third"))
    assert (first.cut_off, second.cut_off) == (False, True)


def test_when_every_connection_is_busy_a_new_one_is_refused_with_the_limit_named() -> None:
    slots = ConnectionSlots(1, "all 1 (http_max_connections) are serving requests")
    only = Conn("only")
    slots.admit(only)
    slots.busy(only)
    assert not slots.admit(Conn("late"))
    assert (slots.refused, only.cut_off) == (1, False)
    assert "http_max_connections" in slots.refusal
    slots.closed(only)
    assert slots.admit(Conn("next"))
