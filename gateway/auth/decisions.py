"""Who is calling: the service token (constant-time), a user's JWT (FastMCP's verifier),
or the stdio launcher; each answer is a Decision with a reason for the audit trail."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import SecretStr

AuthMode = Literal["none", "service", "service_or_user"]


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reason: str
    principal: str = "anonymous"
    # The catalog profile this principal is bound to (a profile's token, a JWT claim).
    profile: str | None = None
    # May call admin tools over HTTP: the service token, the local admin token, or a JWT
    # with the admin scope (a profile-bound token never: it is a narrowed client).
    admin: bool = False


class TokenVerifier(Protocol):
    async def verify_token(self, token: str) -> Any: ...


def tokens_match(given: str | bytes | None, expected: SecretStr | None) -> bool:
    """Constant-time comparison (in the length of the expected token)."""
    if given is None or expected is None:
        return False
    given_bytes = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(given_bytes, expected.get_secret_value().encode())


def any_token_matches(given: str | bytes | None, accepted: Sequence[SecretStr | None]) -> bool:
    """Constant-time against each accepted token; every one is compared (no early exit), so
    the time does not tell which one matched."""
    results = [tokens_match(given, expected) for expected in accepted]
    return any(results)


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
        also_accepted: Sequence[SecretStr] = (),
        *,
        profile_tokens: Mapping[str, SecretStr] | None = None,
        profile_claim: str | None = None,
        admin_token: SecretStr | None = None,
        admin_scope: str | None = None,
    ) -> None:
        """`also_accepted`: further service tokens accepted too (a rotation's old or new
        token, so rotating needs no downtime). `profile_tokens` are service tokens bound to
        a profile (profile -> token); `profile_claim` names the JWT claim that binds a user
        to a profile. `admin_token` (the local one, gateway/auth/admin_token.py) is accepted
        as X-Service-Auth or Bearer whatever the mode; a JWT carrying `admin_scope` is an
        admin."""
        self._profile_tokens = dict(profile_tokens or {})
        self._profile_claim = profile_claim
        self._admin_token = admin_token
        self._admin_scope = admin_scope
        if mode == "service" and service_token is None and not self._profile_tokens:
            raise ValueError("auth mode 'service' needs a service token")
        if mode == "service_or_user" and verifier is None:
            raise ValueError("auth mode 'service_or_user' needs a JWT verifier")
        self.mode = mode
        self._service_tokens = [service_token, *also_accepted] if service_token else []
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
        admin = self._admin_token_given(service, authorization)
        if admin is not None:
            return admin
        if service:
            if any_token_matches(service[0], self._service_tokens):
                return Decision(True, "service_token", "service", admin=True)
            # Every bound token is compared, so timing does not tell which one matched.
            matched = [
                profile
                for profile, token in self._profile_tokens.items()
                if tokens_match(service[0], token)
            ]
            if matched:
                return Decision(True, "profile_token", f"service:{matched[0]}", matched[0])
            if self._verifier is None or not authorization:
                return Decision(False, "invalid_service_token")
        if authorization and self._verifier is not None:
            scheme, _, token = authorization[0].decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return Decision(False, "unsupported_authorization")
            access = await self._verifier.verify_token(token.strip())
            if access is None:
                return Decision(False, "invalid_bearer_token")
            user = f"user:{access.claims.get('sub', '?')}"
            bound = access.claims.get(self._profile_claim) if self._profile_claim else None
            is_admin = self._admin_scope is not None and self._admin_scope in access.scopes
            profile = str(bound) if bound is not None else None
            return Decision(True, "user_jwt", user, profile, admin=is_admin)
        if authorization:
            return Decision(False, "unsupported_authorization")
        return Decision(False, "missing_credentials")

    def _admin_token_given(
        self, service: list[bytes], authorization: list[bytes]
    ) -> Decision | None:
        """The local admin token as X-Service-Auth or as a Bearer token; both headers are
        compared (constant time), so timing does not tell which one carried it."""
        if self._admin_token is None:
            return None
        bearer = _bearer(authorization[0]) if authorization else None
        matches = [tokens_match(given, self._admin_token) for given in (*service, bearer)]
        return Decision(True, "admin_token", "admin", admin=True) if any(matches) else None


def _bearer(header: bytes) -> str | None:
    scheme, _, token = header.decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def stdio_decision(
    require_token: bool,
    given: SecretStr | None,
    expected: SecretStr | None,
    also_accepted: Sequence[SecretStr] = (),
) -> Decision:
    """Decided once at start: the stdio client is the process that launched the gateway."""
    if not require_token:
        return Decision(True, "stdio_trusted", "local")
    if given is None:
        return Decision(False, "missing_credentials")
    accepted = [expected, *also_accepted] if expected is not None else []
    if any_token_matches(given.get_secret_value(), accepted):
        return Decision(True, "service_token", "service")
    return Decision(False, "invalid_service_token")
