"""One shared way to talk to HTTP backends (workflow coordinator, metadata stamping, ...):
an `httpx.AsyncClient` with the gateway's pool limits, and translation of httpx failures
into `UpstreamUnavailable` so a breaker around the call counts them.

Typical use, one client and one breaker per backend:

    client = create_http_client("http://127.0.0.1:8053", timeout=10)
    breaker = breakers.get_or_create("workflow coordinator")
    async with client:
        async with breaker.guard(), http_errors("workflow coordinator"):
            response = raise_for_unavailable(await client.get("/health"), "workflow coordinator")
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol

import httpx

from archon_gateway.core.errors import BackendTimeout, UpstreamUnavailable

POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class ConnectionObserver(Protocol):
    """Hears a backend's connections and requests (the store's `ConnectionMetrics`)."""

    def connected(self, kind: str, target: str, *, ok: bool = True) -> None: ...

    def call(self, kind: str, target: str, seconds: float, *, ok: bool) -> None: ...


def create_http_client(
    base_url: str = "",
    *,
    timeout: float = 30.0,
    headers: Mapping[str, str] | None = None,
    observer: ConnectionObserver | None = None,
    backend: str = "",
) -> httpx.AsyncClient:
    """A client for one backend: pool of 100 connections (20 kept alive), no redirects, and
    no proxy or credentials from the environment (`trust_env=False`), so an `HTTP_PROXY`
    set for the internet never captures calls to 127.0.0.1 backends. Use it as an async
    context manager (it owns sockets). With an `observer`, each new connection (or failed
    connect) and each request (latency to the response headers; ok below 500) is reported
    as kind "http_backend", target `backend`."""
    transport = None
    if observer is not None:
        inner = httpx.AsyncHTTPTransport(limits=POOL_LIMITS, trust_env=False)
        transport = ObservedTransport(inner, observer, backend or base_url)
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        headers=dict(headers or {}),
        limits=POOL_LIMITS,
        follow_redirects=False,
        trust_env=False,
        transport=transport,
    )


class ObservedTransport(httpx.AsyncBaseTransport):
    """A transport that reports to a ConnectionObserver: connects through httpx's public
    `trace` request extension (httpcore's connect_tcp/connect_unix_socket events), requests
    by timing the inner transport. Never reports a URL, header or body."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, observer: ConnectionObserver, target: str
    ) -> None:
        self._inner = inner
        self._observer = observer
        self._target = target[:200]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions = {**request.extensions, "trace": self._trace}
        started = time.perf_counter()
        ok = False
        try:
            response = await self._inner.handle_async_request(request)
            ok = response.status_code < 500
            return response
        finally:
            seconds = time.perf_counter() - started
            self._observer.call("http_backend", self._target, seconds, ok=ok)

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        if not event.startswith(("connection.connect_tcp.", "connection.connect_unix_socket.")):
            return
        if event.endswith(".complete"):
            self._observer.connected("http_backend", self._target)
        elif event.endswith(".failed") and isinstance(info.get("exception"), Exception):
            self._observer.connected("http_backend", self._target, ok=False)

    async def aclose(self) -> None:
        await self._inner.aclose()


class http_errors:  # lowercase: used like a function, `with http_errors("x"):`
    """Translate httpx transport failures into UpstreamUnavailable (one line, naming the
    backend; never the URL's query or headers, which may carry credentials). Works with
    `with` and `async with` (so it combines with `breaker.guard()` in one statement)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, httpx.TimeoutException):
            raise BackendTimeout(
                f"{self.backend} did not answer in time ({_describe(exc)}); try again later"
            ) from exc
        if isinstance(exc, httpx.TransportError):
            raise UpstreamUnavailable(
                f"{self.backend} is unreachable ({_describe(exc)}); is it running?"
            ) from exc

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def raise_for_unavailable(response: httpx.Response, backend: str) -> httpx.Response:
    """Raise UpstreamUnavailable for a 5xx answer; return the response otherwise (4xx are
    the caller's to explain: they say the request was wrong, not that the backend is down)."""
    if response.status_code >= 500:
        raise UpstreamUnavailable(
            f"{backend} failed: HTTP {response.status_code} {response.reason_phrase} "
            f"for {response.request.method} {response.request.url.path}"
        )
    return response


def _describe(exc: httpx.HTTPError) -> str:
    kind = type(exc).__name__
    try:
        request = exc.request
    except RuntimeError:
        return kind
    return f"{kind} on {request.method} {request.url.scheme}://{request.url.netloc.decode()}"
