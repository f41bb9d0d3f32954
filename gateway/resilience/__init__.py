"""Resilience parts shared by every outbound call: circuit breakers (`breaker`) and the
pooled HTTP client (`http_client`). Import the submodules directly: httpx is only loaded
by the features that call out over HTTP."""
