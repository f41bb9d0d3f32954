"""A configuration reload: read and validate everything first (any problem: nothing
changes, each problem is reported in one line), then apply only the difference — upstreams
added, removed, restarted or updated in place; profiles, timeouts and breaker settings —
and tell clients once. Reloads run one at a time; each is audited and counted."""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Literal

import anyio
from pydantic import BaseModel

from archon_gateway.catalog.profiles import build_profiles
from archon_gateway.catalog.view import CatalogView
from archon_gateway.core.audit import AuditSink, record_admin_action
from archon_gateway.core.circuit_breaker import BreakerRegistry
from archon_gateway.core.health import ComponentRegistry, ComponentStatus
from archon_gateway.gateway.call_steps.timeout import TimeLimits
from archon_gateway.gateway.gateway_metrics import GatewayMetrics
from archon_gateway.gateway.live_config.configuration import (
    ConfigSource,
    Configuration,
    read_configuration,
    user_manifest_folder,
)
from archon_gateway.gateway.live_config.settings_diff import (
    changed_settings,
    needing_restart,
    running_settings,
)
from archon_gateway.gateway.live_config.watcher import watch_files
from archon_gateway.gateway.settings import Settings
from archon_gateway.gateway.upstream_admin import track_upstream
from archon_gateway.upstreams.config_diff import ManifestDiff, diff_manifests
from archon_gateway.upstreams.manifest import manifest_folders
from archon_gateway.upstreams.pool import UpstreamPool
from archon_gateway.upstreams.reconfigure import apply_diff, settle_changed

log = logging.getLogger(__name__)

Trigger = Literal["watch", "signal", "tool"]
# What a reload tells clients: list_changed for these, in both protocol eras.
Notify = Callable[[], Awaitable[None]]


class ReloadReport(BaseModel):
    """The answer of a reload (the `gateway_reload` tool, `archon-gateway reload`)."""

    applied: bool  # false: something was invalid, and nothing changed
    changes: list[str]  # one line per change applied
    problems: list[str]  # one line per problem found (then `changes` is empty)
    needs_restart: list[str]  # settings that changed but apply only after a restart


