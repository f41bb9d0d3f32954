"""`POST /hooks/{source}`: signed webhooks in, stored once, mapped to an action the gateway
owns.

Each configured source has a secret. A delivery carries `X-Archon-Signature:
sha256=<hex>`, the HMAC-SHA256 of `<X-Archon-Timestamp>.<X-Archon-Delivery>.<raw body>`
(gateway/webhook_signature.py says why each part is signed), a timestamp of whole epoch
seconds within `tolerance` seconds, and `X-Archon-Delivery` (a redelivery is acknowledged,
not stored twice). The `github` source speaks GitHub's scheme instead: `X-Hub-Signature-256`
over the raw body, `X-GitHub-Event` and `X-GitHub-Delivery` (GitHub sends no timestamp; its
delivery id guards replays).

Answers: 202 stored (and acted on in the background), 200 duplicate, 400 missing delivery
id or body not JSON, 401 bad/missing signature or bad/stale timestamp (each audited), 404
unknown source, 413 too large, 415 not JSON, 503 store unavailable.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup
from pydantic import SecretStr
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from archon_gateway.core.audit import AuditEvent, AuditSink
from archon_gateway.core.bounded_json import parse_json
from archon_gateway.core.errors import GatewayError, JsonRejected, WebhookRejected
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.webhook_signature import verify_archon, verify_github
from archon_gateway.store.intervals import EventMetrics
from archon_gateway.store.service import Store

log = logging.getLogger(__name__)

HOOKS_PREFIX = "/hooks/"


@dataclass(frozen=True)
class ActionCall:
    """One configured action run for one delivery: `argument` is what follows the ':' of
    `restart_upstream:<name>`."""

    argument: str
    source: str
    delivery: str


# What a webhook may trigger: action name -> (call -> what happened). An action is an admin
# action: it writes its own audit row (principal `webhook:<source>`).
Action = Callable[[ActionCall], Awaitable[str]]


class Webhooks:
    def __init__(
        self,
        store: Store,
        audit: AuditSink,
        *,
        secrets: Mapping[str, SecretStr],
        actions: Mapping[str, Mapping[str, str]],
        handlers: Mapping[str, Action],
        max_bytes: int,
        tolerance: float,
        events: EventMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.events = events
        self.store = store
        self.audit = audit
        self.secrets = secrets
        self.actions = actions
        self.handlers = handlers
        self.max_bytes = max_bytes
        self.tolerance = tolerance
        self.clock = clock
        self._tasks: TaskGroup | None = None

    def install(self, server: GatewayServer) -> None:
        server.custom_route("/hooks/{source}", methods=["POST"], include_in_schema=False)(
            self.receive
        )
        server.add_lifetime(self.running)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Actions run here, after the sender has its answer."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            try:
                yield
            finally:
                self._tasks = None
                tasks.cancel_scope.cancel()

    async def receive(self, request: Request) -> Response:
        source = request.path_params["source"]
        try:
            return await self._receive(request, source)
        except WebhookRejected as exc:
            if exc.status == 401:
                self.audit.record(
                    AuditEvent(
                        "reject",
                        "http",
                        exc.reason,
                        path=request.url.path[:300],
                        client=_client(request),
                        kind="webhook",
                    )
                )
            return JSONResponse({"error": str(exc), "reason": exc.reason}, status_code=exc.status)

    async def _receive(self, request: Request, source: str) -> Response:
        secret = self.secrets.get(source)
        if secret is None:
            raise WebhookRejected(
                404, "unknown_source", f"no webhook source {source!r} is configured"
            )
        body = await self._body(request)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise WebhookRejected(415, "not_json", "webhook bodies must be application/json")
        github = source == "github"
        delivery = request.headers.get("x-github-delivery" if github else "x-archon-delivery")
        if github:
            verify_github(request.headers, body, secret.get_secret_value())
        else:
            verify_archon(
                request.headers,
                body,
                secret.get_secret_value(),
                delivery=delivery or "",
                now=self.clock(),
                tolerance=self.tolerance,
            )
        if not delivery or len(delivery) > 200:
            raise WebhookRejected(
                400, "no_delivery_id", "a delivery id header (X-Archon-Delivery) is required"
            )
        payload = _parse_json(body, self.max_bytes)
        event = (
            request.headers.get("x-github-event" if github else "x-archon-event")
            or str(payload.get("event", "") if isinstance(payload, dict) else "")
        )[:200]
        action = self.actions.get(source, {}).get(event, "")
        action = "" if action == "none" else action
        try:
            stored = await self._store(source, delivery, event, body, action)
        except GatewayError as exc:
            return JSONResponse({"error": str(exc), "reason": "store_unavailable"}, status_code=503)
        if not stored:
            return JSONResponse({"status": "duplicate", "delivery": delivery}, status_code=200)
        if action and self._tasks is not None:
            self._tasks.start_soon(self._act, source, delivery, action)
        return JSONResponse(
            {"status": "accepted", "delivery": delivery, "event": event, "action": action or None},
            status_code=202,
        )

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise WebhookRejected(413, "too_large", f"webhook body over {self.max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_bytes:
                    raise WebhookRejected(
                        413, "too_large", f"webhook body over {self.max_bytes} bytes"
                    )
                chunks.append(chunk)
        except ClientDisconnect:
            raise WebhookRejected(400, "disconnected", "the sender went away mid-body") from None
        return b"".join(chunks)

    async def _store(
        self, source: str, delivery: str, event: str, body: bytes, action: str
    ) -> bool:
        from archon_gateway.store.hooks import record_delivery

        return await record_delivery(
            await self.store.engine(),
            source=source,
            delivery_id=delivery,
            event=event,
            body=body.decode("utf-8", "replace"),
            action=action,
            now=self.clock(),
        )

    async def _act(self, source: str, delivery: str, action: str) -> None:
        from archon_gateway.store.hooks import set_status

        name, _, argument = action.partition(":")
        handler = self.handlers.get(name)
        status, detail = "failed", f"no action {name!r} in this gateway"
        started = time.perf_counter()
        if handler is not None:
            try:
                status, detail = "acted", await handler(ActionCall(argument, source, delivery))
            except Exception as exc:  # the sender has its answer; the row says what failed
                status, detail = "failed", str(exc) or type(exc).__name__
        else:
            self.audit.record(
                AuditEvent(
                    "reject",
                    "http",
                    detail[:200],
                    principal=f"webhook:{source}"[:200],
                    kind="webhook_action",
                    request_id=delivery[:100],
                )
            )
        if self.events is not None:
            report = self.events.processed if status == "acted" else self.events.failed
            report(f"hook:{source}", name, time.perf_counter() - started)
        try:
            await set_status(
                await self.store.engine(),
                source=source,
                delivery_id=delivery,
                status=status,
                detail=detail,
            )
        except Exception as exc:
            log.warning("webhook %s/%s: could not record its status: %s", source, delivery, exc)


def _parse_json(body: bytes, max_bytes: int) -> Any:
    """The body through the gateway's one bounded parser (size and depth), its refusal as
    a 400 naming the limit."""
    try:
        return parse_json(body, max_bytes=max_bytes, what="the webhook body")
    except JsonRejected as exc:
        reason = {"depth": "too_deep", "size": "too_large"}.get(exc.limit or "", "bad_json")
        raise WebhookRejected(413 if exc.limit == "size" else 400, reason, str(exc)) from None


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else ""
