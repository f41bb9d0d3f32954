"""Compute node: price a cart."""
from decimal import Decimal

from omnibase_core.nodes.node_compute import NodeCompute


class NodePriceCalculatorCompute(NodeCompute):
    async def execute_compute(self, contract: dict) -> dict:
        lines: list[dict] = contract["lines"]
        country: str | None = contract.get("country")
        total = Decimal(0)
        for line in lines:
            price = Decimal(str(line["price"]))
            if line.get("discount"):
                if line["discount"] > 0.5:
                    price = price * Decimal("0.5")
                elif line["discount"] > 0.2 and line.get("member"):
                    price = price * Decimal("0.8")
                elif line["discount"] > 0.1 or line.get("coupon"):
                    price = price * Decimal("0.9")
            if country == "DE":
                price = price * Decimal("1.19")
            elif country == "FR":
                price = price * Decimal("1.20")
            elif country in ("US", None):
                pass
            else:
                raise ValueError(f"unknown country {country}")
            total += price * line["quantity"]
        return {"total": str(total)}

    def describe(self, verbose=False):
        return f"PriceCalculator(verbose={verbose})"