class ConfigReloader:
    """Owns the running configuration and changes it on request (`reload`), on SIGHUP and,
    with `watch_config`, when the manifest folders or the config file change."""

    def __init__(
        self,
        source: ConfigSource,
        running: Configuration,
        *,
        pool: UpstreamPool | None,
        catalog: CatalogView,
        breakers: BreakerRegistry,
        components: ComponentRegistry,
        metrics: GatewayMetrics,
        audit: AuditSink | None,
        notify_others: Notify | None = None,
        start_problems: list[str] | None = None,
        time_limits: TimeLimits | None = None,
    ) -> None:
        self._source = source
        self._running = running
        self._pool = pool
        self._catalog = catalog
        self._breakers = breakers
        self._components = components
        self._metrics = metrics
        self._audit = audit
        self._notify_others = notify_others  # resources and prompts list_changed
        self._lock = anyio.Lock()
        self._time_limits = time_limits  # told of a new tool_timeout
        problems = start_problems or []
        self.manifests_status = (
            ComponentStatus("degraded", "; ".join(problems))
            if problems
            else ComponentStatus("ok", f"{len(running.manifests)} loaded")
        )
        if pool is not None:
            components.register("manifests", lambda: self.manifests_status, critical=False)

    @property
    def settings(self) -> Settings:
        return self._running.settings

    # -- triggers ---------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """While the gateway runs: reload on SIGHUP and, with `watch_config`, on changes."""
        settings = self.settings
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._on_sighup)
            if settings.watch_config:
                folders = await anyio.to_thread.run_sync(self._watched_folders, settings)
                files = [self._source.file] if self._source.file is not None else []
                tg.start_soon(
                    lambda: watch_files(
                        folders,
                        files,
                        self._on_change,
                        quiet=settings.watch_config_quiet,
                        stop=stop,
                    )
                )
            try:
                yield
            finally:
                stop.set()  # the watching thread returns at once
                tg.cancel_scope.cancel()

    @staticmethod
    def _watched_folders(settings: Settings) -> list[Path]:
        user = user_manifest_folder(settings)
        if settings.manifests_dir is None:  # the user's folder: there for `add` to write to
            user.mkdir(parents=True, exist_ok=True)
        return list(manifest_folders(settings.manifests_dir, settings.data_dir))

    async def _on_sighup(self) -> None:
        try:
            with anyio.open_signal_receiver(signal.SIGHUP) as signals:
                async for _ in signals:
                    await self._reload_quietly("signal", transport="signal")
        except (ValueError, RuntimeError, NotImplementedError) as exc:
            # Not the main thread (a gateway built inside a test), or no SIGHUP (Windows).
            log.debug("SIGHUP will not reload the configuration here: %s", exc)

    async def _on_change(self) -> None:
        await self._reload_quietly("watch", transport="file")

    async def _reload_quietly(self, trigger: Trigger, *, transport: str) -> None:
        """A reload nobody waits on: its report is in the log, /health and the audit."""
        try:
            await self.reload(trigger, principal="local", transport=transport)
        except Exception:  # a bug in one reload must not end the watching
            log.exception("reloading the configuration failed")

    # -- the reload -------------------------------------------------------------------------

    async def reload(
        self, trigger: Trigger, *, principal: str, transport: str, tool: str = ""
    ) -> ReloadReport:
        """Read, validate, apply the difference; one audit event and one metric sample."""
        async with self._lock:
            report = await self._reload()
        outcome = "invalid" if not report.applied else "applied" if report.changes else "unchanged"
        self._metrics.config_reloads.labels(trigger=trigger, outcome=outcome).inc()
        said = report.problems if not report.applied else report.changes or ["nothing changed"]
        if report.needs_restart:
            said = [*said, f"needs a restart: {', '.join(report.needs_restart)}"]
        record_admin_action(
            self._audit,
            "config_reload",
            "accept" if report.applied else "reject",
            f"{trigger}: " + "; ".join(said),
            principal=principal,
            transport=transport,
            tool=tool,
        )
        return report

    async def _reload(self) -> ReloadReport:
        found = await anyio.to_thread.run_sync(read_configuration, self._source.load)
        if isinstance(found, list):
            for problem in found:
                log.error("configuration not reloaded: %s", problem)
            self.manifests_status = ComponentStatus(
                "degraded",
                "reload refused, running the last good configuration: " + "; ".join(found),
            )
            return ReloadReport(applied=False, changes=[], problems=found, needs_restart=[])
        old = self._running
        restart = needing_restart(changed_settings(old.settings, found.settings))
        for name in restart:
            log.warning("setting %s changed; it applies after a restart", name)
        pool = self._pool
        diff = ManifestDiff()
        if pool is not None:
            installed = pool.installed(found.manifests)
            diff = diff_manifests(old.manifests, found.manifests, installed)
        changes = diff.lines()
        async with AsyncExitStack() as stack:
            if pool is not None:
                await stack.enter_async_context(pool.one_notice())
                await apply_diff(pool, diff, found.manifests)
                self._track(pool, diff)
            changes += self._apply_settings(old.settings, found.settings)
            if changes and pool is not None:
                pool.note_catalog_change()
                with anyio.move_on_after(pool.list_wait):  # clients re-list what is ready
                    await settle_changed(pool, diff)
        if changes and self._notify_others is not None:
            await self._notify_others()
        self._running = Configuration(
            running_settings(old.settings, found.settings), found.manifests
        )
        self.manifests_status = ComponentStatus("ok", f"{len(found.manifests)} loaded")
        for line in changes:
            log.info("configuration reloaded: %s", line)
        return ReloadReport(applied=True, changes=changes, problems=[], needs_restart=restart)

    def _track(self, pool: UpstreamPool, diff: ManifestDiff) -> None:
        for name in diff.removed:
            self._components.unregister(f"upstream:{name}")
        for name in diff.added:
            track_upstream(self._components, pool, name)

    def _apply_settings(self, old: Settings, new: Settings) -> list[str]:
        """The live settings other than the manifests' overlays; one line per change."""
        lines: list[str] = []
        if (old.profiles, old.catalog_mode, old.default_profile) != (
            new.profiles,
            new.catalog_mode,
            new.default_profile,
        ):
            profiles = build_profiles(new.profiles, new.catalog_mode)
            changed = self._catalog.replace_profiles(profiles, new.default_profile)
            lines.append(f"profiles changed: {', '.join(changed) or 'default profile'}")
        if old.tool_timeout != new.tool_timeout:
            if self._time_limits is not None:
                self._time_limits.reloaded(new.tool_timeout)
            if self._pool is not None:
                self._pool.default_timeout = new.tool_timeout
            lines.append(f"tool_timeout is now {new.tool_timeout:g} s")
        breaker = (new.breaker_fail_max, new.breaker_reset_timeout)
        if (old.breaker_fail_max, old.breaker_reset_timeout) != breaker:
            self._breakers.reconfigure(fail_max=breaker[0], reset_timeout=breaker[1])
            lines.append(f"breakers now open after {breaker[0]} failures, for {breaker[1]:g} s")
        return lines
