"""FastMCP middleware: everything a tool call passes through, native or proxied alike."""
