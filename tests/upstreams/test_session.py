"""One upstream session over a real misbehaving process, in this process: how its death
reaches waiting calls, and where its stderr goes."""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import anyio
import pytest

from archon_gateway.core.errors import (
    Unavailable,
    UpstreamStartTimeout,
    UpstreamUnavailable,
)
from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.process import upstream_process
from archon_gateway.upstreams.session import UpstreamSession, open_session
from archon_gateway.upstreams.stderr_log import StderrLog
from tests.support import wait_until
from tests.upstreams.conftest import FAULTY

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


def faulty(name: str, mode: str, **fields: Any) -> Manifest:
    return Manifest(name=name, command=sys.executable, args=[str(FAULTY), mode], **fields)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (it only waits for its parent to reap it).
    status = Path(f"/proc/{pid}/stat").read_text()
    return status.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_until_dead(pid: int) -> None:
    await wait_until(lambda: not alive(pid), within=5, every=0.02)


def file_sizes(directory: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in directory.iterdir()}


async def failure_of(session: UpstreamSession, tool: str, **arguments: Any) -> str:
    with pytest.raises(Unavailable) as caught:
        await session.call_tool(tool, arguments)
    return str(caught.value)


async def test_calls_in_flight_fail_at_once_when_the_process_dies_though_a_grandchild_holds_stdout(
    tmp_path: Path,
) -> None:
    child_pid_file = tmp_path / "child.pid"
    manifest = faulty("kid", "spawn-child", env={"FAULTY_CHILD_PID_FILE": str(child_pid_file)})
    failures: list[str] = []
    with anyio.fail_after(10):  # the sleeping call would wait 60 s if nobody noticed
        async with open_session(
            manifest, sys.executable, gateway_env=os.environ, log_dir=tmp_path
        ) as session:
            grandchild = int(child_pid_file.read_text())

            async def sleeper() -> None:
                failures.append(await failure_of(session, "sleep", seconds=60))

            async with anyio.create_task_group() as tg:
                tg.start_soon(sleeper)
                await anyio.wait_all_tasks_blocked()  # the sleep request is sent first
                failures.append(await failure_of(session, "die"))
            assert alive(grandchild)  # it still holds stdout: the exit was noticed anyway
            assert await session.connection.wait_closed() == "exited with code 4"
            after = await failure_of(session, "echo", text="too late")
        await wait_until_dead(grandchild)  # the session's end took the whole group down
    assert failures == ["upstream 'kid' exited with code 4"] * 2
    assert after == "upstream 'kid' exited with code 4"


@pytest.mark.parametrize(
    ("how", "expected"),
    [("crash", "exited with code 3"), ("signal", "was killed by SIGKILL")],
)
async def test_a_dying_upstream_fails_its_calls_naming_how_it_ended(
    tmp_path: Path, how: str, expected: str
) -> None:
    manifest = faulty("crashy", "crash-on-call")
    with anyio.fail_after(10):
        async with open_session(
            manifest, sys.executable, gateway_env=os.environ, log_dir=tmp_path
        ) as session:
            assert (await session.call_tool("echo", {"text": "ok"}))["content"][0]["text"] == "ok"
            if how == "crash":
                message = await failure_of(session, "crash")
            else:
                async with anyio.create_task_group() as tg:

                    async def sleeper() -> None:
                        nonlocal message
                        message = await failure_of(session, "sleep", seconds=60)

                    message = ""
                    tg.start_soon(sleeper)
                    await anyio.wait_all_tasks_blocked()
                    os.kill(session.pid, signal.SIGKILL)
    assert message == f"upstream 'crashy' {expected}"


