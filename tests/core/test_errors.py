"""The error tree: every error sits in one branch, breakers count only outages, and
boundaries keep the foreign cause for the log."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import socket

import anyio
import pytest

import archon_gateway.gateway
import archon_gateway.store
import archon_gateway.tools
import archon_gateway.upstreams
from archon_gateway.core import errors
from archon_gateway.core.circuit_breaker import CircuitBreaker
from archon_gateway.core.errors import (
    AuthRejected,
    BackendTimeout,
    BrokerUnavailable,
    CallerError,
    CircuitOpen,
    EmbeddingTimeout,
    GatewayError,
    InternalFault,
    InvalidArgument,
    ListenFailed,
    NotFound,
    Refused,
    Unavailable,
    UpstreamRequestFailed,
    UpstreamRestarting,
    UpstreamStartTimeout,
    UpstreamUnavailable,
    VectorStoreUnavailable,
    WorkflowFailed,
    counts_as_outage,
)

BRANCHES = (CallerError, Refused, Unavailable, InternalFault)


def all_error_classes() -> list[type[GatewayError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, GatewayError) and cls not in (GatewayError, *BRANCHES)
    ]


def test_every_error_belongs_to_exactly_one_branch() -> None:
    classes = all_error_classes()
    assert len(classes) >= 20
    for cls in classes:
        owners = [branch.__name__ for branch in BRANCHES if issubclass(cls, branch)]
        assert len(owners) == 1, f"{cls.__name__} is in {owners}"


def test_no_error_class_is_defined_outside_the_error_tree() -> None:
    """BackendTimeout and UpstreamRequestFailed used to live beside their callers."""
    strays = []
    packages = (archon_gateway.gateway, archon_gateway.tools, archon_gateway.upstreams)
    for package in (*packages, archon_gateway.store):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            module = importlib.import_module(info.name)
            if module is errors:
                continue
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == module.__name__ and issubclass(cls, BaseException):
                    strays.append(f"{module.__name__}.{cls.__name__}")
    assert strays == []


@pytest.mark.parametrize(
    ("exc", "counts"),
    [
        (InvalidArgument("x"), False),
        (NotFound("x"), False),
        (AuthRejected("x"), False),
        (UpstreamRequestFailed("zen", -32602, "bad params"), False),
        (WorkflowFailed("x"), False),
        (UpstreamRestarting("x"), False),
        (UpstreamUnavailable("x"), True),
        (UpstreamStartTimeout("x"), True),
        (BackendTimeout("x"), True),
        (VectorStoreUnavailable("x"), True),
        (BrokerUnavailable("x"), True),
        (EmbeddingTimeout("x"), True),
        (CircuitOpen("qdrant", 3), True),
        (InternalFault("x"), True),
        (TimeoutError(), True),
        (OSError("refused"), True),
        (KeyboardInterrupt(), False),
    ],
)
def test_outages_are_what_breakers_count(exc: BaseException, counts: bool) -> None:
    assert counts_as_outage(exc) is counts


@pytest.mark.anyio
async def test_a_breaker_ignores_caller_errors_and_refusals_without_an_exclude_list() -> None:
    breaker = CircuitBreaker("upstream zen", fail_max=2, clock=lambda: 0.0)
    for exc in (InvalidArgument("a"), UpstreamRequestFailed("zen", 1, "no"), NotFound("b")):
        for _ in range(3):
            with pytest.raises(type(exc)):
                async with breaker.guard():
                    raise exc
    assert breaker.current_state == "closed"
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            async with breaker.guard():
                raise UpstreamUnavailable("zen crashed")
    assert breaker.current_state == "open"


def test_a_boundary_keeps_the_foreign_cause_for_the_log() -> None:
    from archon_gateway.gateway.serve_loop import bind_listener

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenFailed, match="already in use") as raised:
            bind_listener("127.0.0.1", port)
    assert isinstance(raised.value.__cause__, OSError)


@pytest.mark.anyio
async def test_the_breaker_middleware_passes_on_the_error_with_its_cause() -> None:
    """The breaker unwraps FastMCP's ToolError to judge the call; what it re-raises keeps
    the foreign cause, so the log still shows why the dependency was down."""
    from typing import Any

    from fastmcp import Client, FastMCP

    from archon_gateway.core.errors import tool_errors
    from archon_gateway.gateway.call_pipeline import as_middleware
    from archon_gateway.gateway.call_steps.breaker_guard import BreakerGuard
    from archon_gateway.gateway.call_steps.error_translation import TranslateErrors
    from tests.support import CallErrors

    errors = CallErrors()
    breaker = CircuitBreaker("backend", fail_max=5, clock=lambda: 0.0)
    server: FastMCP[Any] = FastMCP("t")
    server.add_middleware(as_middleware(TranslateErrors()))  # outermost, as in the gateway
    server.add_middleware(errors)  # sees what the breaker re-raises
    server.add_middleware(as_middleware(BreakerGuard(lambda tool: breaker)))

    @server.tool
    def down() -> str:
        with tool_errors():
            try:
                raise OSError("connection refused")
            except OSError as exc:
                raise UpstreamUnavailable("backend is down") from exc

    with anyio.fail_after(30):
        async with Client(server) as client:
            result = await client.call_tool("down", {}, raise_on_error=False)
    assert result.is_error
    assert result.content[0].text == "backend is down"
    (raised,) = errors.seen
    assert isinstance(raised, UpstreamUnavailable)
    assert isinstance(raised.__cause__, OSError)
