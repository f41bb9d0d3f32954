"""The kernel every package may import: errors, component health, line framing,
resilience (circuit breakers, HTTP client), background-task helpers, reading config files,
one-line error text, the version and the one seam onto private SDK internals. It imports
nothing else of the project."""
