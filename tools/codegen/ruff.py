"""ruff as a subprocess on stdin: diagnostics as findings, and safe fixes.

Always `--isolated` (no config file from the gateway's working directory leaks in) and
`--exit-zero`; each run is bounded by a time limit and killed when cancelled.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream

from archon_gateway.core.child_env import child_env
from archon_gateway.core.errors import InvalidArgument, ToolFailed
from archon_gateway.tools.codegen.models import Finding, Severity
from archon_gateway.tools.codegen.rules import RuleSet

_ERROR_PREFIXES = ("E9", "F63", "F7", "F82", "F811")
_INFO_PREFIXES = ("I", "W", "UP")


@functools.cache
def ruff_binary() -> str:
    from ruff import find_ruff_bin  # type: ignore[import-untyped]  # ships the binary

    try:
        return str(find_ruff_bin())
    except FileNotFoundError as exc:
        raise ToolFailed("the ruff binary is missing; reinstall archon-gateway") from exc


def _common_args(rules: RuleSet, filename: str) -> list[str]:
    args = [
        "check",
        "--isolated",
        "--exit-zero",
        "--no-cache",
        "--line-length",
        str(rules.line_length),
        "--target-version",
        rules.target_version,
        "--stdin-filename",
        filename,
    ]
    select = rules.ruff_select()
    args += ["--select", ",".join(select)] if select else []
    ignore = rules.ruff_ignore()
    args += ["--ignore", ",".join(ignore)] if ignore else []
    return args


async def _exec(command: list[str], data: bytes) -> tuple[int, bytes, bytes]:
    """Run `command` with `data` on stdin; (exit code, stdout, stderr). The process is
    killed if this is cancelled. A command that exits without reading stdin is fine. It
    gets the allow-listed environment, never the gateway's secrets."""
    chunks: tuple[list[bytes], list[bytes]] = ([], [])

    async def drain(stream: ByteReceiveStream | None, into: list[bytes]) -> None:
        if stream is not None:
            async for chunk in stream:
                into.append(chunk)

    process = await anyio.open_process(command, env=child_env(os.environ))
    async with process, anyio.create_task_group() as group:
        group.start_soon(drain, process.stdout, chunks[0])
        group.start_soon(drain, process.stderr, chunks[1])
        if process.stdin is not None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await process.stdin.send(data)
            await process.stdin.aclose()
        code = await process.wait()
    return code, b"".join(chunks[0]), b"".join(chunks[1])


def _severity(code: str) -> Severity:
    if code.startswith(_ERROR_PREFIXES):
        return "error"
    if code.startswith(_INFO_PREFIXES):
        return "info"
    return "warning"


def findings_from_json(payload: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for item in payload:
        code = item.get("code")
        if code is None:  # ruff's own syntax errors; the ast check reports those
            continue
        fix = item.get("fix") or {}
        findings.append(
            Finding(
                rule=code,
                severity=_severity(code),
                message=item.get("message", ""),
                line=item["location"]["row"],
                column=item["location"]["column"],
                fixable=fix.get("applicability") == "safe",
            )
        )
    return findings


@dataclass(frozen=True)
class Fixed:
    code: str
    converged: bool  # ruff gives up after 100 rounds of fixes
    remaining: list[Finding] | None  # ruff's findings on `code` (None: unknown)


class Ruff:
    """Runs ruff (or `binary`): each run bounded by `time_limit` seconds, at most
    `processes` at once (a burst of tool calls queues here instead of forking a process
    each)."""

    def __init__(
        self, time_limit: float = 10.0, processes: int | None = None, binary: str | None = None
    ) -> None:
        self.time_limit = time_limit
        self._processes = processes
        self._binary = binary
        self._limiter = anyio.CapacityLimiter(processes or max(2, os.cpu_count() or 2))

    def __reduce__(self) -> tuple[type[Ruff], tuple[float, int | None, str | None]]:
        # Sent to a code worker process: the limiter is per process (and not picklable).
        return (Ruff, (self.time_limit, self._processes, self._binary))

    async def _run(self, args: list[str], code: str) -> tuple[bytes, bytes]:
        command = [self._binary or ruff_binary(), *args]
        async with self._limiter:
            try:
                with anyio.fail_after(self.time_limit):
                    returncode, stdout, stderr = await _exec(command, code.encode())
            except TimeoutError as exc:
                raise ToolFailed(f"ruff did not finish within {self.time_limit:g} s") from exc
            except OSError as exc:
                raise ToolFailed(f"ruff could not be started: {exc.strerror or exc}") from exc
        if returncode != 0:
            lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
            detail = "; ".join(line for line in lines if line) or "no output"
            detail = re.sub(r"(?i)\b(error|ruff failed):\s*", "", detail)
            if "selector" in detail or "rule" in detail.lower():
                raise InvalidArgument(f"rules: ruff refused the rule selection: {detail}")
            raise ToolFailed(f"ruff failed (exit {returncode}): {detail}")
        return stdout, stderr

    async def findings(self, code: str, rules: RuleSet, filename: str) -> list[Finding]:
        if not rules.ruff_select():
            return []
        out, _ = await self._run(
            [*_common_args(rules, filename), "--output-format", "json", "-"], code
        )
        try:
            payload = json.loads(out or b"[]")
        except json.JSONDecodeError as exc:
            raise ToolFailed("ruff returned output that is not JSON") from exc
        return findings_from_json(payload)

    async def fix(self, code: str, rules: RuleSet, filename: str) -> Fixed:
        """ruff's safe fixes (import sorting included when selected) in one run."""
        if not rules.ruff_select():
            return Fixed(code, True, [])
        args = [*_common_args(rules, filename), "--fix", "--output-format", "json", "-"]
        out, err = await self._run(args, code)
        if b"Failed to converge" in err:
            return Fixed(out.decode(), False, None)
        try:
            remaining = findings_from_json(json.loads(err))
        except (ValueError, KeyError, TypeError):
            remaining = None
        return Fixed(out.decode(), True, remaining)
