"""Settings, read only at the edge (the CLI) and passed inward as plain values.

Precedence, highest first: command-line flags, `ARCHON_*` environment variables, the TOML
config file (`--config PATH`, else `archon.toml` in the working directory), defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from json import JSONDecodeError
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from archon_gateway.catalog.profiles import (
    DEFAULT_PROFILE,
    PROFILE_NAME,
    CatalogMode,
    ProfileSettings,
)
from archon_gateway.core.config_files import UnusableFile, read_toml
from archon_gateway.core.errors import SettingsInvalid

ENV_PREFIX = "ARCHON_"
DEFAULT_CONFIG_NAME = "archon.toml"

Transport = Literal["stdio", "http", "both"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
AuthMode = Literal["none", "service", "service_or_user"]
StoreTable = Literal[
    "security_audit_log", "service_sessions", "connection_metrics", "event_metrics", "hook_events"
]
DEFAULT_RETENTION_DAYS: dict[StoreTable, float] = {
    "security_audit_log": 90,
    "service_sessions": 30,
    "connection_metrics": 14,
    "event_metrics": 14,
    "hook_events": 30,
}
DATABASE_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
# What a webhook may trigger; `restart_upstream:<name>` names the upstream.
HookAction = Annotated[str, StringConstraints(pattern=r"^(restart_upstream:[\w.-]+|none)$")]
# Allowed Host / Origin entries: a name or IP literal ([v6] in brackets), optional :port or :*.
_HOST_NAME = r"([A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(:([0-9]{1,5}|\*))?"
HostEntry = Annotated[str, StringConstraints(pattern=rf"^{_HOST_NAME}$")]
OriginEntry = Annotated[str, StringConstraints(pattern=rf"^https?://{_HOST_NAME}$")]


# Expensive native tools get a concurrency limit by default (admission control).
DEFAULT_TOOL_CONCURRENCY = {
    "code_correct": 2,
    "code_validate": 4,
    "code_analyze": 4,
    "mixin_recommend": 4,
}


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("archon-gateway", appauthor=False))


class Settings(BaseSettings):
    """Everything the gateway can be told. Field names are the TOML keys; env names add
    the `ARCHON_` prefix (`port` -> `ARCHON_PORT`)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    transport: Transport = Field(
        "stdio", description="stdio (launched by a desktop client), http, or both at once"
    )
    host: str = Field("127.0.0.1", min_length=1, description="HTTP bind address")
    port: int = Field(8787, ge=0, le=65535, description="HTTP port; 0 picks a free one")
    http_path: str = Field("/mcp", pattern=r"^/[A-Za-z0-9._~/-]*$", description="MCP endpoint")
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="where the gateway writes its store, vectors and upstream logs",
    )
    log_level: LogLevel = "info"
    log_file: Path | None = Field(None, description="log to this file instead of stderr")
    shutdown_grace: float = Field(
        1.0, gt=0, le=60, description="seconds open HTTP streams get to finish on shutdown"
    )
    max_message_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        description="largest JSON-RPC message accepted from a client (stdio line, HTTP body)",
    )
    qdrant_url: str | None = Field(
        None,
        description="Qdrant server for pattern vectors (e.g. http://127.0.0.1:6333); "
        "unset = embedded Qdrant Edge under data_dir",
    )
    qdrant_api_key: SecretStr | None = Field(None, description="API key for qdrant_url")
    patterns_collection: str = Field(
        "patterns", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="pattern vector collection"
    )
    patterns_batch_size: int = Field(
        64, ge=1, le=1024, description="patterns embedded and written per chunk (progress step)"
    )
    patterns_embed_timeout: float = Field(
        60.0, gt=0, le=3600, description="seconds one chunk of patterns may take to embed"
    )

    tool_timeout: float = Field(
        60.0, gt=0, description="seconds a tool call may run unless its manifest says otherwise"
    )
    upstreams: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per-upstream overrides ([upstreams.<name>] tables) over the manifests",
    )
    enable_external_gateway: bool = Field(
        True, description="start the stdio upstreams in the manifests (off: native tools only)"
    )
    upstream_list_wait: float = Field(
        10.0,
        ge=0,
        le=600,
        description="seconds a tools/list waits for upstreams that are still starting",
    )
    upstream_client_request_timeout: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="seconds a client may take to answer an upstream's sampling, elicitation "
        "or roots request before the upstream gets an error",
    )
    upstream_lazy_start: bool | None = Field(
        None,
        description="start an upstream on its first use or tools/list (default: on when "
        "serving stdio only, off when serving HTTP)",
    )
    fast_lane: bool = Field(
        True,
        description="serve calls of listed upstream tools on the lane (same middleware, "
        "no re-validation of the upstream's result); off sends every call through FastMCP",
    )
    upstream_idle_minutes: float | None = Field(
        None, gt=0, description="stop an upstream after this many minutes without calls"
    )
    upstream_ping_interval: float = Field(
        30.0, gt=0, description="seconds between MCP pings to each running upstream"
    )
    upstream_ping_timeout: float = Field(10.0, gt=0, description="seconds a ping may take")
    upstream_missed_pings: int = Field(
        3, ge=1, description="missed pings in a row after which an upstream is restarted"
    )
    upstream_restart_backoff: float = Field(
        0.5, gt=0, description="seconds before the first restart; doubles per crash"
    )
    upstream_restart_backoff_max: float = Field(
        30.0, gt=0, description="longest wait between restarts while not crash-looping"
    )
    upstream_crash_loop_restarts: int = Field(
        5, ge=1, description="crashes within the window that make an upstream crash-looping"
    )
    upstream_crash_loop_window: float = Field(
        120.0, gt=0, description="seconds over which crashes are counted"
    )
    upstream_crash_loop_retry: float = Field(
        300.0, gt=0, description="seconds between restart attempts while crash-looping"
    )
    upstream_keep_tools_when_down: bool = Field(
        True,
        description="keep listing a restarting upstream's last known tools (calls get a "
        "'retry in N s' error) instead of hiding them",
    )
    manifests_dir: Path | None = Field(
        None,
        description="use only the manifests in this folder (default: the shipped ones plus "
        "<data_dir>/manifests)",
    )
    watch_config: bool = Field(
        True,
        description="reload on changes to the manifest folders and the config file "
        "(SIGHUP and gateway_reload work either way)",
    )
    watch_config_quiet: float = Field(
        0.3,
        ge=0.05,
        le=60,
        description="seconds without further changes before a reload (bursts make one)",
    )
    codegen_max_input_bytes: int = Field(
        1_000_000, ge=1024, description="largest source the code_* tools accept, in bytes"
    )
    codegen_ruff_timeout: float = Field(
        10.0, gt=0, le=300, description="seconds one ruff run may take in the code_* tools"
    )
    tool_concurrency: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_TOOL_CONCURRENCY),
        description="calls of each named tool that may run at once; one more is refused "
        "as busy (admission control, docs/hardening.md)",
    )
    codegen_workers: int = Field(
        2, ge=1, le=64, description="worker processes for large code_* inputs (killed at the limit)"
    )
    codegen_offload_bytes: int = Field(
        64 * 1024,
        ge=0,
        description="code_* inputs at least this large run in a worker process, not a thread",
    )
    patterns_max_request_text_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="total pattern text one pattern_index call may carry"
    )
    http_header_timeout: float = Field(
        5.0, gt=0, le=600, description="seconds a client may take to send a request's headers"
    )
    http_body_timeout: float = Field(
        30.0, gt=0, le=3600, description="seconds a request body may stall between chunks"
    )
    http_keepalive_timeout: float = Field(
        5.0, gt=0, le=600, description="seconds an idle keep-alive connection stays open"
    )
    http_max_connections: int = Field(
        4096,
        ge=1,
        description="open HTTP connections at most; at the cap a new connection closes the "
        "one that has waited longest without sending a request, or is answered 503 when "
        "every connection has a request in flight",
    )
    http_max_requests: int = Field(
        512,
        ge=1,
        description="MCP POST/DELETE requests in flight at most; more are answered 503 "
        "(/health, /metrics and GET streams are not counted)",
    )
    http_session_idle_s: float = Field(
        1800.0,
        gt=0,
        description="seconds a handshake-era HTTP session may go without a request in flight "
        "before it is closed (its next request gets 404, so the client re-initializes)",
    )
    http_max_sessions: int = Field(
        1000,
        ge=1,
        description="handshake-era HTTP sessions open at most; at the cap the least recently "
        "used idle one is closed, or a new initialize gets 503 when none is idle",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="the event loop serving runs on: uvloop (libuv; used when installed) or "
        "Python's own asyncio loop",
    )
    http_stateless: bool = Field(
        False,
        description="keep no handshake-era sessions between HTTP requests (each request "
        "stands alone), for replicas behind a load balancer; 2026-07-28 clients never need one",
    )
    workflow_coordinator_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        description="base URL of the workflow coordinator (orchestrate_pattern_workflow)",
    )
    workflow_timeout: float = Field(
        600.0, gt=0, description="seconds one orchestrate_pattern_workflow call may take"
    )

    # Service auth, circuit breakers, health details (docs/auth-breakers-metrics.md).
    auth_mode: AuthMode | None = Field(
        None,
        description="none, service or service_or_user (default: service when a service "
        "token is set, service_or_user when JWT settings are set, else none)",
    )
    service_auth_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("ARCHON_SERVICE_AUTH_TOKEN", "service_auth_token"),
        description="token services send as X-Service-Auth (env SERVICE_AUTH_TOKEN too)",
    )
    service_auth_extra_tokens: list[SecretStr] = Field(
        default_factory=list,
        description="further service tokens accepted as well (rotation without downtime: "
        "docs/runbooks/rotate-service-token.md)",
    )
    auth_jwt_issuer: str | None = Field(None, description="required JWT issuer (iss)")
    auth_jwt_audience: str | None = Field(None, description="required JWT audience (aud)")
    auth_jwt_jwks_uri: str | None = Field(None, description="JWKS URL to verify bearer JWTs")
    auth_jwt_public_key: str | None = Field(None, description="PEM public key for bearer JWTs")
    auth_jwt_algorithm: str | None = Field(None, description="JWT algorithm (default RS256)")
    auth_protect_metrics: bool = Field(False, description="/metrics requires credentials")
    auth_protect_health_details: bool = Field(
        False, description="health component details require credentials (status stays open)"
    )
    auth_allow_health_check_bypass: bool = Field(
        False, description="X-Health-Check-Bypass: true opens protected health and /metrics"
    )
    auth_stdio_require_token: bool = Field(
        False, description="stdio clients must pass the service token as ARCHON_AUTH_STDIO_TOKEN"
    )
    auth_stdio_token: SecretStr | None = Field(
        None, description="the token a stdio client passes in the gateway's environment"
    )
    # Catalog mode and client profiles (docs/catalog.md).
    catalog_mode: CatalogMode = Field(
        "full",
        description="full (every tool listed), menu (three meta-tools: search, describe, "
        "call) or hybrid (the meta-tools plus each profile's pinned tools)",
    )
    profile: str | None = Field(
        None,
        pattern=PROFILE_NAME,
        description="the profile served on stdio and on the bare HTTP path (default: "
        "'default', every tool in catalog_mode)",
    )
    profiles: dict[str, ProfileSettings] = Field(
        default_factory=dict, description="[profiles.NAME] tables: per-client views"
    )
    service_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="service tokens bound to a profile (profile -> token), sent as "
        "X-Service-Auth; such a caller sees only that profile",
    )
    auth_jwt_profile_claim: str | None = Field(
        None, description="JWT claim naming the profile a user is bound to"
    )
    auth_admin_scope: str | None = Field(
        "archon:admin",
        min_length=1,
        max_length=200,
        description="JWT scope that lets a user call admin tools over HTTP (unset: none does)",
    )
    breakers_enabled: bool = Field(True, description="circuit breakers on upstreams/backends")
    breaker_fail_max: int = Field(5, ge=1, description="consecutive failures that open one")
    breaker_reset_timeout: float = Field(30.0, gt=0, description="seconds open before a trial")

    # The store (docs/store.md).
    store_enabled: bool = Field(True, description="keep the audit trail, sessions and metrics")
    database_url: SecretStr | None = Field(
        None,
        description="sqlite+aiosqlite:///<file> or postgresql+asyncpg://... "
        "(default: SQLite at <data_dir>/archon.db)",
    )
    store_queue_size: int = Field(
        10_000, ge=1, le=1_000_000, description="rows waiting to be written before new ones drop"
    )
    store_batch_size: int = Field(500, ge=1, le=10_000, description="rows written per batch")
    store_flush_interval: float = Field(
        0.2, gt=0, le=60, description="seconds the writer waits for a batch to fill"
    )
    store_shutdown_flush: float = Field(
        5.0, ge=0, le=300, description="seconds queued rows get to be written at shutdown"
    )
    store_migration_wait: float = Field(
        60.0, gt=0, description="seconds a gateway waits for another one's migration"
    )
    store_retention_days: dict[StoreTable, float] = Field(
        default_factory=lambda: dict(DEFAULT_RETENTION_DAYS),
        description="days rows are kept, per table (tables not named keep the default)",
    )
    store_purge_interval: float = Field(
        3600.0, gt=0, description="seconds between retention purges"
    )
    store_purge_batch: int = Field(1000, ge=1, description="rows deleted per purge statement")
    store_metrics_interval: float = Field(
        60.0, gt=0, le=3600, description="seconds per connection_metrics/event_metrics row"
    )
    node_heartbeat_timeout: float = Field(
        90.0, gt=0, description="seconds without a heartbeat after which a node is unhealthy"
    )
    hook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description="webhook sources and their HMAC secrets"
    )
    hook_max_bytes: int = Field(
        1_000_000, ge=1024, le=50_000_000, description="largest webhook body accepted"
    )
    hook_tolerance: float = Field(
        300.0, gt=0, description="seconds a webhook's X-Archon-Timestamp may be off"
    )
    hook_actions: dict[str, dict[str, HookAction]] = Field(
        default_factory=dict,
        description="per source, event name -> gateway action (restart_upstream:<name> or none)",
    )

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(DATABASE_SCHEMES):
            raise ValueError("must start with " + " or ".join(DATABASE_SCHEMES))
        return value

    @field_validator("store_retention_days")
    @classmethod
    def _retention_over_defaults(cls, value: dict[StoreTable, float]) -> dict[StoreTable, float]:
        if any(days <= 0 for days in value.values()):
            raise ValueError("retention days must be above 0")
        return {**DEFAULT_RETENTION_DAYS, **value}

    # Kafka events (docs/events.md). Unset bootstrap servers: the in-process bus.
    kafka_bootstrap_servers: str | None = Field(
        None, description="Kafka brokers, host:port[,host:port]; unset = in-process event bus"
    )
    kafka_group_id: str = Field(
        "archon-gateway", min_length=1, description="consumer group the gateways share"
    )
    kafka_topic_prefix: str = Field(
        "archon", pattern=r"^[A-Za-z0-9._-]{1,100}$", description="prefix of every topic name"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="how to reach the brokers"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism (with SASL_* protocols)"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate (mutual TLS)")
    kafka_ssl_keyfile: Path | None = Field(None, description="client certificate's key")
    kafka_topic_partitions: int = Field(
        6, ge=1, le=1000, description="partitions of the topics the gateway creates"
    )
    kafka_replication_factor: int = Field(
        1, ge=1, le=10, description="replication factor of the topics the gateway creates"
    )
    kafka_session_timeout: float = Field(
        10.0, ge=1, le=300, description="seconds of silence before the group drops a gateway"
    )
    kafka_max_attempts: int = Field(
        3, ge=1, le=100, description="handler attempts before an event goes to the DLQ"
    )
    kafka_retry_backoff: float = Field(
        0.5, gt=0, le=60, description="seconds before the first retry; doubles per attempt"
    )
    kafka_concurrency: int = Field(
        256, ge=1, le=10_000, description="events handled at once, in all"
    )
    kafka_partition_concurrency: int = Field(
        256,
        ge=1,
        le=10_000,
        description="events of one partition in flight (same key: one at a time); more "
        "pauses fetching from it",
    )
    kafka_max_buffered: int = Field(
        5000, ge=1, description="events fetched and unfinished before fetching pauses"
    )
    kafka_max_event_bytes: int = Field(
        1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="largest event accepted"
    )
    kafka_recent_ids: int = Field(
        100_000, ge=0, description="event ids remembered to skip duplicates"
    )
    kafka_admin_events: bool = Field(
        True,
        description="handle gateway-admin events (breaker reset/open, upstream restart)",
    )

    # DNS-rebinding protection (docs/hardening.md#dns-rebinding-host-and-origin).
    allowed_hosts: list[HostEntry] = Field(
        default_factory=list,
        max_length=256,
        description="Host header values accepted besides 127.0.0.1, localhost and [::1] "
        "with the bound port (name:port, or name:* for any port); needed when HTTP is bound "
        "to a non-loopback address without auth",
    )
    allowed_origins: list[OriginEntry] = Field(
        default_factory=list,
        max_length=256,
        description="Origin header values accepted besides http://127.0.0.1, localhost and "
        "[::1] with the bound port (scheme://name:port, or :* for any port); requests "
        "without Origin always pass",
    )

    @field_validator("service_auth_token", "auth_stdio_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (the value is not shown)")
        return value

    @field_validator("service_tokens")
    @classmethod
    def _bound_tokens_long_enough(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for profile, token in value.items():
            if len(token.get_secret_value()) < 16:
                raise ValueError(
                    f"the token of profile '{profile}' must be at least 16 characters "
                    "(the value is not shown)"
                )
        return value

    @model_validator(mode="after")
    def _profiles_are_known(self) -> Settings:
        known = {*self.profiles, DEFAULT_PROFILE}
        for profile in self.profiles:
            if not re.match(PROFILE_NAME, profile):
                raise ValueError(f"profile name '{profile}' may use only letters, digits, _, -")
        for name in (self.profile, *self.service_tokens):
            if name is not None and name not in known:
                raise ValueError(
                    f"no profile named '{name}' (profiles: {', '.join(sorted(known))})"
                )
        return self

    @field_validator("service_auth_extra_tokens")
    @classmethod
    def _all_long_enough(cls, values: list[SecretStr]) -> list[SecretStr]:
        if any(len(value.get_secret_value()) < 16 for value in values):
            raise ValueError("each must be at least 16 characters (the values are not shown)")
        return values

    @model_validator(mode="after")
    def _auth_is_complete(self) -> Settings:
        has_jwt_key = bool(self.auth_jwt_jwks_uri or self.auth_jwt_public_key)
        has_service_token = self.service_auth_token is not None or bool(self.service_tokens)
        if self.auth_mode == "service" and not has_service_token:
            raise ValueError("auth_mode 'service' needs SERVICE_AUTH_TOKEN")
        if self.auth_mode == "service_or_user" and not has_jwt_key:
            raise ValueError("auth_mode 'service_or_user' needs auth_jwt_jwks_uri or _public_key")
        if self.auth_stdio_require_token and self.service_auth_token is None:
            raise ValueError("auth_stdio_require_token needs SERVICE_AUTH_TOKEN")
        return self

    @property
    def effective_auth_mode(self) -> AuthMode:
        if self.auth_mode is not None:
            return self.auth_mode
        if self.auth_jwt_jwks_uri or self.auth_jwt_public_key:
            return "service_or_user"
        has_service_token = self.service_auth_token is not None or bool(self.service_tokens)
        return "service" if has_service_token else "none"

    @field_validator("transport", "log_level", mode="before")
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def default_profile(self) -> str:
        return self.profile or DEFAULT_PROFILE

    @property
    def serves_stdio(self) -> bool:
        return self.transport in ("stdio", "both")

    @property
    def serves_http(self) -> bool:
        return self.transport in ("http", "both")

    @property
    def lazy_upstreams(self) -> bool:
        """Lazy start by default for a desktop client's stdio gateway (it should answer
        initialize at once); eager for an HTTP service (ready before traffic arrives)."""
        if self.upstream_lazy_start is not None:
            return self.upstream_lazy_start
        return not self.serves_http

    @property
    def transports(self) -> list[str]:
        return [
            name for name, on in (("stdio", self.serves_stdio), ("http", self.serves_http)) if on
        ]


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        return read_toml(path)
    except UnusableFile as exc:
        # "config file X does not exist", "... is not valid TOML: ...", "... cannot be read: ..."
        verb = "is " if exc.unparsable else ""
        raise SettingsInvalid(f"config file {path} {verb}{exc.reason}") from exc


def _describe(error: Mapping[str, Any], config_path: Path | None) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "settings"
    if error["type"] == "extra_forbidden":
        where = f" in {config_path}" if config_path else ""
        known = ", ".join(sorted(Settings.model_fields))
        return f"unknown setting '{field}'{where}; known settings: {known}"
    name = field.lower().removeprefix(ENV_PREFIX.lower())
    secret = "SecretStr" in str(getattr(Settings.model_fields.get(name), "annotation", ""))
    if not error["loc"] or secret:
        # Secrets are never shown; model-level errors carry every value (secrets too) as input.
        return f"invalid setting '{name}': {error['msg'].removeprefix('Value error, ')}"
    env_name = ENV_PREFIX + field.upper()
    return f"invalid setting '{field}' ({env_name}) = {error['input']!r}: {error['msg']}"


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build Settings from flags (`overrides`, None values ignored), env and config file.

    Raises SettingsInvalid with a one-line message naming the field and what it accepts.
    """
    config_path = config_file
    if config_path is None:
        candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
        config_path = candidate if candidate.is_file() else None
    file_values = _read_config_file(config_path) if config_path else {}
    flag_values = {key: value for key, value in (overrides or {}).items() if value is not None}

    class _Configured(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, InitSettingsSource(settings_cls, file_values))

    try:
        return _Configured(**flag_values)
    except ValidationError as exc:
        message = "; ".join(_describe(error, config_path) for error in exc.errors())
        # from None: pydantic's error quotes the input values, which may be secrets.
        raise SettingsInvalid(message) from None
    except SettingsError as exc:
        raise SettingsInvalid(_describe_unparsable(exc)) from None


# pydantic-settings names the field it could not decode only in its message.
_UNPARSABLE_FIELD = re.compile(r'field "(\w+)"')


def _describe_unparsable(exc: SettingsError) -> str:
    """One line for a JSON-valued setting whose environment value is not JSON: the
    variable and where the JSON broke, never the value (it may hold tokens)."""
    found = _UNPARSABLE_FIELD.search(str(exc))
    name = found.group(1) if found else "settings"
    cause = exc.__cause__
    where = f" ({cause.msg} at character {cause.pos})" if isinstance(cause, JSONDecodeError) else ""
    env_name = ENV_PREFIX + name.upper()
    return f"invalid setting '{name}' ({env_name}): not valid JSON{where}"


def unknown_env_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """`ARCHON_*` variables that match no setting: most often a typo worth a warning."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    env = os.environ if environ is None else environ
    return sorted(name for name in env if name.startswith(ENV_PREFIX) and name not in known)
