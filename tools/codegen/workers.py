"""A bounded pool of Python worker processes for CPU-heavy code-tool jobs.

anyio's process pool starts its workers with the gateway's whole environment (its secrets
included) and cannot be told otherwise; this pool starts each worker with the allow-listed
environment every child gets. A worker is started on demand and reused; a call cancelled
while its worker runs kills that worker, so the work really stops and its memory is
returned. Workers read jobs from stdin, so one whose gateway is gone exits at end of input.

Wire format, both ways: an 8-byte big-endian length, then a pickle. Request:
`(function, args)`; reply: `(True, result)` or `(False, exception)`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import anyio
from anyio.abc import ByteSendStream, Process
from anyio.streams.buffered import BufferedByteReceiveStream

from archon_gateway.core.errors import ToolFailed

T = TypeVar("T")
_LENGTH_BYTES = 8
# The worker's main: the gateway's import path first (the worker's environment carries no
# PYTHONPATH), then the job loop.
_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from archon_gateway.tools.codegen.workers import serve_jobs; serve_jobs()"
)


def serve_jobs() -> None:
    """The job loop in a worker process: run each job, send back its result or error."""
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    # A job that prints must not corrupt the replies.
    sys.stdin, sys.stdout = open(os.devnull), open(os.devnull, "w")  # noqa: SIM115
    while (request := _read_frame(requests)) is not None:
        try:
            function, args = pickle.loads(request)
            reply: tuple[bool, Any] = (True, function(*args))
        except BaseException as exc:  # the caller re-raises it
            reply = (False, exc)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            failure = ToolFailed(f"a code worker's result could not be sent back: {exc}")
            data = pickle.dumps((False, failure), protocol=pickle.HIGHEST_PROTOCOL)
        replies.write(len(data).to_bytes(_LENGTH_BYTES, "big") + data)
        replies.flush()


def _read_frame(stream: BinaryIO) -> bytes | None:
    header = stream.read(_LENGTH_BYTES)
    if len(header) < _LENGTH_BYTES:
        return None
    return stream.read(int.from_bytes(header, "big"))


@dataclass(eq=False)  # by identity: kept in a set
class _Worker:
    process: Process
    requests: ByteSendStream
    replies: BufferedByteReceiveStream

    async def call(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        data = pickle.dumps((function, args), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            await self.requests.send(len(data).to_bytes(_LENGTH_BYTES, "big") + data)
            length = int.from_bytes(await self.replies.receive_exactly(_LENGTH_BYTES), "big")
            ok, value = pickle.loads(await self.replies.receive_exactly(length))
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError) as exc:
            raise ToolFailed("a code worker process exited unexpectedly") from exc
        if not ok:
            raise value
        return value


class WorkerPool:
    """At most `size` worker processes, each started with `env` and reused."""

    def __init__(self, size: int, env: Mapping[str, str]) -> None:
        self._limiter = anyio.CapacityLimiter(size)
        self._env = dict(env)
        self._idle: list[_Worker] = []
        self._running: set[_Worker] = set()

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker; its exception is raised here."""
        async with self._limiter:
            worker = await self._idle_worker() or await self._start()
            self._running.add(worker)
            try:
                result: T = await worker.call(function, args)
            except BaseException:
                # Cancelled mid-job, or a broken pipe: the worker's state is unknown.
                self._running.discard(worker)
                await _kill(worker)
                raise
            self._running.discard(worker)
            self._idle.append(worker)
            return result

    async def aclose(self) -> None:
        """Stop every worker, idle or busy."""
        workers, self._idle = [*self._idle, *self._running], []
        self._running.clear()
        for worker in workers:
            await _kill(worker)

    async def _idle_worker(self) -> _Worker | None:
        while self._idle:
            worker = self._idle.pop()
            if worker.process.returncode is None:
                return worker
            await _kill(worker)
        return None

    async def _start(self) -> _Worker:
        command = [sys.executable, "-u", "-c", _BOOTSTRAP, json.dumps(sys.path)]
        try:
            process = await anyio.open_process(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # a traceback could quote the caller's code
                env=self._env,
            )
        except OSError as exc:
            raise ToolFailed(f"a code worker could not be started: {exc.strerror or exc}") from exc
        assert process.stdin is not None
        assert process.stdout is not None
        return _Worker(process, process.stdin, BufferedByteReceiveStream(process.stdout))


async def _kill(worker: _Worker) -> None:
    with anyio.CancelScope(shield=True):
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
        with contextlib.suppress(Exception):
            await worker.process.aclose()
