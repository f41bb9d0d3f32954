"""The lane for proxied tool calls: a `tools/call` for a listed upstream tool is taken
off the transport (stdio line or HTTP POST), run through the gateway's own middleware
chain, and relayed to the upstream and back as JSON, without FastMCP's and the SDK's
per-request dispatch. Everything else (and any call the lane is not sure of) takes the
normal path."""
