"""Reducer node for order state."""

from omnibase_core.nodes.node_reducer import NodeReducer


class OrderStateReducer(NodeReducer):
    """Folds events into state."""

    def reduce(self, state: dict, event: dict) -> dict:
        status = state.get("status", "created")
        if (status, event["type"]) == ("created", "paid"):
            return {**state, "status": "paid"}
        return state


def initial_state(order_id: str):
    return {"order_id": order_id, "status": "created"}
