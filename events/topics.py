"""Topic names, all under one prefix (`archon` by default)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

# The request/response pairs the handlers serve (`<prefix>.<name>.request.v1`).
SERVICES = (
    "codegen-validation",
    "analysis",
    "pattern",
    "mixin",
    "node-registry",
    "gateway-admin",
)


@dataclass(frozen=True)
class Topics:
    prefix: str = "archon"

    def request(self, service: str) -> str:
        return f"{self.prefix}.{service}.request.v1"

    def response(self, service: str) -> str:
        return f"{self.prefix}.{service}.response.v1"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq.v1"

    @property
    def lifecycle(self) -> str:
        return f"{self.prefix}.gateway.lifecycle.v1"

    def service_of(self, request_topic: str) -> str | None:
        return _services_by_request_topic(self.prefix).get(request_topic)

    def all(self, services: tuple[str, ...] = SERVICES) -> list[str]:
        """Every topic the gateway uses, to create at start."""
        names = [self.request(s) for s in services] + [self.response(s) for s in services]
        return [*names, self.dlq, self.lifecycle]


@cache
def _services_by_request_topic(prefix: str) -> dict[str, str]:
    """Looked up for every event consumed: built once per prefix."""
    return {Topics(prefix).request(service): service for service in SERVICES}
