"""Live configuration: the manifests and the config file reloaded while the gateway runs
(watched files, SIGHUP, the `gateway_reload` tool), validated first, applied as a difference."""
