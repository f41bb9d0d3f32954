"""Applying a manifest diff (config_diff.py) to a running pool: only what changed is
touched. Removed and restarted upstreams are stopped side by side (each stop may take its
grace period); calls in flight on them end with a clear reason at once."""

from __future__ import annotations

from collections.abc import Mapping

import anyio

from archon_gateway.upstreams.config_diff import ManifestDiff
from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.pool import UpstreamPool

# Connection.close reasons: callers read "upstream 'x' was removed by a configuration change".
REMOVED = "was removed by a configuration change"
RESTARTED = "was restarted by a configuration change"


async def apply_diff(
    pool: UpstreamPool, diff: ManifestDiff, manifests: Mapping[str, Manifest]
) -> None:
    """Make the pool serve `manifests` (the new set), given `diff` from its current one."""
    async with anyio.create_task_group() as tg:
        for name in diff.removed:
            tg.start_soon(pool.remove, name, REMOVED)
        for name in diff.restarted:
            tg.start_soon(pool.replace, manifests[name], RESTARTED)
    for name in diff.updated:
        pool.reconfigure(manifests[name])
    for name in diff.added:
        await pool.add(manifests[name])


async def settle_changed(pool: UpstreamPool, diff: ManifestDiff) -> None:
    """Wait for the upstreams the diff started to be ready (or fail); lazy ones are not
    started. Callers bound this (a tools/list waits at most `list_wait` too)."""
    for name in (*diff.added, *diff.restarted):
        upstream = pool.upstreams.get(name)
        if upstream is not None:
            await upstream.wait_settled()
