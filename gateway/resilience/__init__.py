"""Resilience parts shared by every outbound call: circuit breakers and the HTTP client."""

from gateway.resilience.breaker import (
    BreakerListener,
    BreakerRegistry,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
)
from gateway.resilience.http_client import (
    BackendTimeout,
    create_http_client,
    http_errors,
    raise_for_unavailable,
)

__all__ = [
    "BackendTimeout",
    "BreakerListener",
    "BreakerRegistry",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "create_http_client",
    "http_errors",
    "raise_for_unavailable",
]
