"""The local admin token file: written once, private, reused; a file that cannot be a token
is refused naming the file, never its content; the CLI sends it to local gateways only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from archon_gateway.core.errors import SettingsInvalid
from archon_gateway.gateway.auth.admin_token import (
    admin_token_path,
    ensure_admin_token,
    read_admin_token,
)
from archon_gateway.gateway.cli import _admin_credential
from archon_gateway.gateway.settings import Settings


def test_the_admin_token_is_written_once_readable_only_by_its_owner_and_reused(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    first = ensure_admin_token(data_dir)
    path = admin_token_path(data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.get_secret_value()) >= 40
    assert ensure_admin_token(data_dir).get_secret_value() == first.get_secret_value()
    assert sorted(p.name for p in data_dir.iterdir()) == ["admin-token"]  # no temporary left
    assert ensure_admin_token(tmp_path / "other").get_secret_value() != first.get_secret_value()


def test_no_file_means_no_token(tmp_path: Path) -> None:
    assert read_admin_token(tmp_path / "admin-token") is None


@pytest.mark.parametrize("content", [b"", b"sh0rt\n", b"x" * 5000, b"q9z-with\x00-a-nul"])
def test_a_file_that_cannot_be_a_token_is_refused_naming_the_file_not_its_content(
    tmp_path: Path, content: bytes
) -> None:
    path = admin_token_path(tmp_path)
    path.write_bytes(content)
    with pytest.raises(SettingsInvalid) as refused:
        ensure_admin_token(tmp_path)
    message = str(refused.value)
    assert str(path) in message
    assert "delete it and restart the gateway" in message
    assert "\n" not in message
    if content:
        assert content.decode(errors="replace").strip()[:5] not in message


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("http://127.0.0.1:8787/mcp", True),
        ("http://localhost:8787/mcp", True),
        ("http://[::1]:8787/mcp", True),
        ("http://gateway.example.test:8787/mcp", False),
        ("http://10.1.2.3:8787/mcp", False),
    ],
)
def test_the_cli_sends_the_local_admin_token_only_to_a_gateway_on_this_machine(
    tmp_path: Path, url: str, sent: bool
) -> None:
    token = ensure_admin_token(tmp_path).get_secret_value()
    settings = Settings(data_dir=tmp_path, service_auth_token=None)
    assert _admin_credential(settings, url) == (token if sent else None)
