"""`archon-gateway doctor`: start each enabled upstream once and report how it went.

`diagnose` takes loaded manifests and returns one report per upstream (and per manifest
that could not be loaded); `render_table` turns them into the rich table the command
prints. Reports carry names, paths and one-line errors only: never env values or args,
which may hold secrets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict, computed_field
from rich import box
from rich.table import Table
from rich.text import Text

from archon_gateway.core.errors import GatewayError, MissingVariable, UpstreamStartTimeout
from archon_gateway.upstreams.manifest import (
    Manifest,
    ManifestProblem,
    ManifestSet,
    builtin_manifests_dir,
)
from archon_gateway.upstreams.opening import open_upstream

State = Literal["ready", "failed", "disabled", "not_found"]

_SHIPPED_DIR = builtin_manifests_dir().resolve()
DEFAULT_CONCURRENCY = 4
# A healthy upstream answers a ping in milliseconds; one that takes seconds is in trouble.
PING_TIMEOUT = 5.0


class UpstreamReport(BaseModel):
    """What doctor found out about one upstream (or one manifest file it could not load)."""

    model_config = ConfigDict(frozen=True)

    name: str
    file: str | None = None
    # Shipped with the gateway (not written by the user): an offer, so its command being
    # missing is not a failure, just as `serve` shows it as disabled.
    shipped: bool = False
    # `optional = true` in its manifest (the shipped ones say so): an offer, like shipped.
    optional: bool = False
    enabled: bool = True
    command: str | None = None
    command_found: str | None = None
    state: State
    startup_s: float | None = None
    tools: int | None = None
    ping_ms: float | None = None
    error: str | None = None
    hint: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """Disabled upstreams never fail a run, nor shipped or optional ones that are not
        installed (as /health counts them); every other enabled one must be ready."""
        offer = self.shipped or self.optional
        return self.state in ("ready", "disabled") or (self.state == "not_found" and offer)


async def diagnose(
    manifests: ManifestSet,
    *,
    gateway_env: Mapping[str, str],
    log_dir: Path,
    concurrency: int = DEFAULT_CONCURRENCY,
    ping_timeout: float = PING_TIMEOUT,
) -> list[UpstreamReport]:
    """Start every enabled upstream (at most `concurrency` at once), each within its
    manifest's startup_timeout; list its tools, ping it once, stop it. Sorted by name."""
    reports = [_problem_report(problem) for problem in manifests.problems]
    limiter = anyio.CapacityLimiter(concurrency)

    async def check(
        manifest: Manifest, command: str | None, headers: dict[str, str], file: Path | None
    ) -> None:
        async with limiter:
            reports.append(
                await _start_once(
                    manifest, command, headers, file, gateway_env, log_dir, ping_timeout
                )
            )

    search_path = gateway_env.get("PATH")
    async with anyio.create_task_group() as tg:
        for manifest in manifests.manifests:
            file = manifests.files.get(manifest.name)
            found = manifest.resolve_command(search_path)
            if manifest.is_remote and manifest.enabled:
                try:
                    headers = manifest.resolve_headers(gateway_env)
                except MissingVariable as exc:
                    hint = "set it in the gateway's environment (or fix `headers`)"
                    reports.append(
                        _report(manifest, file, None, "failed", error=str(exc), hint=hint)
                    )
                    continue
                tg.start_soon(check, manifest, None, headers, file)
            elif not manifest.enabled:
                reports.append(_report(manifest, file, found, state="disabled"))
            elif found is None:
                hint = manifest.install_hint or (
                    f"install {manifest.command} or fix `command` in {file or 'its manifest'}"
                )
                error = f"command not found: {manifest.command}"
                reports.append(_report(manifest, file, None, "not_found", error=error, hint=hint))
            else:
                tg.start_soon(check, manifest, found, {}, file)
    return sorted(reports, key=lambda report: (report.name.lower(), report.file or ""))


