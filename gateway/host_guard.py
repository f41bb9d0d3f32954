"""DNS-rebinding protection: the outermost HTTP layer checks `Host` and `Origin`.

A web page can rebind its own name to 127.0.0.1 and have the browser call the gateway; the
request then carries that name in `Host` and the page's origin in `Origin`. So every route
refuses a `Host` that is not an allowed host (421) and an `Origin` that is not an allowed
origin (403), each with a one-line JSON body. A request without `Origin` (CLIs, SDK
clients) passes. A bare liveness or readiness probe (`GET /health`, `/health/ready`) with an
unknown `Host` is still answered, status only, so load balancers can probe by IP.

Entries match exactly and case-insensitively; `name:*` matches `name` with any port (or
none). Loopback names and the bound address, with the bound port, are always allowed; see
`host_policy` for the rest (docs/hardening.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from archon_gateway.core.errors import SettingsInvalid
from archon_gateway.gateway.asgi_replies import send_json

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
PROBE_PATHS = frozenset({"/health", "/health/ready"})
# Request state: False when a probe was let through with a Host that is not allowed; the
# health routes then answer status only.
HOST_VERIFIED = "archon_host_verified"
_SHOWN = 100  # characters of a refused header value echoed back
_ONE_HOST = "send exactly one Host header"


@dataclass(frozen=True)
class HostRules:
    """What the operator configured (plain values from the settings): extra allowed hosts
    and origins, and whether HTTP auth is on (then a non-loopback bind may go without
    allowed hosts)."""

    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    auth_required: bool = False


@dataclass(frozen=True)
class HostPolicy:
    """The checks for one bound address. `hosts` None: the Host header is not checked."""

    hosts: frozenset[str] | None
    origins: frozenset[str]

    def host_allowed(self, host: str) -> bool:
        return self.hosts is None or _matches(host, self.hosts)

    def origin_allowed(self, origin: str) -> bool:
        return _matches(origin, self.origins)


def is_loopback(address: str) -> bool:
    """An IP literal (IPv4-mapped too) on the loopback interface, or `localhost`."""
    if address.strip("[]").lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def host_policy(rules: HostRules, bound_host: str, bound_port: int) -> HostPolicy:
    """The policy for a listener bound to `bound_host:bound_port` (the real port, after
    binding). Loopback names and the bound address itself with that port are always
    allowed, as hosts and as `http://` origins (a rebound page carries its own name, never
    these), plus the configured ones. Bound to a non-loopback address, allowed hosts are
    needed (names the gateway is reached by cannot be guessed): without them, with auth on,
    the Host header is not checked (Origin still is); without auth, SettingsInvalid."""
    names = [*LOOPBACK_NAMES]
    literal = f"[{bound_host}]" if ":" in bound_host else bound_host
    if literal not in names and not _unspecified(bound_host):
        names.append(literal)  # e.g. 127.0.0.2, or 10.0.0.5 for `archon-gateway reload`
    hosts = {f"{name}:{bound_port}" for name in names} | _normalized(rules.allowed_hosts)
    origins = {f"http://{name}:{bound_port}" for name in names}
    origins |= _normalized(rules.allowed_origins)
    if is_loopback(bound_host) or rules.allowed_hosts:
        return HostPolicy(frozenset(hosts), frozenset(origins))
    if not rules.auth_required:
        raise SettingsInvalid(bind_needs_hosts(bound_host))
    return HostPolicy(None, frozenset(origins))


def bind_needs_hosts(bound_host: str) -> str:
    return (
        f"HTTP is bound to {bound_host}, not loopback: Host checking (DNS-rebinding "
        "protection) needs allowed_hosts (ARCHON_ALLOWED_HOSTS, a JSON list such as "
        '["gateway.example.com:8787"]), or turn on auth (SERVICE_AUTH_TOKEN / JWT settings)'
    )


def host_check_off(bound_host: str) -> str:
    return (
        f"HTTP is bound to {bound_host} with auth on and no allowed_hosts: the Host header "
        "is not checked (Origin still is); set allowed_hosts (ARCHON_ALLOWED_HOSTS) to check it"
    )


class HostGuard:
    """Pure ASGI (streams pass through untouched); refuses before any other layer runs."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        hosts, origins = _host_and_origin(scope)
        host_ok = self.policy.hosts is None or (
            len(hosts) == 1 and self.policy.host_allowed(hosts[0])
        )
        refusal: tuple[int, str, str] | None = None
        if not host_ok and not _bare_probe(scope):
            message = _refused("Host", hosts[0], "hosts") if len(hosts) == 1 else _ONE_HOST
            refusal = (421, "host_not_allowed", message)
        elif len(origins) > 1:
            refusal = (403, "origin_not_allowed", "send at most one Origin header")
        elif origins and not self.policy.origin_allowed(origins[0]):
            refusal = (403, "origin_not_allowed", _refused("Origin", origins[0], "origins"))
        if refusal is None:
            if not host_ok:  # a bare probe: answered, status only
                scope.setdefault("state", {})[HOST_VERIFIED] = False
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            status, reason, message = refusal
            await send_json(send, status, {"error": message, "reason": reason})


def _unspecified(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip("[]")).is_unspecified
    except ValueError:
        return False


def _matches(value: str, allowed: frozenset[str]) -> bool:
    value = value.strip().lower()
    if value in allowed:
        return True
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit() and f"{name}:*" in allowed:
        return True
    return f"{value}:*" in allowed  # no port at all


def _normalized(entries: Iterable[str]) -> set[str]:
    return {entry.strip().lower().rstrip("/") for entry in entries if entry.strip()}


def _host_and_origin(scope: Scope) -> tuple[list[str], list[str]]:
    hosts: list[str] = []
    origins: list[str] = []
    for name, value in scope.get("headers", ()):  # ASGI header names are lowercase
        if name == b"host":
            hosts.append(value.decode("latin-1"))
        elif name == b"origin":
            origins.append(value.decode("latin-1"))
    return hosts, origins


def _bare_probe(scope: Scope) -> bool:
    return (
        scope["type"] == "http"
        and scope["method"] in ("GET", "HEAD")
        and (scope.get("path", "") in PROBE_PATHS)
    )


def _refused(header: str, value: str, kind: str) -> str:
    shown = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
    setting = f"allowed_{kind}"
    where = f"{setting} (ARCHON_{setting.upper()})"
    return f"{header} {shown!r} is not one of the allowed {kind}; add it to {where} if it is yours"
