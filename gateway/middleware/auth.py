"""Service auth at the HTTP front door, and the optional token check for stdio.

HTTP: a pure ASGI middleware in front of every route decides before any MCP or tool work:
- `X-Service-Auth: <token>` equal (constant time) to the service token -> a service caller;
- else, with user auth configured, `Authorization: Bearer <JWT>` checked by FastMCP's
  JWTVerifier (signature, expiry, issuer, audience) -> a user;
- else 401 with `WWW-Authenticate` naming what is accepted.
`auth_mode` decides what is required: none (everything open), service (service token
only), service_or_user (service token or a valid JWT).

Open routes: `/health` and `/health/ready` always answer (liveness/readiness probes); their
component details and `/metrics` can be protected. `X-Health-Check-Bypass: true` opens
those only when `allow_health_check_bypass` is on, and never the MCP endpoint.

stdio is a local transport owned by the process that launched the gateway: trusted by
default. With `stdio_require_token`, the launcher must pass the service token in the
gateway's environment (ARCHON_AUTH_STDIO_TOKEN); otherwise every stdio request is refused.

Tokens are never logged, echoed in errors, used as metric labels or forwarded upstream:
audit events name the caller kind and JWT subject, never a credential.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import mcp_types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from mcp import MCPError
from pydantic import SecretStr

from archon_gateway.gateway.core.errors import AuthRejected

AuthMode = Literal["none", "service", "service_or_user"]
SERVICE_HEADER = "x-service-auth"
BYPASS_HEADER = "x-health-check-bypass"
HEALTH_PATHS = frozenset({"/health", "/health/ready"})
METRICS_PATH = "/metrics"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

audit_log = logging.getLogger("archon_gateway.audit")


# --- audit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEvent:
    """One auth decision. Never holds a credential."""

    action: Literal["accept", "reject"]
    transport: str
    reason: str  # service_token, user_jwt, bypass, missing, invalid_service_token, ...
    principal: str = "anonymous"  # "service", "user:<sub>", "anonymous"
    path: str = ""
    client: str = ""
    at: float = field(default_factory=time.time)


class AuditSink(Protocol):
    def record(self, event: AuditEvent) -> None: ...


class LogAuditSink:
    """Until the store persists them: one JSON line per event on the `gateway.audit` logger
    (accepts at debug, rejects at warning, so a busy gateway does not flood its log)."""

    def record(self, event: AuditEvent) -> None:
        level = logging.DEBUG if event.action == "accept" else logging.WARNING
        if audit_log.isEnabledFor(level):
            audit_log.log(level, "audit %s", json.dumps(asdict(event), sort_keys=True))


# --- decisions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reason: str
    principal: str = "anonymous"


class TokenVerifier(Protocol):
    async def verify_token(self, token: str) -> Any: ...


def tokens_match(given: str | bytes | None, expected: SecretStr | None) -> bool:
    """Constant-time comparison (in the length of the expected token)."""
    if given is None or expected is None:
        return False
    given_bytes = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(given_bytes, expected.get_secret_value().encode())


def jwt_verifier(
    *,
    issuer: str | None,
    audience: str | None,
    jwks_uri: str | None,
    public_key: str | None,
    algorithm: str | None,
) -> TokenVerifier | None:
    """FastMCP's JWTVerifier, imported only when user auth is configured."""
    if not (jwks_uri or public_key):
        return None
    from fastmcp.server.auth.providers.jwt import JWTVerifier

    return JWTVerifier(
        public_key=public_key,
        jwks_uri=jwks_uri,
        issuer=issuer,
        audience=audience,
        algorithm=algorithm,
    )


