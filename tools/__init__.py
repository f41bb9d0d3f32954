"""Native intelligence tools, one module or package per family (patterns, lineage, codegen,
nodes, workflow, menu). Each family exposes an `add_*_tools(server, ...)` function that
`gateway.app.build_gateway` calls."""