async def test_upstream_stderr_goes_to_a_log_rotated_at_its_bound(tmp_path: Path) -> None:
    manifest = faulty("noisy", "flood")
    bound = 100_000
    with anyio.fail_after(20):
        async with open_session(
            manifest,
            sys.executable,
            gateway_env=os.environ,
            log_dir=tmp_path,
            log_max_bytes=bound,
            log_backups=2,
        ) as session:
            done = await session.call_tool("stderr_flood", {"size": 1_000_000})
            assert done["content"][0]["text"] == "wrote 1000000 bytes to stderr"
    sizes = file_sizes(tmp_path)
    assert sorted(sizes) == ["noisy.log", "noisy.log.1", "noisy.log.2"]
    assert sizes["noisy.log.1"] == sizes["noisy.log.2"] == bound  # full backups
    assert sizes["noisy.log"] <= bound  # the newest file holds the rest
    assert (tmp_path / "noisy.log").read_bytes().endswith(b"y" * (1_000_000 % 100))


async def test_an_endless_stderr_line_is_logged_without_being_held_in_memory(
    tmp_path: Path,
) -> None:
    size = 20 * 1024 * 1024
    write = f"import sys; sys.stderr.write('starting\\n' + 'e' * {size}); sys.stderr.flush()"
    stderr_log = StderrLog(tmp_path, "endless", max_bytes=4 * 1024 * 1024, backups=1)
    tracemalloc.start()
    try:
        with anyio.fail_after(20):
            async with upstream_process(
                "endless",
                [sys.executable, "-c", write],
                env=os.environ,
                cwd=None,
                stderr_log=stderr_log,
            ) as process:
                await process.wait()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024  # a tenth of the line
    said = stderr_log.last_line()
    assert said == "e" * 300  # the unfinished line is the last thing it said (shortened)
    sizes = file_sizes(tmp_path)
    assert sizes.keys() == {"endless.log", "endless.log.1"}
    assert max(sizes.values()) <= 4 * 1024 * 1024


async def test_a_failed_start_names_the_exit_and_the_last_line_of_this_runs_stderr(
    tmp_path: Path,
) -> None:
    (tmp_path / "early.log").write_text("fatal: an old run's complaint\n")
    script = "import sys; print('fatal: no config', file=sys.stderr); sys.exit(3)"
    manifest = Manifest(name="early", command=sys.executable, args=["-c", script])
    with anyio.fail_after(10), pytest.raises(UpstreamUnavailable) as caught:
        async with open_session(manifest, sys.executable, gateway_env=os.environ, log_dir=tmp_path):
            pass
    assert str(caught.value) == (
        "upstream 'early' exited with code 3 at start (its stderr: fatal: no config)"
    )
    assert (tmp_path / "early.log").read_text().splitlines() == [
        "fatal: an old run's complaint",
        "fatal: no config",
    ]


async def test_an_upstream_too_slow_to_initialize_is_stopped_with_a_clear_reason(
    tmp_path: Path,
) -> None:
    starts = tmp_path / "starts"
    env = {"FAULTY_START_DELAY": "60", "FAULTY_STARTS_FILE": str(starts)}
    manifest = faulty("slow", "slow-start", env=env, startup_timeout=0.2)
    with anyio.fail_after(10), pytest.raises(UpstreamStartTimeout) as caught:
        async with open_session(manifest, sys.executable, gateway_env=os.environ, log_dir=tmp_path):
            pass
    assert str(caught.value) == (
        "upstream 'slow' did not answer initialize within 0.2 s (it wrote nothing to stderr)"
    )
    await wait_until_dead(int(starts.read_text()))


async def test_an_oversized_reply_fails_its_call_as_soon_as_it_crosses_the_limit(
    tmp_path: Path,
) -> None:
    manifest = faulty("stall", "flood", max_message_bytes=1024 * 1024)
    async with open_session(
        manifest, sys.executable, gateway_env=os.environ, log_dir=tmp_path
    ) as session:
        # The upstream starts a 2 MB reply and stalls before finishing it: waiting for the
        # end of the line would wait forever.
        with anyio.fail_after(10):
            said = await failure_of(session, "big_stall", size=2 * 1024 * 1024)
    assert said.startswith("upstream 'stall' sent a reply over the 1048576-byte message limit")