class Authenticator:
    def __init__(
        self,
        mode: AuthMode,
        service_token: SecretStr | None = None,
        verifier: TokenVerifier | None = None,
    ) -> None:
        if mode == "service" and service_token is None:
            raise ValueError("auth mode 'service' needs a service token")
        if mode == "service_or_user" and verifier is None:
            raise ValueError("auth mode 'service_or_user' needs a JWT verifier")
        self.mode = mode
        self._service_token = service_token
        self._verifier = verifier if mode == "service_or_user" else None

    @property
    def required(self) -> bool:
        return self.mode != "none"

    def challenge(self, reason: str) -> str:
        """The WWW-Authenticate value: every scheme this gateway accepts."""
        challenges = ['X-Service-Auth realm="archon"']
        if self._verifier is not None:
            error = ', error="invalid_token"' if reason == "invalid_bearer_token" else ""
            challenges.append(f'Bearer realm="archon"{error}')
        return ", ".join(challenges)

    async def decide(self, service: list[bytes], authorization: list[bytes]) -> Decision:
        if len(service) > 1 or len(authorization) > 1:
            return Decision(False, "repeated_credentials")
        if service:
            if tokens_match(service[0], self._service_token):
                return Decision(True, "service_token", "service")
            if self._verifier is None or not authorization:
                return Decision(False, "invalid_service_token")
        if authorization and self._verifier is not None:
            scheme, _, token = authorization[0].decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return Decision(False, "unsupported_authorization")
            access = await self._verifier.verify_token(token.strip())
            if access is None:
                return Decision(False, "invalid_bearer_token")
            return Decision(True, "user_jwt", f"user:{access.claims.get('sub', '?')}")
        if authorization:
            return Decision(False, "unsupported_authorization")
        return Decision(False, "missing_credentials")


_MESSAGES = {
    "missing_credentials": "credentials required",
    "invalid_service_token": "the X-Service-Auth token is not valid",
    "invalid_bearer_token": "the bearer token is not valid (signature, expiry, issuer or audience)",
    "unsupported_authorization": "this Authorization scheme is not accepted here",
    "repeated_credentials": "send each credential header once",
}


class HttpAuthMiddleware:
    """Pure ASGI (streams pass through untouched). Marks the request with
    `scope["state"]["authenticated"]` so health routes can decide what details to show."""

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
        if not self.authenticator.required:
            state["authenticated"] = True
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
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
            )
        )
        state["authenticated"] = decision.accepted
        if decision.accepted or open_route:
            await self.app(scope, receive, send)
            return
        if self.on_reject is not None:
            self.on_reject(decision.reason)
        await _unauthorized(send, decision.reason, self.authenticator.challenge(decision.reason))


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
    body = json.dumps({"error": _MESSAGES.get(reason, "unauthorized"), "reason": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- stdio ------------------------------------------------------------------------------


def stdio_decision(
    require_token: bool, given: SecretStr | None, expected: SecretStr | None
) -> Decision:
    """Decided once at start: the stdio client is the process that launched the gateway."""
    if not require_token:
        return Decision(True, "stdio_trusted", "local")
    if given is None:
        return Decision(False, "missing_credentials")
    if tokens_match(given.get_secret_value(), expected):
        return Decision(True, "service_token", "service")
    return Decision(False, "invalid_service_token")


STDIO_REFUSED = (
    "this gateway requires a token on stdio: pass the service token as "
    "ARCHON_AUTH_STDIO_TOKEN in the server's env (client config)"
)


class StdioAuthMiddleware(Middleware):
    """Refuses every stdio request but `initialize` (so the client can show the error) when
    the stdio decision was a reject. Sits inside the metrics middleware, so refused tool
    calls count as `rejected`."""

    def __init__(self, decision: Decision, audit: AuditSink) -> None:
        self.decision = decision
        self.audit = audit

    async def on_request(
        self,
        context: MiddlewareContext[mt.Request[Any, Any]],
        call_next: CallNext[mt.Request[Any, Any], Any],
    ) -> Any:
        fastmcp_context = context.fastmcp_context
        transport = fastmcp_context.transport if fastmcp_context else None
        if self.decision.accepted or transport != "stdio" or context.method == "initialize":
            return await call_next(context)
        reason, method = self.decision.reason, context.method or ""
        self.audit.record(AuditEvent("reject", "stdio", reason, path=method))
        if context.method == "tools/call":
            raise AuthRejected(STDIO_REFUSED)
        raise MCPError(-32001, STDIO_REFUSED)
