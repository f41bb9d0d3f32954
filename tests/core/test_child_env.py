"""The environment every child process gets, as a pure function."""

from __future__ import annotations

from archon_gateway.core.child_env import child_env

PARENT = {
    "PATH": "/usr/bin",
    "HOME": "/home/me",
    "SERVICE_AUTH_TOKEN": "svc",
    "ARCHON_HOOK_SECRETS": '{"gh": "x"}',
    "API_KEY": "k",
    "OTHER": "o",
}


def test_a_child_gets_the_base_names_and_nothing_else_by_default() -> None:
    assert child_env(PARENT) == {"PATH": "/usr/bin", "HOME": "/home/me"}


def test_the_gateways_own_names_are_never_passed_on_even_when_asked_for() -> None:
    asked = ["API_KEY", "SERVICE_AUTH_TOKEN", "ARCHON_HOOK_SECRETS", "UNSET"]
    env = child_env(PARENT, pass_names=asked, values={"FIXED": "1"})
    assert env == {"PATH": "/usr/bin", "HOME": "/home/me", "API_KEY": "k", "FIXED": "1"}
