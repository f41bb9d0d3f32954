"""Service auth: decisions and audit (`decisions`, `audit`), the ASGI layer in front of every
HTTP route (`http_guard`), and the stdio check (`gateway/call_steps/stdio_auth.py`).

HTTP: a pure ASGI middleware in front of every route decides before any MCP or tool work:
- `X-Service-Auth: <token>` equal (constant time) to the service token -> a service caller;
- else, with user auth configured, `Authorization: Bearer <JWT>` checked by FastMCP's
  JWTVerifier (signature, expiry, issuer, audience) -> a user;
- else 401 with `WWW-Authenticate` naming what is accepted.
`auth_mode` decides what is required: none (everything open), service (service token
only), service_or_user (service token or a valid JWT).
The local admin token (`admin_token`, `<data_dir>/admin-token`) is accepted in every mode,
as X-Service-Auth or Bearer. The guard records on the request whether the caller is an
admin (service token, admin token, or a JWT with the admin scope) for the admin-tool policy
(`gateway/admin_policy.py`).

Open routes: `/health` and `/health/ready` always answer (liveness/readiness probes); their
component details and `/metrics` can be protected. `X-Health-Check-Bypass: true` opens
those only when `allow_health_check_bypass` is on, and never the MCP endpoint.

stdio is a local transport owned by the process that launched the gateway: trusted by
default. With `stdio_require_token`, the launcher must pass the service token in the
gateway's environment (ARCHON_AUTH_STDIO_TOKEN); otherwise every stdio request is refused.

Tokens are never logged, echoed in errors, used as metric labels or forwarded upstream:
audit events name the caller kind and JWT subject, never a credential.
"""
