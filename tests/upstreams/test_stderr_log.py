"""StderrLog on its own, fed by a stand-in pipe: files are written and rotated in a worker
thread, never on the event loop, and a stalled disk does not stop the reading."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import ByteReceiveStream
from anyio.streams.memory import MemoryObjectReceiveStream

from archon_gateway.upstreams.stderr_log import StderrLog

pytestmark = pytest.mark.anyio


class PipeStandIn(ByteReceiveStream):
    """The read end of a pipe: yields the chunks sent to a memory object stream, and ends
    when that stream's sender is closed."""

    def __init__(self, chunks: MemoryObjectReceiveStream[bytes]) -> None:
        self._chunks = chunks

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self._chunks.receive()

    async def aclose(self) -> None:
        await self._chunks.aclose()


class ThreadRecordingLog(StderrLog):
    """Notes which threads write and rotate the files."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_threads: set[int] = set()
        self.rotate_threads: set[int] = set()

    def _write_chunk(self, chunk: bytes) -> None:
        self.write_threads.add(threading.get_ident())
        super()._write_chunk(chunk)

    def _rotate(self) -> None:
        self.rotate_threads.add(threading.get_ident())
        super()._rotate()


class StalledDiskLog(StderrLog):
    """A disk that stalls: the first write blocks until the test lets it through."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stalled = threading.Event()
        self.unstall = threading.Event()

    def _write_chunk(self, chunk: bytes) -> None:
        if not self.unstall.is_set():
            self.stalled.set()
            assert self.unstall.wait(10), "the test never let the write through"
        super()._write_chunk(chunk)


def file_sizes(directory: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in directory.iterdir()}


async def test_stderr_is_written_and_rotated_off_the_event_loop_thread(tmp_path: Path) -> None:
    loop_thread = threading.get_ident()
    stderr_log = ThreadRecordingLog(tmp_path, "busy", max_bytes=1000, backups=2)
    lines = [b"line %03d " % n + b"x" * 90 + b"\n" for n in range(35)]  # 100 bytes each
    send, receive = anyio.create_memory_object_stream[bytes]()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(stderr_log.pump, PipeStandIn(receive))
            async with send:
                for line in lines:
                    await send.send(line)
        await stderr_log.closed.wait()
    assert stderr_log.write_threads, "nothing was written"
    assert stderr_log.rotate_threads, "the log never rotated"
    assert loop_thread not in stderr_log.write_threads | stderr_log.rotate_threads
    assert file_sizes(tmp_path) == {"busy.log": 500, "busy.log.1": 1000, "busy.log.2": 1000}
    assert (tmp_path / "busy.log").read_bytes() == b"".join(lines[30:])
    assert (tmp_path / "busy.log.1").read_bytes() == b"".join(lines[20:30])
    assert stderr_log.last_line() == lines[-1].decode().strip()
    assert stderr_log.dropped_bytes == 0


async def test_a_stalled_disk_neither_stops_the_reading_nor_holds_more_than_its_bound(
    tmp_path: Path,
) -> None:
    # "first\n" is in the stalled write; four 1 KiB lines more fit the bound.
    stderr_log = StalledDiskLog(tmp_path, "stuck", pending_max=5 * 1024)
    send, receive = anyio.create_memory_object_stream[bytes]()
    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(stderr_log.pump, PipeStandIn(receive))
                async with send:
                    await send.send(b"first\n")
                    await anyio.to_thread.run_sync(stderr_log.stalled.wait)
                    # The stream is unbuffered: each send returns once the pump has read it.
                    for n in range(100):
                        await send.send(b"%04d" % n + b"-" * 1019 + b"\n")
                    assert stderr_log.last_line().startswith("0099--")
                    assert stderr_log.dropped_bytes == 96 * 1024
                    stderr_log.unstall.set()
                    await send.send(b"after the stall\n")
            await stderr_log.closed.wait()
    finally:
        stderr_log.unstall.set()
    lines = (tmp_path / "stuck.log").read_text().splitlines(keepends=True)
    assert lines[0] == "first\n"
    assert [line[:4] for line in lines[1:5]] == ["0000", "0001", "0002", "0003"]
    assert lines[5:] == [
        "\n",
        "[archon-gateway: 98304 bytes of stderr dropped here]\n",
        "after the stall\n",
    ]


async def test_bytes_dropped_just_before_the_stream_ends_are_still_marked_in_the_log(
    tmp_path: Path,
) -> None:
    stderr_log = StalledDiskLog(tmp_path, "ending", pending_max=1024)
    send, receive = anyio.create_memory_object_stream[bytes]()
    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(stderr_log.pump, PipeStandIn(receive))
                async with send:
                    await send.send(b"first\n")
                    await anyio.to_thread.run_sync(stderr_log.stalled.wait)
                    for _ in range(3):
                        await send.send(b"y" * 1023 + b"\n")
                stderr_log.unstall.set()  # the upstream is gone; the disk catches up
            await stderr_log.closed.wait()
    finally:
        stderr_log.unstall.set()
    written = (tmp_path / "ending.log").read_text()
    kept = written.count("y" * 1023 + "\n")
    assert written.endswith(f"[archon-gateway: {(3 - kept) * 1024} bytes of stderr dropped here]\n")
    assert stderr_log.dropped_bytes == (3 - kept) * 1024 > 0


class SlowDiskLog(StderrLog):
    """A disk that is slow but keeps going: every write takes 5 ms."""

    def _write_chunk(self, chunk: bytes) -> None:
        time.sleep(0.005)
        super()._write_chunk(chunk)


async def test_a_burst_faster_than_a_slow_but_working_disk_is_kept_whole(tmp_path: Path) -> None:
    stderr_log = SlowDiskLog(tmp_path, "burst", pending_max=4 * 1024)
    lines = [b"%04d" % n + b"-" * 1019 + b"\n" for n in range(100)]
    send, receive = anyio.create_memory_object_stream[bytes]()
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(stderr_log.pump, PipeStandIn(receive))
            async with send:
                for line in lines:
                    await send.send(line)
        await stderr_log.closed.wait()
    assert stderr_log.dropped_bytes == 0
    assert (tmp_path / "burst.log").read_bytes() == b"".join(lines)
