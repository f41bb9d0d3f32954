"""Effect node whose generation was cut off mid-stream."""

from omnibase_core.nodes.node_effect import NodeEffect


class NodeTruncatedEffect(NodeEffect):
    async def execute_effect(self, contract: dict) -> dict:
        result = {"ok": True,
        return result
