"""Stdio upstream supervision and proxying: manifest models, process spawn, supervisor,
proxy mounting. Assembled into the gateway by `gateway.app.build_gateway`."""
