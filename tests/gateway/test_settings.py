"""Settings: precedence, the config file, and one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from archon_gateway.core.errors import SettingsInvalid
from archon_gateway.gateway.settings import Settings, load_settings, unknown_env_settings
from tests.support import gateway_command


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ARCHON_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_serve_stdio_on_loopback() -> None:
    settings = load_settings()
    assert settings.transport == "stdio"
    assert settings.transports == ["stdio"]
    assert settings.host == "127.0.0.1"
    assert settings.port == 8787
    assert settings.http_path == "/mcp"
    assert settings.data_dir.name == "archon-gateway"


def test_flags_beat_env_and_env_beats_the_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "custom.toml"
    config.write_text('transport = "http"\nport = 9001\nhost = "::1"\nlog_level = "debug"\n')
    monkeypatch.setenv("ARCHON_PORT", "9002")
    monkeypatch.setenv("ARCHON_HOST", "127.0.0.2")
    settings = load_settings(config, {"host": "127.0.0.3", "transport": None})
    assert settings.host == "127.0.0.3"  # flag
    assert settings.port == 9002  # env
    assert settings.transport == "http"  # file
    assert settings.log_level == "debug"  # file


def test_archon_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "archon.toml").write_text('transport = "Both"\n')
    assert load_settings(cwd=tmp_path).transports == ["stdio", "http"]


def test_invalid_transport_names_the_field_and_the_accepted_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARCHON_TRANSPORT", "tcp")
    with pytest.raises(SettingsInvalid) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert "'transport' (ARCHON_TRANSPORT) = 'tcp'" in message
    assert "'stdio', 'http' or 'both'" in message


def test_unknown_key_in_config_file_is_reported_with_the_file(tmp_path: Path) -> None:
    config = tmp_path / "archon.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(SettingsInvalid, match=r"unknown setting 'prot' in .*archon\.toml; known"):
        load_settings(config)


def test_missing_and_broken_config_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsInvalid, match="does not exist"):
        load_settings(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("transport = \n")
    with pytest.raises(SettingsInvalid, match="is not valid TOML"):
        load_settings(broken)


def test_unknown_archon_variables_are_found_for_a_warning() -> None:
    env = {"ARCHON_PROT": "1", "ARCHON_PORT": "1", "PATH": "/bin"}
    assert unknown_env_settings(env) == ["ARCHON_PROT"]
    assert set(Settings.model_fields) >= {"port", "transport", "data_dir"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ARCHON_PORT", "abc", "invalid setting 'port' (ARCHON_PORT) = 'abc'"),
        ("ARCHON_PORT", "70000", "less than or equal to 65535"),
        ("ARCHON_LOG_LEVEL", "loud", "'debug', 'info', 'warning', 'error' or 'critical'"),
    ],
)
@pytest.mark.processes
async def test_invalid_env_setting_exits_2_with_one_line(
    gateway_env: dict[str, str], tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [gateway_command(), "serve"],
            env={**gateway_env, variable: value},
            cwd=tmp_path,
            check=False,
        )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("archon-gateway: error: ")
    assert expected in lines[0]
    assert done.stdout == b""
