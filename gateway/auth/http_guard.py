"""The ASGI layer in front of every HTTP route: decides before any MCP or tool work, answers
401 with `WWW-Authenticate`, and leaves the health probes open (see the package doc)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from archon_gateway.core.audit import AuditEvent, AuditSink
from archon_gateway.gateway.asgi_replies import send_json
from archon_gateway.gateway.auth.decisions import Authenticator, Decision

SERVICE_HEADER = "x-service-auth"
BYPASS_HEADER = "x-health-check-bypass"
HEALTH_PATHS = frozenset({"/health", "/health/ready"})
METRICS_PATH = "/metrics"
# Webhooks carry their own HMAC signature (gateway/webhooks.py), not the service token.
HOOKS_PREFIX = "/hooks/"
BOUND_PROFILE = "archon_bound_profile"  # request state: the profile a principal is bound to
ADMIN_STATE = "archon_admin"  # request state: True when the caller may call admin tools

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


_MESSAGES = {
    "missing_credentials": "credentials required",
    "invalid_service_token": "the X-Service-Auth token is not valid",
    "invalid_bearer_token": "the bearer token is not valid (signature, expiry, issuer or audience)",
    "unsupported_authorization": "this Authorization scheme is not accepted here",
    "repeated_credentials": "send each credential header once",
}


class HttpAuthMiddleware:
    """Pure ASGI (streams pass through untouched). Marks the request with
    `scope["state"]["authenticated"]` so health routes can decide what details to show, its
    principal, and `ADMIN_STATE` for the admin-tool policy (gateway/admin_policy.py)."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        audit: AuditSink,
        *,
        protect_metrics: bool = False,
        allow_health_check_bypass: bool = False,
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.audit = audit
        self.protect_metrics = protect_metrics
        self.allow_bypass = allow_health_check_bypass
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        state = scope.setdefault("state", {})
        state[ADMIN_STATE] = False
        if path.startswith(HOOKS_PREFIX):
            state["authenticated"] = not self.authenticator.required
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if not self.authenticator.required:
            await self._open(scope, receive, send, headers)
            return
        open_route = path in HEALTH_PATHS or (path == METRICS_PATH and not self.protect_metrics)
        probe_route = path in HEALTH_PATHS or path == METRICS_PATH
        bypass = self.allow_bypass and probe_route and _truthy(headers.get(BYPASS_HEADER))
        if bypass:
            decision = Decision(True, "health_check_bypass", "anonymous")
        elif open_route and not headers.get(SERVICE_HEADER) and not headers.get("authorization"):
            state["authenticated"] = False
            await self.app(scope, receive, send)
            return
        else:
            decision = await self.authenticator.decide(
                headers.get(SERVICE_HEADER, []), headers.get("authorization", [])
            )
        self.audit.record(
            AuditEvent(
                action="accept" if decision.accepted else "reject",
                transport="http",
                reason=decision.reason,
                principal=decision.principal,
                path=path,
                client=_client(scope),
                profile=decision.profile or "",
            )
        )
        state["authenticated"] = decision.accepted
        state["principal"] = decision.principal if decision.accepted else "anonymous"
        state[ADMIN_STATE] = decision.accepted and decision.admin
        if decision.accepted and decision.profile is not None:
            state[BOUND_PROFILE] = decision.profile
        if decision.accepted or open_route:
            await self.app(scope, receive, send)
            return
        if self.on_reject is not None:
            self.on_reject(decision.reason)
        await _unauthorized(send, decision.reason, self.authenticator.challenge(decision.reason))

    async def _open(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, list[bytes]]
    ) -> None:
        """No credentials required: everyone passes, and a caller presenting the admin
        token becomes the admin (audited); any other credential is ignored, as before."""
        state = scope["state"]
        state["authenticated"] = True
        if headers.get(SERVICE_HEADER) or headers.get("authorization"):
            decision = await self.authenticator.decide(
                headers.get(SERVICE_HEADER, []), headers.get("authorization", [])
            )
            if decision.accepted and decision.admin:
                state["principal"] = decision.principal
                state[ADMIN_STATE] = True
                self.audit.record(
                    AuditEvent(
                        "accept",
                        "http",
                        decision.reason,
                        decision.principal,
                        path=scope.get("path", ""),
                        client=_client(scope),
                    )
                )
        await self.app(scope, receive, send)


def _headers(scope: Scope) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for raw_name, value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        if name in (SERVICE_HEADER, "authorization", BYPASS_HEADER):
            found.setdefault(name, []).append(value)
    return found


def _truthy(values: list[bytes] | None) -> bool:
    return values is not None and values[-1].strip().lower() in (b"1", b"true", b"yes")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else ""


async def _unauthorized(send: Send, reason: str, challenge: str) -> None:
    payload = {"error": _MESSAGES.get(reason, "unauthorized"), "reason": reason}
    await send_json(send, 401, payload, [(b"www-authenticate", challenge.encode())])
