"""Effect node: fetch a user profile from the profile service."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from omnibase_core.models.container.model_onex_container import ModelONEXContainer
from omnibase_core.nodes.node_effect import NodeEffect

logger = logging.getLogger(__name__)


class NodeUserProfileEffect(NodeEffect):
    """Reads a profile over HTTP; the request is the only side effect."""

    def __init__(self, container: ModelONEXContainer) -> None:
        super().__init__(container)
        self._client = httpx.AsyncClient(base_url="http://profiles.internal", timeout=10.0)

    async def execute_effect(self, contract: dict[str, Any]) -> dict[str, Any]:
        user_id = contract["user_id"]
        try:
            response = await self._client.get(f"/users/{user_id}")
            response.raise_for_status()
        except httpx.HTTPError as exc:
            logger.warning("profile fetch failed for %s: %s", user_id, exc)
            raise
        profile: dict[str, Any] = response.json()
        return {"user_id": user_id, "profile": profile}
