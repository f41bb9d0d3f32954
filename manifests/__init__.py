"""Shipped upstream manifests (data only): one TOML file per known stdio MCP server."""
