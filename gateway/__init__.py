"""Archon Gateway: one MCP front door for AI assistants."""

__version__ = "0.1.0"
