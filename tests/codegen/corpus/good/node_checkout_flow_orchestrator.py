"""Orchestrator node: run checkout as price -> reserve -> charge, emitting intents."""

from __future__ import annotations

from typing import Any

from omnibase_core.models.container.model_onex_container import ModelONEXContainer
from omnibase_core.nodes.node_orchestrator import NodeOrchestrator

STEPS = ("price_cart", "reserve_stock", "charge_card")


class NodeCheckoutFlowOrchestrator(NodeOrchestrator):
    """Emits one intent per step; never returns business results itself."""

    def __init__(self, container: ModelONEXContainer) -> None:
        super().__init__(container)

    async def execute_orchestration(self, contract: dict[str, Any]) -> list[dict[str, Any]]:
        order_id = contract["order_id"]
        intents: list[dict[str, Any]] = []
        for position, step in enumerate(STEPS):
            intents.append({"step": step, "order_id": order_id, "position": position})
        return intents
