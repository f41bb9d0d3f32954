"""The front door: settings, CLI, serve loop, stdio transport, HTTP routes, middleware
and the composition root (`app.build_gateway`). May import everything."""
