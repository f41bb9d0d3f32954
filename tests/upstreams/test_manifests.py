"""Manifests: validation messages, shipped manifests, naming, and import-config."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from archon_gateway.upstreams.manifest import (
    Manifest,
    builtin_manifests_dir,
    load_manifest_file,
    load_manifests,
)
from archon_gateway.upstreams.naming import MAX_TOOL_NAME, namespaced
from tests.support import gateway_command


def test_shipped_manifests_cover_the_known_upstreams_and_validate() -> None:
    found = load_manifests([builtin_manifests_dir()])
    assert found.problems == []
    by_name = {manifest.name: manifest for manifest in found.manifests}
    assert set(by_name) == {"zen", "codanna", "serena", "context7", "sequential-thinking"}
    assert by_name["zen"].command == "pal-mcp-server"
    assert by_name["context7"].command == "context7-mcp"
    assert by_name["sequential-thinking"].command == "mcp-server-sequential-thinking"
    assert by_name["serena"].args[0] == "start-mcp-server"
    # serena 2.1 renamed the deprecated `ide-assistant` context.
    assert by_name["serena"].args[1:3] == ["--context", "claude-code"]
    assert all(manifest.install_hint for manifest in found.manifests)
    # zen's API keys are named, never inherited wholesale.
    assert "OPENAI_API_KEY" in by_name["zen"].pass_env


def test_invalid_manifest_reports_file_field_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('command = "x"\ntimeout = -1\nallow_tools = "echo"\n')
    problem = load_manifest_file(bad)
    assert not isinstance(problem, Manifest)
    assert str(problem).startswith(f"{bad}: ")
    assert "field 'timeout': Input should be greater than 0" in str(problem)
    assert "field 'allow_tools'" in str(problem)

    broken = tmp_path / "broken.toml"
    broken.write_text("command = [unclosed\n")
    assert "not valid TOML" in str(load_manifest_file(broken))


def test_manifest_may_not_pass_the_gateways_own_secrets(tmp_path: Path) -> None:
    path = tmp_path / "leaky.toml"
    path.write_text('command = "x"\npass_env = ["SERVICE_AUTH_TOKEN", "ARCHON_PORT", "OK"]\n')
    problem = str(load_manifest_file(path))
    assert "SERVICE_AUTH_TOKEN, ARCHON_PORT belongs to the gateway" in problem


def test_user_manifest_replaces_a_shipped_one_of_the_same_name(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('name = "context7"\ncommand = "my-context7"\n')
    found = load_manifests([builtin_manifests_dir(), tmp_path])
    context7 = [manifest for manifest in found.manifests if manifest.name == "context7"]
    assert [manifest.command for manifest in context7] == ["my-context7"]


def test_timeouts_resolve_per_tool_then_manifest_then_gateway_default() -> None:
    manifest = Manifest(name="x", command="x", timeout=30, tool_timeouts={"slow": 300})
    assert manifest.timeout_for("slow", 60) == 300
    assert manifest.timeout_for("fast", 60) == 30
    assert Manifest(name="y", command="y").timeout_for("any", 60) == 60


def test_allow_and_deny_lists_choose_the_exposed_tools() -> None:
    manifest = Manifest(name="x", command="x", allow_tools=["a", "b"], deny_tools=["b"])
    assert [tool for tool in ("a", "b", "c") if manifest.exposes(tool)] == ["a"]


def test_process_env_is_minimal_plus_declared_names() -> None:
    manifest = Manifest(name="x", command="x", pass_env=["API_KEY"], env={"MODE": "test"})
    gateway_env = {"PATH": "/bin", "HOME": "/home/u", "API_KEY": "k", "OTHER": "no"}
    assert manifest.process_env(gateway_env) == {
        "PATH": "/bin",
        "HOME": "/home/u",
        "API_KEY": "k",
        "MODE": "test",
    }


def test_long_tool_names_are_shortened_deterministically_and_stay_distinct() -> None:
    assert namespaced("zen", "chat") == "zen_chat"
    long_a = namespaced("sequential-thinking", "x" * 80 + "a")
    long_b = namespaced("sequential-thinking", "x" * 80 + "b")
    assert len(long_a) == len(long_b) == MAX_TOOL_NAME
    assert long_a != long_b
    assert long_a == namespaced("sequential-thinking", "x" * 80 + "a")
    assert long_a.startswith("sequential-thinking_xxx")


def import_config(config: Path, into: Path) -> subprocess.CompletedProcess[str]:
    """`archon-gateway import-config CONFIG --into INTO`, run as the installed command."""
    return subprocess.run(
        [gateway_command(), "import-config", str(config), "--into", str(into)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.processes
def test_import_config_writes_stdio_manifests_and_reports_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "context7": {
                        "command": "context7-mcp",
                        "args": ["--transport", "stdio"],
                        "env": {"CONTEXT7_API_KEY": "ctx-key"},
                    },
                    "my tools!": {"command": "python", "args": ["-m", "my_tools"]},
                    "remote": {"url": "http://127.0.0.1:9/mcp"},
                    "linear": {
                        "type": "http",
                        "url": "http://127.0.0.1:9/linear/mcp",
                        "headers": {"Authorization": "Bearer ${env:LINEAR_TOKEN}"},
                    },
                    "old-sse": {"url": "http://127.0.0.1:9/sse"},
                    "vscode-sse": {"type": "sse", "url": "http://127.0.0.1:9/events"},
                    "asks": {
                        "type": "http",
                        "url": "http://127.0.0.1:9/mcp",
                        "headers": {"X-Key": "${input:key}"},
                    },
                    "broken": {"args": ["x"]},
                }
            }
        )
    )
    into = tmp_path / "manifests"
    done = import_config(config, into)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"context7: wrote {into / 'context7.toml'}" in lines
    assert f"my tools!: wrote {into / 'my-tools.toml'}" in lines
    assert f"remote: wrote {into / 'remote.toml'}" in lines
    assert f"linear: wrote {into / 'linear.toml'}" in lines
    assert lines[-2].startswith("asks: skipped: header X-Key asks the user for input")
    assert (
        "broken: skipped: set exactly one of command (a stdio server) or url (a remote server)"
        in lines
    )
    assert "ctx-key" not in done.stdout + done.stderr

    found = load_manifests([into])
    assert found.problems == []
    context7 = {manifest.name: manifest for manifest in found.manifests}["context7"]
    assert context7.args == ["--transport", "stdio"]
    assert context7.env == {"CONTEXT7_API_KEY": "ctx-key"}
    remote = {manifest.name: manifest for manifest in found.manifests if manifest.is_remote}
    assert {name: (m.url, m.remote_transport) for name, m in remote.items()} == {
        "remote": ("http://127.0.0.1:9/mcp", "streamable-http"),
        "linear": ("http://127.0.0.1:9/linear/mcp", "streamable-http"),
        "old-sse": ("http://127.0.0.1:9/sse", "sse"),
        "vscode-sse": ("http://127.0.0.1:9/events", "sse"),
    }
    assert remote["linear"].headers == {"Authorization": "Bearer ${LINEAR_TOKEN}"}

    again = import_config(config, into)
    assert "context7: skipped:" in again.stdout
    assert "exists (--force)" in again.stdout


@pytest.mark.processes
def test_import_config_writes_owner_only_manifests_and_warns_of_each_unresolvable_placeholder(
    tmp_path: Path,
) -> None:
    config = tmp_path / "mcp.json"
    entry = {
        "command": "${workspaceFolder}/bin/server",
        "args": ["--root", "${workspaceFolder}", "--home=${userHome}"],
        "env": {"API_KEY": "sk-live-4be1", "CONFIG": "${workspaceFolder}/.cfg"},
    }
    config.write_text(json.dumps({"mcpServers": {"project": entry, "plain": {"command": "x"}}}))
    into = tmp_path / "manifests"
    done = import_config(config, into)
    assert done.returncode == 0, done.stderr
    for name in ("project", "plain"):
        assert (into / f"{name}.toml").stat().st_mode & 0o777 == 0o600
    suffix = (
        "cannot be resolved by the gateway and is passed on as written; "
        "replace it with a real value"
    )
    assert done.stderr.splitlines() == [
        f"archon-gateway: warning: project: ${{{name}}} in {where} {suffix}"
        for name, where in (
            ("workspaceFolder", "command"),
            ("workspaceFolder", "args"),
            ("userHome", "args"),
            ("workspaceFolder", "env CONFIG"),
        )
    ]
    assert "sk-live-4be1" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"servers": 3}', 'no "mcpServers" object found'),
    ],
)
@pytest.mark.processes
def test_import_config_rejects_unusable_files_in_one_line(
    tmp_path: Path, content: str, message: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(content)
    done = import_config(config, tmp_path / "m")
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
