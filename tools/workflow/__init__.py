"""The workflow family: orchestrate_pattern_workflow runs a workflow on the workflow
coordinator (the family is `WorkflowTools`, in family.py; the HTTP client in client.py)."""

from archon_gateway.tools.workflow.family import TOOL_NAME, WorkflowResult, WorkflowTools

__all__ = ["TOOL_NAME", "WorkflowResult", "WorkflowTools"]
