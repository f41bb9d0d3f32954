"""A real stdio MCP server for the gateway's tests: an echo, a tool that hangs forever
(and records whether it was cancelled), a slow tool that reports progress, and one that
shows its environment. Run: python toolbox_server.py. Env RECORD_FILE: where `hang`
appends "started <tag>" and "cancelled <tag>" lines."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
from fastmcp import Context, FastMCP

server = FastMCP("toolbox")


def _record(line: str) -> None:
    target = os.environ.get("RECORD_FILE")
    if target:
        with Path(target).open("a") as handle:
            handle.write(line + "\n")


@server.tool
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool
async def hang(tag: str = "") -> str:
    """Never returns (until cancelled)."""
    _record(f"started {tag}")
    try:
        await anyio.sleep_forever()
    except anyio.get_cancelled_exc_class():
        _record(f"cancelled {tag}")
        raise
    return "unreachable"


@server.tool
async def slow(steps: int, delay: float, ctx: Context) -> str:
    """Sleep `steps` times for `delay` seconds, reporting progress after each step."""
    for step in range(1, steps + 1):
        await anyio.sleep(delay)
        await ctx.report_progress(step, steps, f"step {step} of {steps}")
    return f"done after {steps} steps"


@server.tool
def big(size: int) -> str:
    """A reply of about `size` bytes."""
    return "x" * size


@server.tool
def environment() -> dict[str, str]:
    """The environment this server was started with."""
    return dict(os.environ)


@server.tool
def request_meta(ctx: Context) -> dict[str, object]:
    """The `_meta` block of this very request, as the upstream received it."""
    request = ctx.request_context
    return dict(request.meta or {}) if request is not None else {}


@server.tool
async def ask_client(ctx: Context) -> dict[str, object]:
    """Send the client (the gateway) a ping and a roots/list request; report the answers."""
    await ctx.session.send_ping()
    roots = await ctx.session.list_roots()
    return {"ping": "ok", "roots": [str(root.uri) for root in roots.roots]}


if __name__ == "__main__":
    server.run(show_banner=False, log_level="WARNING")
