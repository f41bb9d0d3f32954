"""The parts of a reload that need no processes: which settings need a restart, reading
and validating the whole configuration, the manifest files `add` and `remove` write, and a
profile change applied to a running gateway (in memory)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest
from fastmcp import Client

from archon_gateway.core.errors import ManifestInvalid, NotFound
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.live_config.configuration import (
    ConfigSource,
    Configuration,
    read_configuration,
)
from archon_gateway.gateway.live_config.settings_diff import (
    changed_settings,
    needing_restart,
    running_settings,
)
from archon_gateway.gateway.settings import Settings
from archon_gateway.upstreams.manifest import load_manifest_file
from archon_gateway.upstreams.manifest_writer import write_manifest
from archon_gateway.upstreams.user_manifests import new_manifest, remove_manifest

pytestmark = pytest.mark.anyio
TOOLBOX = Path(__file__).resolve().parents[1] / "upstreams" / "toolbox_server.py"


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, manifests_dir=tmp_path / "manifests", **values)  # type: ignore[arg-type]


def test_transport_port_and_data_dir_need_a_restart_timeouts_and_profiles_do_not(
    tmp_path: Path,
) -> None:
    old = settings(tmp_path)
    new = Settings(
        data_dir=tmp_path / "elsewhere",
        manifests_dir=tmp_path / "manifests",
        transport="http",
        port=9999,
        tool_timeout=5,
        profiles={"lean": {"exclude": ["code_*"]}},
        breaker_fail_max=2,
    )
    changed = changed_settings(old, new)
    assert needing_restart(changed) == ["transport", "port", "data_dir"]
    running = running_settings(old, new)
    assert (running.port, running.tool_timeout, running.breaker_fail_max) == (8787, 5, 2)
    assert "lean" in running.profiles
    # The change that needs a restart is named again on the next reload, until it gets one.
    assert needing_restart(changed_settings(running, new)) == ["transport", "port", "data_dir"]


def test_a_secret_setting_that_changed_is_named_not_shown(tmp_path: Path) -> None:
    old = settings(tmp_path, service_auth_token="a" * 32)
    new = settings(tmp_path, service_auth_token="b" * 32)
    assert needing_restart(changed_settings(old, new)) == ["service_auth_token"]


def test_reading_the_configuration_reports_every_problem_or_gives_all_of_it(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "good.toml").write_text('command = "server"\n')
    (folder / "typo.toml").write_text('command = "server"\ntimeot = 3\n')
    bad = settings(tmp_path, upstreams={"ghost": {"timeout": 2}})
    problems = read_configuration(lambda: bad)
    assert isinstance(problems, list)
    assert len(problems) == 2
    assert "typo.toml: unknown field 'timeot'" in problems[0]
    assert "[upstreams.ghost]: no upstream manifest named 'ghost'" in problems[1]

    (folder / "typo.toml").unlink()
    good = settings(tmp_path, upstreams={"good": {"timeout": 2}})
    found = read_configuration(lambda: good)
    assert isinstance(found, Configuration)
    assert found.manifests["good"].timeout == 2


def test_added_manifests_round_trip_and_bad_input_is_named_without_its_value(
    tmp_path: Path,
) -> None:
    stdio = new_manifest(
        "tb", command=["python", "server.py", "--x"], env=["TOKEN=s3cret"], folder=tmp_path
    )
    path = write_manifest(tmp_path, stdio)
    assert load_manifest_file(path) == stdio
    assert path.stat().st_mode & 0o077 == 0  # env values may be secrets
    with pytest.raises(FileExistsError):
        write_manifest(tmp_path, stdio)
    remote = new_manifest(
        "web", url="https://h/mcp", headers=["Authorization: Bearer ${TOKEN}"], folder=tmp_path
    )
    assert remote.headers == {"Authorization": "Bearer ${TOKEN}"}

    with pytest.raises(ManifestInvalid, match=r"env 'TOKEN' is not in the form NAME=VALUE"):
        new_manifest("tb", command=["x"], env=["TOKEN"], folder=tmp_path)
    with pytest.raises(ManifestInvalid, match="either a command"):
        new_manifest("tb", command=["x"], url="https://h/mcp", folder=tmp_path)
    with pytest.raises(ManifestInvalid, match="field 'name'") as caught:
        new_manifest("no spaces", command=["x"], env=["K=s3cret"], folder=tmp_path)
    assert "s3cret" not in str(caught.value)


def test_removing_names_what_there_is_and_refuses_shipped_manifests(tmp_path: Path) -> None:
    write_manifest(tmp_path, new_manifest("tb", command=["x"], folder=tmp_path))
    with pytest.raises(NotFound, match=r"no manifest named 'nope' .*\(there: tb\)"):
        remove_manifest(tmp_path, "nope")
    with pytest.raises(NotFound, match=r"enabled = false.*\[upstreams.zen\]"):
        remove_manifest(tmp_path, "zen", shipped=["zen"])
    assert not remove_manifest(tmp_path, "tb").exists()


async def test_a_profile_change_applies_to_the_running_gateway(tmp_path: Path) -> None:
    lean = settings(tmp_path, profiles={"default": {"exclude": ["code_*"]}})
    reading = [lean]
    server = build_gateway(lean, source=ConfigSource(lambda: reading[-1]))
    async with Client(server) as client:
        assert not [
            tool.name for tool in await client.list_tools() if tool.name.startswith("code_")
        ]
        reading.append(settings(tmp_path))
        answer = (await client.call_tool("gateway_reload", {})).structured_content or {}
        assert answer == {
            "applied": True,
            "changes": ["profiles changed: default"],
            "problems": [],
            "needs_restart": [],
        }
        assert [tool.name for tool in await client.list_tools() if tool.name.startswith("code_")]


@pytest.mark.processes
async def test_a_reload_starts_an_upstream_whose_command_was_installed_since(
    tmp_path: Path,
) -> None:
    """Installing a server changes no file the gateway watches: `gateway_reload` (or
    SIGHUP) finds its command and starts it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "late.toml").write_text('command = "late-toolbox"\n')
    environ = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    server = build_gateway(settings(tmp_path), environ=environ)
    with anyio.fail_after(60):
        async with Client(server) as client:
            info = (await client.call_tool("gateway_info", {})).structured_content or {}
            assert info["upstreams"]["late"]["state"] == "disabled"
            script = bin_dir / "late-toolbox"
            script.write_text(f"#!/bin/sh\nexec {sys.executable} {TOOLBOX}\n")
            script.chmod(0o755)
            answer = (await client.call_tool("gateway_reload", {})).structured_content or {}
            assert answer["changes"] == ["started upstream late (its command is installed now)"]
            echoed = await client.call_tool("late_echo", {"text": "here now"})
    assert echoed.data == "here now"
