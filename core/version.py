"""The gateway's version (read by packaging and shown to clients)."""

__version__ = "0.1.0"
