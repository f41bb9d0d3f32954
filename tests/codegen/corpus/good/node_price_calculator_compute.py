"""Compute node: price a cart (pure, deterministic)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from omnibase_core.models.container.model_onex_container import ModelONEXContainer
from omnibase_core.nodes.node_compute import NodeCompute

TAX_RATES = {"DE": Decimal("0.19"), "FR": Decimal("0.20"), "US": Decimal("0.00")}


def _line_total(price: Decimal, quantity: int, discount: Decimal) -> Decimal:
    return price * quantity * (Decimal(1) - discount)


class NodePriceCalculatorCompute(NodeCompute):
    """Totals the cart lines and applies the country's tax rate."""

    def __init__(self, container: ModelONEXContainer) -> None:
        super().__init__(container)

    async def execute_compute(self, contract: dict[str, object]) -> dict[str, str]:
        lines = contract["lines"]
        assert isinstance(lines, list)
        subtotal = sum(
            (
                _line_total(Decimal(str(item["price"])), int(item["quantity"]), Decimal("0"))
                for item in lines
            ),
            Decimal(0),
        )
        rate = TAX_RATES.get(str(contract.get("country", "US")), Decimal(0))
        total = (subtotal * (1 + rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        return {"subtotal": str(subtotal), "total": str(total)}
