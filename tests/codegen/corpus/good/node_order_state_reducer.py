"""Reducer node: fold order events into the order's state."""

from __future__ import annotations

from dataclasses import dataclass, replace

from omnibase_core.models.container.model_onex_container import ModelONEXContainer
from omnibase_core.nodes.node_reducer import NodeReducer

TRANSITIONS = {
    ("created", "paid"): "paid",
    ("paid", "shipped"): "shipped",
    ("shipped", "delivered"): "delivered",
}


@dataclass(frozen=True)
class OrderState:
    order_id: str
    status: str = "created"
    events_seen: int = 0


class NodeOrderStateReducer(NodeReducer):
    """delta(state, event) -> new state; no I/O."""

    def __init__(self, container: ModelONEXContainer) -> None:
        super().__init__(container)

    async def execute_reduction(self, state: OrderState, event: dict[str, str]) -> OrderState:
        next_status = TRANSITIONS.get((state.status, event["type"]))
        if next_status is None:
            return replace(state, events_seen=state.events_seen + 1)
        return replace(state, status=next_status, events_seen=state.events_seen + 1)
