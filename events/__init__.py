"""Kafka events: request topics in, native tools through the middleware, responses out."""
