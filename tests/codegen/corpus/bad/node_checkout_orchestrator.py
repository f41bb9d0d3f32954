"""Orchestrator: checkout."""

from typing import Any


class NodeCheckoutOrchestrator:
    def execute_orchestration(self, contract: dict[str, Any], steps: list = []) -> list:
        if contract.get("order_id") == None:
            raise ValueError(f"order_id is required")
        for step in steps or ["price", "reserve", "charge"]:
            print(f"step {step}")
        return steps
