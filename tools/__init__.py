"""Native tool families, one package per family: `codegen` (CodegenTools: validate, correct
and analyze generated Python, recommend ONEX mixins), `patterns` (PatternTools: index and
search code/text patterns by meaning) and `workflow` (WorkflowTools: run a workflow on the
workflow coordinator).

Each family is one `ToolFamily` (core/tool_family.py) built from plain arguments: it
declares its tools, its lifespan, its health probes and its per-tool time limits, and
`gateway.app.build_gateway` wires every family the same way. A family imports only the
kernel (core/) and itself."""
