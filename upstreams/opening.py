"""Opening a session with any upstream: start its process (stdio) or connect (remote)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from archon_gateway.upstreams.connection import NotificationHandler
from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.session import UpstreamSession, open_session


def open_upstream(
    manifest: Manifest,
    command: str | None,
    headers: Mapping[str, str],
    *,
    gateway_env: Mapping[str, str],
    log_dir: Path,
    on_notification: NotificationHandler = lambda method, params: None,
) -> AbstractAsyncContextManager[UpstreamSession]:
    """`command` is the stdio upstream's resolved executable; `headers` the remote
    upstream's resolved headers (secrets: never logged)."""
    if manifest.is_remote:
        # Imported here: httpx costs a stdio-only gateway (and doctor) nothing until needed.
        from archon_gateway.upstreams.remote.session import open_remote_session

        return open_remote_session(manifest, headers, on_notification=on_notification)
    assert command is not None
    return open_session(
        manifest,
        command,
        gateway_env=gateway_env,
        log_dir=log_dir,
        on_notification=on_notification,
    )
