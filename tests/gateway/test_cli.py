"""The command line as a user meets it: version, usage errors, where logs go."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest

from archon_gateway.core.version import __version__
from tests.support import RawStdioPeer, gateway_command

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


async def test_version_prints_the_package_version(gateway_env: dict[str, str]) -> None:
    with anyio.fail_after(30):
        done = await anyio.run_process([gateway_command(), "version"], env=gateway_env)
    assert done.stdout.decode().strip() == __version__


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["serve", "--transport", "tcp"], 'Invalid value "tcp" for --transport'),
        (["serve", "--port", "eighty"], "Invalid value for --port"),
        (["serve", "--port", "99999"], "invalid setting 'port' (ARCHON_PORT) = 99999"),
        (["serv"], 'Unknown command "serv"'),
    ],
)
async def test_bad_command_line_exits_2_with_one_line(
    gateway_env: dict[str, str], tmp_path: Path, args: list[str], expected: str
) -> None:
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [gateway_command(), *args], env=gateway_env, cwd=tmp_path, check=False
        )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("archon-gateway: error: ")
    assert expected in lines[0]


async def test_log_file_setting_sends_logs_there_and_not_to_stderr(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    log_file = tmp_path / "logs" / "gateway.log"
    env = {**gateway_env, "ARCHON_LOG_FILE": str(log_file), "ARCHON_TYPO_SETTING": "1"}
    with anyio.fail_after(30):
        process = await anyio.open_process(
            [gateway_command(), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        async with process:
            peer = RawStdioPeer(process)
            await peer.initialize()
            assert process.stdin is not None
            await process.stdin.aclose()
            assert await process.wait() == 0
            assert process.stderr is not None
            stderr = b"".join([chunk async for chunk in process.stderr])
    assert stderr == b""
    logged = log_file.read_text()
    assert "serving MCP over stdio" in logged
    assert "ignoring ARCHON_TYPO_SETTING: no such setting" in logged


async def test_data_dir_is_created_at_start(gateway_env: dict[str, str], tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    env = {**gateway_env, "ARCHON_DATA_DIR": str(data_dir)}
    with anyio.fail_after(30):
        await anyio.run_process([gateway_command(), "serve"], env=env, cwd=tmp_path)
    assert data_dir.is_dir()


@pytest.mark.parametrize(("redirect", "fd"), [("0<&-", 0), (">&-", 1)])
async def test_stdio_with_a_closed_standard_stream_fails_with_a_clear_message(
    gateway_env: dict[str, str], tmp_path: Path, redirect: str, fd: int
) -> None:
    with anyio.fail_after(30):
        done = await anyio.run_process(
            ["sh", "-c", f'exec "{gateway_command()}" serve {redirect}'],
            env=gateway_env,
            cwd=tmp_path,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr.decode().strip() == (
        "archon-gateway: error: the stdio transport needs an open stdin and stdout, "
        f"but fd {fd} is closed; for a service use --transport http"
    )


@pytest.mark.parametrize("command", [["serve"], ["import-config", "servers.json"]])
async def test_malformed_json_in_a_json_valued_setting_is_one_line_naming_it_without_its_value(
    gateway_env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    secret = "tok-3f9a-never-shown"
    env = {**gateway_env, "ARCHON_SERVICE_TOKENS": "{bad " + secret}
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [gateway_command(), *command], env=env, cwd=tmp_path, check=False
        )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert lines == [
        "archon-gateway: error: invalid setting 'service_tokens' (ARCHON_SERVICE_TOKENS): "
        "not valid JSON (Expecting property name enclosed in double quotes at character 1)"
    ]
    assert secret not in done.stdout.decode() + done.stderr.decode()
