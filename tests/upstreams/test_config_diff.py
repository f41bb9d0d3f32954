"""The pure comparison of two manifest sets: what a reload adds, removes, restarts and
updates in place (and that it names fields, never values)."""

from __future__ import annotations

from typing import Any

from archon_gateway.upstreams.config_diff import RESTART_FIELDS, diff_manifests
from archon_gateway.upstreams.manifest import Manifest


def stdio(name: str, **fields: Any) -> Manifest:
    return Manifest(name=name, command="server", **fields)


def test_identical_sets_differ_in_nothing() -> None:
    same = {"a": stdio("a", args=["x"]), "b": Manifest(name="b", url="http://h/mcp")}
    diff = diff_manifests(same, dict(same))
    assert not diff
    assert diff.lines() == []


def test_added_and_removed_upstreams_are_named_in_order() -> None:
    diff = diff_manifests({"a": stdio("a"), "c": stdio("c")}, {"b": stdio("b"), "d": stdio("d")})
    assert (diff.added, diff.removed) == (("b", "d"), ("a", "c"))
    assert diff.lines() == [
        "added upstream b",
        "added upstream d",
        "removed upstream a",
        "removed upstream c",
    ]


def test_how_an_upstream_is_started_or_reached_changing_needs_a_restart() -> None:
    old = {
        "cmd": stdio("cmd"),
        "args": stdio("args"),
        "env": stdio("env", env={"K": "old-secret"}),
        "url": Manifest(name="url", url="http://h/mcp"),
        "off": stdio("off"),
    }
    new = {
        "cmd": Manifest(name="cmd", command="other"),
        "args": stdio("args", args=["--flag"]),
        "env": stdio("env", env={"K": "new-secret"}),
        "url": Manifest(name="url", url="http://h/other"),
        "off": stdio("off", enabled=False),
    }
    diff = diff_manifests(old, new)
    assert diff.restarted == ("args", "cmd", "env", "off", "url")
    assert diff.updated == ()
    assert "restarted upstream env (env changed)" in diff.lines()
    assert not any("secret" in line for line in diff.lines())  # names, never values


def test_what_is_read_per_call_or_listing_is_updated_in_place() -> None:
    old = {"a": stdio("a"), "b": stdio("b"), "c": stdio("c")}
    new = {
        "a": stdio("a", timeout=5, tool_timeouts={"slow": 1}),
        "b": stdio("b", allow_tools=["echo"], deny_tools=["hang"]),
        "c": stdio("c", roots=["/tmp"], idle_minutes=2),
    }
    diff = diff_manifests(old, new)
    assert diff.updated == ("a", "b", "c")
    assert diff.restarted == ()
    assert diff.fields["a"] == ("timeout", "tool_timeouts")
    assert diff.lines()[0] == "updated upstream a in place (timeout, tool_timeouts changed)"


def test_a_restart_field_wins_over_in_place_changes_in_the_same_edit() -> None:
    diff = diff_manifests({"a": stdio("a")}, {"a": stdio("a", timeout=5, args=["x"])})
    assert diff.restarted == ("a",)
    assert diff.fields["a"] == ("args", "timeout")


def test_every_restart_field_is_a_manifest_field() -> None:
    assert set(RESTART_FIELDS) <= set(Manifest.model_fields)


def test_an_unchanged_upstream_whose_command_is_installed_now_is_started() -> None:
    same = {"late": stdio("late"), "other": stdio("other")}
    diff = diff_manifests(same, dict(same), installed=["late"])
    assert diff.restarted == ("late",)
    assert diff.lines() == ["started upstream late (its command is installed now)"]
