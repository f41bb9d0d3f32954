"""Remote manifests: command or url (exactly one), transports, and headers whose ${VAR}
references are resolved from the environment without ever showing a value."""

from __future__ import annotations

from pathlib import Path

import pytest

from archon_gateway.core.errors import MissingVariable
from archon_gateway.upstreams.manifest import Manifest, load_manifest_file


def problem_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "remote.toml"
    path.write_text(text)
    loaded = load_manifest_file(path)
    assert not isinstance(loaded, Manifest)
    return loaded.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('description = "x"', "set exactly one of command (a stdio server) or url"),
        ('command = "x"\nurl = "http://127.0.0.1:1/mcp"', "set exactly one of command"),
        ('url = "http://127.0.0.1:1/mcp"\nargs = ["a"]', "args cannot be used with url"),
        ('command = "x"\nheaders = { A = "b" }', "headers cannot be used with command"),
        ('url = "ftp://host/mcp"', "field 'url': Value error, must be an http:// or https://"),
        ('url = "http://u:p@host/mcp"', "must not carry credentials; put them in headers"),
        ('url = "http://h/mcp"\ntransport = "ws"', "field 'transport': Input should be"),
        (
            'url = "http://h/mcp"\nheaders = { A = "${ARCHON_AUTH_STDIO_TOKEN}" }',
            "header A uses ARCHON_AUTH_STDIO_TOKEN, which belongs to the gateway",
        ),
    ],
)
def test_invalid_remote_manifests_are_refused_in_one_line(
    tmp_path: Path, text: str, reason: str
) -> None:
    said = problem_of(tmp_path, text)
    assert reason in said
    assert "\n" not in said


def test_a_url_manifest_defaults_to_streamable_http_and_resolves_header_variables() -> None:
    manifest = Manifest(
        name="linear",
        url="https://127.0.0.1:1/mcp",
        headers={"Authorization": "Bearer ${LINEAR_TOKEN}", "X-Team": "core-${TEAM}-x"},
    )
    assert manifest.is_remote
    assert manifest.remote_transport == "streamable-http"
    env = {"LINEAR_TOKEN": "lin-secret", "TEAM": "blue"}
    assert manifest.resolve_headers(env) == {
        "Authorization": "Bearer lin-secret",
        "X-Team": "core-blue-x",
    }
    with pytest.raises(MissingVariable) as caught:
        manifest.resolve_headers({"TEAM": "blue"})
    assert str(caught.value) == (
        "header Authorization needs environment variable LINEAR_TOKEN, which is not set"
    )
