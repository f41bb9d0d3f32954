"""Code intelligence tools: validate, correct and analyze generated Python (ONEX nodes), and
recommend ONEX mixins (the family is `CodegenTools`, in family.py)."""

from archon_gateway.tools.codegen.family import CodegenTools
from archon_gateway.tools.codegen.validate import MAX_INPUT_BYTES

__all__ = ["MAX_INPUT_BYTES", "CodegenTools"]
