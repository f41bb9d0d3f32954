"""Remote upstreams: MCP servers reached over HTTP (streamable HTTP or the older SSE)."""
