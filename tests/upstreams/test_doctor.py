"""`archon-gateway doctor` as a user runs it: real upstream processes, real exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from archon_gateway.gateway.doctor import diagnose
from archon_gateway.upstreams.manifest import builtin_manifests_dir, load_manifests
from tests.support import gateway_command
from tests.upstreams.conftest import WriteManifest

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

HERE = Path(__file__).parent
SECRET = "sekret-value-0123456789"


async def run_doctor(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [gateway_command(), "doctor", *args], env=env, cwd=cwd, check=False
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def doctor_json(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, dict[str, Any]]:
    code, stdout, _ = await run_doctor(env, cwd, "--json", *args)
    document: dict[str, Any] = json.loads(stdout)  # nothing but the JSON on stdout
    return code, document


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in document["upstreams"]}


async def test_doctor_reports_each_kind_of_upstream_with_a_hint_and_exits_1(
    gateway_env: dict[str, str],
    tmp_path: Path,
    manifests_dir: Path,
    write_manifest: WriteManifest,
) -> None:
    write_manifest("toolbox", allow_tools=["echo", "add"], env={"API_KEY": SECRET})
    write_manifest("dead", args=[str(HERE / "exit_at_start.py")])
    write_manifest("ghost", toolbox=False, command="archon-no-such-command")
    write_manifest(
        "missing", toolbox=False, command="archon-missing", install_hint="pipx install missing"
    )
    write_manifest("off", toolbox=False, command="archon-no-such-command", enabled=False)
    (manifests_dir / "broken.toml").write_text("name = [\n")

    code, document = await doctor_json(gateway_env, tmp_path)

    assert code == 1
    assert document["ok"] is False
    rows = by_name(document)
    assert list(rows) == ["broken", "dead", "ghost", "missing", "off", "toolbox"]

    toolbox = rows["toolbox"]
    assert toolbox["state"] == "ready"
    assert toolbox["ok"] is True
    assert toolbox["command_found"] == sys.executable
    assert toolbox["tools"] == 2  # what the gateway would expose: allow_tools applies
    assert toolbox["startup_s"] > 0
    assert toolbox["ping_ms"] > 0
    assert toolbox["error"] is None

    dead = rows["dead"]
    assert dead["state"] == "failed"
    assert "exited with code 3 at start" in dead["error"]
    assert "fatal: missing configuration file toolbox.yaml" in dead["error"]
    log_file = Path(gateway_env["ARCHON_DATA_DIR"]) / "logs" / "upstreams" / "dead.log"
    assert dead["hint"] == f"see its log {log_file}"

    ghost = rows["ghost"]
    assert ghost["state"] == "not_found"
    assert ghost["command_found"] is None
    assert ghost["error"] == "command not found: archon-no-such-command"
    assert ghost["hint"] == (
        f"install archon-no-such-command or fix `command` in {manifests_dir / 'ghost.toml'}"
    )
    assert rows["missing"]["hint"] == "pipx install missing"

    off = rows["off"]
    assert (off["state"], off["enabled"], off["ok"], off["error"]) == (
        "disabled",
        False,
        True,
        None,
    )

    broken = rows["broken"]
    assert broken["state"] == "failed"
    assert broken["error"].startswith("invalid manifest: not valid TOML")
    assert broken["hint"] == f"fix or remove {manifests_dir / 'broken.toml'}"


async def test_doctor_exits_0_when_every_enabled_upstream_is_ready(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox", env={"API_KEY": SECRET})
    write_manifest("off", toolbox=False, command="archon-no-such-command", enabled=False)

    code, stdout, stderr = await run_doctor(gateway_env, tmp_path, "--json")

    assert code == 0
    document = json.loads(stdout)
    assert document["ok"] is True
    assert {name: row["state"] for name, row in by_name(document).items()} == {
        "off": "disabled",
        "toolbox": "ready",
    }
    assert SECRET not in stdout + stderr  # names and paths only, never env values


async def test_doctor_table_shows_every_upstream_and_a_summary(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox")
    write_manifest("dead", args=[str(HERE / "exit_at_start.py")])
    write_manifest("off", toolbox=False, command="archon-no-such-command", enabled=False)

    code, stdout, stderr = await run_doctor(gateway_env, tmp_path)

    assert code == 1
    lines = {line.split()[0]: line for line in stdout.splitlines() if line.strip()}
    assert "ready" in lines["toolbox"]
    assert "failed" in lines["dead"]
    assert "exited with code 3" in stdout
    assert "disabled" in lines["off"]
    assert "hint: see its log" in stdout
    assert stdout.strip().splitlines()[-1] == "1 ready, 1 failing, 1 disabled"
    assert stderr == ""


async def test_an_upstream_that_does_not_start_in_time_gets_the_startup_timeout_hint(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    # Alive (exits when stdin closes) but never answers initialize.
    path = write_manifest("mute", args=["-c", "import sys; sys.stdin.read()"], startup_timeout=0.5)

    code, document = await doctor_json(gateway_env, tmp_path)

    assert code == 1
    mute = by_name(document)["mute"]
    assert mute["state"] == "failed"
    assert "did not answer initialize within 0.5 s" in mute["error"]
    assert mute["hint"] == f"raise startup_timeout in its manifest ({path})"


async def test_only_checks_the_named_upstreams(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox")
    write_manifest("dead", args=[str(HERE / "exit_at_start.py")])

    code, document = await doctor_json(gateway_env, tmp_path, "--only", "toolbox")
    assert code == 0
    assert list(by_name(document)) == ["toolbox"]

    code, stdout, stderr = await run_doctor(gateway_env, tmp_path, "--only", "nope")
    assert code == 2
    assert stdout == ""
    assert stderr.strip() == (
        "archon-gateway: error: no upstream manifest named nope (known: dead, toolbox)"
    )


async def test_bad_settings_exit_2(gateway_env: dict[str, str], tmp_path: Path) -> None:
    env = {**gateway_env, "ARCHON_TOOL_TIMEOUT": "-1"}
    code, stdout, stderr = await run_doctor(env, tmp_path, "--json")
    assert code == 2
    assert stdout == ""
    assert "invalid setting 'tool_timeout'" in stderr


async def test_shipped_upstreams_that_are_not_installed_are_listed_but_do_not_fail(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    # The shipped manifests plus the user's, with a PATH on which none of them exists.
    env = {key: value for key, value in gateway_env.items() if key != "ARCHON_MANIFESTS_DIR"}
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env["PATH"] = str(empty_bin)
    shipped = {manifest.name for manifest in load_manifests([builtin_manifests_dir()]).manifests}

    code, document = await doctor_json(env, tmp_path)

    assert code == 0
    rows = by_name(document)
    assert set(rows) == shipped
    for row in rows.values():
        assert (row["state"], row["shipped"], row["ok"]) == ("not_found", True, True)
        assert row["hint"]  # each shipped manifest says how to install its server

    # The user's own manifest with a missing command is a mistake worth failing for.
    user_dir = Path(env["ARCHON_DATA_DIR"]) / "manifests"
    user_dir.mkdir(parents=True)
    (user_dir / "mine.toml").write_text('command = "archon-no-such-command"\n')
    code, document = await doctor_json(env, tmp_path)
    assert code == 1
    mine = by_name(document)["mine"]
    assert (mine["state"], mine["shipped"], mine["ok"]) == ("not_found", False, False)

    # Unless it says it is an offer, as the shipped ones do (and as /health counts it).
    (user_dir / "mine.toml").write_text('command = "archon-no-such-command"\noptional = true\n')
    code, document = await doctor_json(env, tmp_path)
    assert code == 0
    assert by_name(document)["mine"]["ok"] is True


async def test_an_upstream_that_never_answers_ping_fails(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("wedged", args=[str(HERE / "garbage_server.py")], env={"GARBAGE_PING": "ignore"})
    write_manifest("junk", args=[str(HERE / "garbage_server.py")])
    with anyio.fail_after(30):
        reports = await diagnose(
            load_manifests([manifests_dir]),
            gateway_env={"PATH": ""},
            log_dir=tmp_path / "logs",
            concurrency=1,
            ping_timeout=0.3,
        )
    junk, wedged = reports
    assert (junk.name, junk.state, junk.tools) == ("junk", "ready", 1)
    assert (wedged.name, wedged.state, wedged.tools) == ("wedged", "failed", 1)
    assert wedged.error == "upstream 'wedged' did not answer ping within 0.3 s"
    assert wedged.hint == f"see its log {tmp_path / 'logs' / 'wedged.log'}"
    assert wedged.ping_ms is None