async def _start_once(
    manifest: Manifest,
    command: str | None,
    headers: dict[str, str],
    file: Path | None,
    gateway_env: Mapping[str, str],
    log_dir: Path,
    ping_timeout: float,
) -> UpstreamReport:
    log_hint = f"see its log {log_dir / f'{manifest.name}.log'}"
    timeout_hint = f"raise startup_timeout in its manifest ({file or manifest.name})"
    started = time.perf_counter()
    startup = tools = ping = None
    error = hint = None
    try:
        async with open_upstream(
            manifest, command, headers, gateway_env=gateway_env, log_dir=log_dir
        ) as session:
            # Same budget as the gateway's own start: initialize, then tools/list.
            with anyio.fail_after(manifest.startup_timeout):
                definitions = await session.list_tools()
            startup = round(time.perf_counter() - started, 3)
            tools = sum(1 for tool in definitions if manifest.exposes(str(tool["name"])))
            try:
                with anyio.fail_after(ping_timeout):
                    ping = await session.ping()
            except TimeoutError:
                error = f"upstream '{manifest.name}' did not answer ping within {ping_timeout:g} s"
                hint = log_hint
            except GatewayError as exc:
                error, hint = f"ping failed: {exc}", log_hint
    except TimeoutError:
        error = (
            f"upstream '{manifest.name}' did not list its tools within "
            f"{manifest.startup_timeout:g} s"
        )
        hint = timeout_hint
    except GatewayError as exc:
        timed_out = isinstance(exc, UpstreamStartTimeout)
        error, hint = str(exc), timeout_hint if timed_out else log_hint
    return _report(
        manifest,
        file,
        command,
        "failed" if error else "ready",
        startup_s=startup,
        tools=tools,
        ping_ms=None if ping is None else round(ping * 1000, 2),
        error=error,
        hint=hint,
    )


def _report(
    manifest: Manifest,
    file: Path | None,
    command_found: str | None,
    state: State,
    *,
    startup_s: float | None = None,
    tools: int | None = None,
    ping_ms: float | None = None,
    error: str | None = None,
    hint: str | None = None,
) -> UpstreamReport:
    return UpstreamReport(
        name=manifest.name,
        file=None if file is None else str(file),
        shipped=file is not None and file.parent.resolve() == _SHIPPED_DIR,
        optional=manifest.optional,
        enabled=manifest.enabled,
        command=manifest.command or remote_address(manifest),
        command_found=command_found or (remote_address(manifest) if manifest.is_remote else None),
        state=state,
        startup_s=startup_s,
        tools=tools,
        ping_ms=ping_ms,
        error=error,
        hint=hint,
    )


def remote_address(manifest: Manifest) -> str | None:
    """What doctor shows for a remote upstream: its URL without the query, and transport."""
    if manifest.url is None:
        return None
    return f"{manifest.url.split('?', 1)[0]} ({manifest.remote_transport})"


def _problem_report(problem: ManifestProblem) -> UpstreamReport:
    return UpstreamReport(
        name=problem.path.stem,
        file=str(problem.path),
        state="failed",
        error=f"invalid manifest: {problem.reason}",
        hint=f"fix or remove {problem.path}",
    )


def render_table(reports: list[UpstreamReport]) -> Table:
    """One row per report. Values go in as Text, so brackets in them are not rich markup."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("upstream", no_wrap=True)
    table.add_column("command", overflow="fold", max_width=40)
    table.add_column("state", no_wrap=True)
    table.add_column("startup", justify="right", no_wrap=True)
    table.add_column("tools", justify="right", no_wrap=True)
    table.add_column("ping", justify="right", no_wrap=True)
    table.add_column("error / hint", overflow="fold")
    for report in reports:
        alarm = "yellow" if report.ok else "red"
        if report.command_found:
            command = Text(_home_as_tilde(report.command_found))
        elif report.state == "disabled" and report.command:
            command = Text(f"not found: {report.command}", style="dim")
        elif report.command:
            command = Text("not found", style=alarm)
        else:
            command = Text("-", style="dim")
        state_style = {"ready": "green", "disabled": "dim"}.get(report.state, f"bold {alarm}")
        problem = Text(report.error or "", style=alarm)
        if report.hint:
            problem.append(("\n" if report.error else "") + f"hint: {report.hint}", style="cyan")
        table.add_row(
            Text(report.name, style="bold"),
            command,
            Text(report.state, style=state_style),
            _optional(report.startup_s, "{:.2f} s"),
            _optional(report.tools, "{}"),
            _optional(report.ping_ms, "{:.1f} ms"),
            problem,
        )
    return table


def summary(reports: list[UpstreamReport]) -> str:
    """One line: how many are ready, failing, not installed (shipped, optional), disabled."""
    counts = {
        "ready": sum(1 for r in reports if r.state == "ready"),
        "failing": sum(1 for r in reports if not r.ok),
        "not installed (optional)": sum(1 for r in reports if r.ok and r.state == "not_found"),
        "disabled": sum(1 for r in reports if r.state == "disabled"),
    }
    return ", ".join(
        f"{count} {label}" for label, count in counts.items() if count or label == "ready"
    )


def _home_as_tilde(path: str) -> str:
    home = str(Path.home())
    return "~" + path.removeprefix(home) if path.startswith(home + "/") else path


def _optional(value: float | None, template: str) -> Text:
    return Text("-", style="dim") if value is None else Text(template.format(value))
