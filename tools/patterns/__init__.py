"""Native pattern learning: index code/text patterns and search them by meaning.

The family is `PatternTools` (in family.py); the store (Qdrant Edge in-process by default, or
a Qdrant server) and the embedding model load on first use.
"""

from archon_gateway.tools.patterns.family import PatternTools

__all__ = ["PatternTools"]
