"""archon.toml `[upstreams.<name>]` overrides layered over shipped and user manifests, and
which timeout wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from archon_gateway.core.errors import SettingsInvalid
from archon_gateway.gateway.live_config.configuration import layered_manifests
from archon_gateway.gateway.settings import load_settings
from archon_gateway.upstreams.manifest import Manifest, load_manifests, manifest_folders


def layered(tmp_path: Path, toml: str) -> dict[str, Manifest]:
    """The shipped manifests plus the user's (<data_dir>/manifests), with `toml` as the
    gateway's archon.toml."""
    config = tmp_path / "archon.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n{toml}')
    settings = load_settings(config, {"manifests_dir": None})
    found = load_manifests(manifest_folders(None, settings.data_dir))
    return {manifest.name: manifest for manifest in layered_manifests(settings, found)}


@pytest.fixture(autouse=True)
def no_manifests_dir_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHON_MANIFESTS_DIR", raising=False)
    monkeypatch.delenv("ARCHON_TOOL_TIMEOUT", raising=False)


def test_overrides_layer_over_a_shipped_manifest_tables_merged_the_rest_replaced(
    tmp_path: Path,
) -> None:
    toml = """
[upstreams.zen]
timeout = 30
tool_timeouts = { chat = 5 }
env = { CUSTOM_MODEL_NAME = "local-llama" }
pass_env = ["OPENAI_API_KEY"]
args = ["--verbose"]

[upstreams.serena]
enabled = false
"""
    manifests = layered(tmp_path, toml)
    zen = manifests["zen"]
    assert zen.command == "pal-mcp-server"  # untouched
    assert zen.timeout_for("chat", 60) == 5
    assert zen.timeout_for("thinkdeep", 60) == 30
    assert zen.env == {"CUSTOM_MODEL_NAME": "local-llama"}
    assert zen.pass_env == ["OPENAI_API_KEY"]
    assert zen.args == ["--verbose"]
    assert manifests["serena"].enabled is False
    assert manifests["context7"].timeout == 60


def test_an_explicit_tool_timeout_beats_shipped_manifests_but_not_user_ones_or_overrides(
    tmp_path: Path,
) -> None:
    user = tmp_path / "data" / "manifests"
    user.mkdir(parents=True)
    (user / "mine.toml").write_text('command = "mine"\ntimeout = 7\n')
    default = layered(tmp_path, "")
    assert default["zen"].timeout_for("chat", 60) == 300  # the shipped suggestion
    explicit = layered(tmp_path, "tool_timeout = 15\n[upstreams.context7]\ntimeout = 45\n")
    assert explicit["zen"].timeout_for("chat", 15) == 15
    assert explicit["context7"].timeout_for("resolve", 15) == 45
    assert explicit["mine"].timeout_for("x", 15) == 7


def test_a_remote_manifests_url_and_headers_can_be_overridden(tmp_path: Path) -> None:
    user = tmp_path / "data" / "manifests"
    user.mkdir(parents=True)
    (user / "linear.toml").write_text(
        'url = "https://127.0.0.1:1/mcp"\nheaders = { "X-Team" = "core" }\n'
    )
    toml = """
[upstreams.linear]
url = "http://127.0.0.1:2/mcp"
headers = { Authorization = "Bearer ${LINEAR_TOKEN}" }
"""
    linear = layered(tmp_path, toml)["linear"]
    assert linear.url == "http://127.0.0.1:2/mcp"
    assert linear.headers == {"X-Team": "core", "Authorization": "Bearer ${LINEAR_TOKEN}"}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[upstreams.zenn]\ntimeout = 3",
            "[upstreams.zenn]: no upstream manifest named 'zenn' (upstreams: codanna, context7,",
        ),
        (
            "[upstreams.zen]\ntimout = 3",
            "[upstreams.zen]: unknown key 'timout' (known: enabled, timeout, tool_timeouts,",
        ),
        ("[upstreams.zen]\ntimeout = -1", "[upstreams.zen]: key 'timeout': Input should be"),
        (
            '[upstreams.zen]\npass_env = ["ARCHON_AUTH_STDIO_TOKEN"]',
            "[upstreams.zen]: field 'pass_env': Value error, ARCHON_AUTH_STDIO_TOKEN belongs",
        ),
        (
            '[upstreams.zen]\nurl = "http://127.0.0.1:1/mcp"',
            "[upstreams.zen]: pass_env cannot be used with url",
        ),
    ],
)
def test_invalid_overrides_are_refused_in_one_line(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(SettingsInvalid) as caught:
        layered(tmp_path, toml)
    said = str(caught.value)
    assert said.startswith(message)
    assert "\n" not in said
