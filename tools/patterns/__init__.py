"""Native pattern learning: index code/text patterns and search them by meaning.

`add_pattern_tools(server, components, ...)` registers the tools; the store (Qdrant Edge
in-process by default, or a Qdrant server) and the embedding model load on first use.
"""

from archon_gateway.tools.patterns.family import PatternTools, add_pattern_tools

__all__ = ["PatternTools", "add_pattern_tools"]
