"""`archon-gateway` command line: the edge where settings are read and errors become exit codes.

Exit codes: 0 clean stop; 1 runtime failure (e.g. the port is taken); 2 invalid settings or
usage.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

from cyclopts import App, CycloptsError, Parameter

from archon_gateway.core.errors import AuthRejected, GatewayError, SettingsInvalid
from archon_gateway.core.version import __version__
from archon_gateway.gateway.db_cli import db_app
from archon_gateway.gateway.settings import (
    DEFAULT_CONFIG_NAME,
    LogLevel,
    Settings,
    Transport,
    load_settings,
    unknown_env_settings,
)

log = logging.getLogger("archon_gateway")

app = App(
    name="archon-gateway",
    help="One MCP front door for AI assistants: native tools and proxied stdio upstreams.",
    version=__version__,
)
app.command(db_app)


@app.command
def serve(
    *,
    transport: Annotated[Transport | None, Parameter(help="stdio, http, or both at once")] = None,
    host: Annotated[str | None, Parameter(help="HTTP bind address [default: 127.0.0.1]")] = None,
    port: Annotated[
        int | None, Parameter(help="HTTP port, 0 for any free one [default: 8787]")
    ] = None,
    config: Annotated[
        Path | None, Parameter(help="TOML config file [default: ./archon.toml]")
    ] = None,
    log_level: Annotated[LogLevel | None, Parameter(help="[default: info]")] = None,
    manifests: Annotated[
        Path | None,
        Parameter(help="use only the upstream manifests in this folder"),
    ] = None,
    profile: Annotated[
        str | None,
        Parameter(help="the catalog profile served on stdio and the bare HTTP path"),
    ] = None,
) -> None:
    """Serve MCP. stdio by default (what Claude Desktop and Cursor launch)."""
    closed_fds = _reserve_standard_fds()
    flags = {
        "transport": transport,
        "host": host,
        "port": port,
        "log_level": log_level,
        "manifests_dir": manifests,
        "profile": profile,
    }
    try:
        settings = load_settings(config, flags)
    except SettingsInvalid as exc:
        _fail(str(exc), 2)

    # Imported after settings are valid: a bad flag should not pay for the server's imports.
    import anyio

    from archon_gateway.gateway.app import build_gateway
    from archon_gateway.gateway.live_config.configuration import ConfigSource
    from archon_gateway.gateway.logs import configure_logging
    from archon_gateway.gateway.serve_loop import HttpLimits, bind_listener
    from archon_gateway.gateway.serve_loop import serve as serve_gateway

    if settings.serves_stdio and (missing := [fd for fd in closed_fds if fd in (0, 1)]):
        _fail(
            f"the stdio transport needs an open stdin and stdout, but fd {missing[0]} is "
            "closed; for a service use --transport http",
            2,
        )
    configure_logging(settings.log_level, settings.log_file)
    for name in unknown_env_settings():
        log.warning("ignoring %s: no such setting", name)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"invalid setting 'data_dir' (ARCHON_DATA_DIR): cannot create {exc.filename}", 2)
    if settings.serves_http:
        _check_host_rules(settings)
    if settings.serves_http and settings.host in ("0.0.0.0", "::"):
        log.warning(
            "HTTP listens on every interface (%s): anyone who can reach it can call tools",
            settings.host,
        )
    try:
        listener = bind_listener(settings.host, settings.port) if settings.serves_http else None
        source = ConfigSource(
            functools.partial(load_settings, config, flags),
            config or _default_config_file(),
        )
        gateway = build_gateway(settings, source=source)
        anyio.run(
            lambda: serve_gateway(
                gateway,
                stdio=settings.serves_stdio,
                listener=listener,
                mcp_path=settings.http_path,
                shutdown_grace=settings.shutdown_grace,
                max_message_bytes=settings.max_message_bytes,
                http_limits=HttpLimits(
                    header_timeout=settings.http_header_timeout,
                    body_timeout=settings.http_body_timeout,
                    keepalive_timeout=settings.http_keepalive_timeout,
                    max_connections=settings.http_max_connections,
                    max_requests=settings.http_max_requests,
                    session_idle_s=settings.http_session_idle_s,
                    max_sessions=settings.http_max_sessions,
                    stateless=settings.http_stateless,
                ),
                own_process=True,
            ),
            backend_options=event_loop_options(settings.event_loop),
        )
    except* GatewayError as failures:
        leaves = _leaves(failures)
        for leaf in leaves:  # the user reads one line; the cause goes to the log
            log.debug("serve stopped: %s", leaf, exc_info=leaf)
        _fail("; ".join(str(leaf) for leaf in leaves), 1)


@app.command(name="import-config")
def import_config(
    path: Annotated[Path, Parameter(help="a client config with an mcpServers object")],
    *,
    into: Annotated[
        Path | None,
        Parameter(help="folder to write manifests to [default: <data_dir>/manifests]"),
    ] = None,
    force: Annotated[bool, Parameter(help="overwrite manifests that exist")] = False,
    config: Annotated[Path | None, Parameter(help="TOML config file")] = None,
) -> None:
    """Write one upstream manifest per stdio server of a Claude Desktop / Cursor config."""
    from archon_gateway.upstreams.import_config import import_config as write_manifests

    try:
        settings = load_settings(config)
        target = into or settings.manifests_dir or settings.data_dir / "manifests"
        outcomes = write_manifests(path, target, overwrite=force)
    except GatewayError as exc:
        _fail(str(exc), 2)
    except OSError as exc:
        _fail(f"cannot write manifests: {exc}", 1)
    for outcome in outcomes:
        print(outcome)
        for warning in outcome.warnings:
            print(f"archon-gateway: warning: {warning}", file=sys.stderr)
    if settings.manifests_dir is None and into is not None:
        print(f"serve them with: archon-gateway serve --manifests {target}")


@app.command(name="restart-upstream")
def restart_upstream(
    name: Annotated[str, Parameter(help="the upstream's name (its manifest's)")],
    *,
    url: Annotated[
        str | None,
        Parameter(help="the running gateway's MCP URL [default: from host, port, http_path]"),
    ] = None,
    config: Annotated[Path | None, Parameter(help="TOML config file")] = None,
    timeout: Annotated[float, Parameter(help="seconds to wait for the restart")] = 120,
) -> None:
    """Restart one upstream of a running HTTP gateway now (skipping any backoff or
    crash-loop wait). Exit 0 when it is ready again, 1 otherwise."""
    try:
        settings = load_settings(config)
    except SettingsInvalid as exc:
        _fail(str(exc), 2)

    import anyio

    from archon_gateway.gateway.remote_control import restart_upstream as restart

    target = url or _gateway_url(settings)
    credential = _admin_credential(settings, target)

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(timeout):
            return await restart(target, name, service_token=credential)

    try:
        info = anyio.run(bounded)
    except AuthRejected:
        _fail(_admin_refused(settings, target), 2)
    except GatewayError as exc:
        _fail(str(exc), 1)
    except TimeoutError:
        _fail(f"upstream {name} did not restart within {timeout:g} s", 1)
    state = info.get("state")
    detail = f"pid {info.get('pid')}, {info.get('tools')} tools, restarts {info.get('restarts')}"
    if state != "ready":
        detail = str(info.get("last_error") or detail)
    print(f"upstream {name}: {state} ({detail})")
    if state != "ready":
        raise SystemExit(1)


@app.command
def reload(
    *,
    url: Annotated[
        str | None,
        Parameter(help="the running gateway's MCP URL [default: from host, port, http_path]"),
    ] = None,
    config: Annotated[Path | None, Parameter(help="TOML config file")] = None,
    timeout: Annotated[float, Parameter(help="seconds to wait for the reload")] = 60,
) -> None:
    """Make a running HTTP gateway re-read its manifests and config file now. Prints what
    changed, each problem (then nothing changed; exit 1) and settings that need a restart.
    A stdio gateway reloads on SIGHUP and, by default, whenever the files change."""
    settings = _settings_or_exit(config)

    import anyio

    from archon_gateway.gateway.remote_control import reload_config

    target = url or _gateway_url(settings)
    credential = _admin_credential(settings, target)

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(timeout):
            return await reload_config(target, service_token=credential)

    try:
        report = anyio.run(bounded)
    except AuthRejected:
        _fail(_admin_refused(settings, target), 2)
    except GatewayError as exc:
        _fail(str(exc), 1)
    except TimeoutError:
        _fail(f"the gateway at {target} did not finish reloading within {timeout:g} s", 1)
    for problem in report.get("problems", []):
        print(f"problem: {problem}")
    for change in report.get("changes", []):
        print(change)
    for name in report.get("needs_restart", []):
        print(f"{name} changed: needs a restart")
    if not report.get("applied"):
        print("nothing changed: the gateway keeps its running configuration")
        raise SystemExit(1)
    if not report.get("changes"):
        print("nothing to change")


@app.command
def add(
    name: Annotated[str, Parameter(help="the upstream's name: its tools become NAME_tool")],
    *command: Annotated[str, Parameter(help="after --: the server's command and arguments")],
    env: Annotated[
        list[str] | None, Parameter(negative="", help="K=V set for a stdio server (repeat)")
    ] = None,
    url: Annotated[
        str | None, Parameter(help="a remote server's MCP URL (instead of a command)")
    ] = None,
    header: Annotated[
        list[str] | None, Parameter(negative="", help="'K: V' sent to a remote server (repeat)")
    ] = None,
    transport: Annotated[
        Literal["streamable-http", "sse"] | None,
        Parameter(help="a remote server's protocol [default: streamable-http]"),
    ] = None,
    force: Annotated[bool, Parameter(negative="", help="replace a manifest that exists")] = False,
    config: Annotated[Path | None, Parameter(help="TOML config file")] = None,
) -> None:
    """Add an upstream: `add NAME [--env K=V ...] -- COMMAND ARGS...` for a stdio server,
    `add NAME --url URL [--header 'K: V' ...]` for a remote one. Writes NAME.toml into the
    user manifest folder; a running gateway picks it up by itself."""
    from archon_gateway.gateway.live_config.configuration import user_manifest_folder
    from archon_gateway.upstreams.manifest_writer import write_manifest
    from archon_gateway.upstreams.user_manifests import new_manifest

    settings = _settings_or_exit(config)
    folder = user_manifest_folder(settings)
    try:
        manifest = new_manifest(
            name,
            command=command,
            env=env or [],
            url=url,
            headers=header or [],
            transport=transport,
            folder=folder,
        )
        path = write_manifest(folder, manifest, overwrite=force)
    except GatewayError as exc:
        _fail(str(exc), 2)
    except FileExistsError:
        _fail(f"{folder / (name + '.toml')} exists (--force replaces it)", 2)
    except OSError as exc:
        _fail(f"cannot write the manifest into {folder}: {exc.strerror or exc}", 1)
    print(f"wrote {path}")
    if not manifest.is_remote and manifest.resolve_command(os.environ.get("PATH")) is None:
        print(f"warning: {manifest.command} is not on PATH; /health says degraded until it is")


@app.command
def remove(
    name: Annotated[str, Parameter(help="the upstream's name (its manifest's)")],
    *,
    config: Annotated[Path | None, Parameter(help="TOML config file")] = None,
) -> None:
    """Remove an upstream added with `add` (deletes NAME.toml from the user manifest
    folder); a running gateway stops it by itself."""
    from archon_gateway.gateway.live_config.configuration import user_manifest_folder
    from archon_gateway.upstreams.manifest import builtin_manifests_dir
    from archon_gateway.upstreams.user_manifests import remove_manifest

    settings = _settings_or_exit(config)
    shipped = (
        [path.stem for path in builtin_manifests_dir().glob("*.toml")]
        if settings.manifests_dir is None
        else []
    )
    try:
        path = remove_manifest(user_manifest_folder(settings), name, shipped=shipped)
    except GatewayError as exc:
        _fail(str(exc), 2)
    except OSError as exc:
        _fail(f"cannot remove the manifest of {name}: {exc.strerror or exc}", 1)
    print(f"removed {path}")


@app.command(name="list")
def list_upstreams(
    *,
    url: Annotated[
        str | None,
        Parameter(help="the running gateway's MCP URL [default: from host, port, http_path]"),
    ] = None,
    config: Annotated[Path | None, Parameter(help="TOML config file")] = None,
    as_json: Annotated[
        bool, Parameter(name="--json", negative="", help="one JSON object instead of a table")
    ] = False,
    timeout: Annotated[float, Parameter(help="seconds to wait for the running gateway")] = 5,
) -> None:
    """The upstreams: name, kind (stdio, streamable-http, sse), state and tools. State and
    tools come from the running HTTP gateway; without one, from the manifests alone."""
    settings = _settings_or_exit(config)

    import json

    import anyio

    from archon_gateway.gateway.live_config.configuration import (
        Configuration,
        read_configuration,
    )
    from archon_gateway.gateway.remote_control import upstream_states

    found = read_configuration(lambda: settings)
    if not isinstance(found, Configuration):
        _fail("; ".join(found), 2)
    target = url or _gateway_url(settings)
    credential = _admin_credential(settings, target)

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(timeout):
            return await upstream_states(target, service_token=credential)

    try:
        live: dict[str, Any] | None = anyio.run(bounded)
    except AuthRejected:
        _fail(_admin_refused(settings, target), 2)
    except (GatewayError, TimeoutError):
        live = None
    rows = []
    for name, manifest in sorted(found.manifests.items()):
        state = (live or {}).get(name, {})
        rows.append(
            {
                "name": name,
                "kind": manifest.remote_transport if manifest.is_remote else "stdio",
                "state": state.get("state") or ("enabled" if manifest.enabled else "disabled"),
                "tools": state.get("tools"),
            }
        )
    if as_json:
        print(json.dumps({"gateway": target if live is not None else None, "upstreams": rows}))
        return
    for row in rows:
        tools = "-" if row["tools"] is None else str(row["tools"])
        print(f"{row['name']:<24} {row['kind']:<16} {row['state']:<14} {tools}")
    if live is None:
        print(f"(no gateway answered at {target}: states are the manifests')")


@app.command
def doctor(
    *,
    config: Annotated[Path | None, Parameter(help="TOML config file")] = None,
    manifests: Annotated[
        Path | None, Parameter(help="check only the upstream manifests in this folder")
    ] = None,
    as_json: Annotated[
        bool, Parameter(name="--json", negative="", help="one JSON object instead of a table")
    ] = False,
    only: Annotated[
        list[str] | None,
        Parameter(negative="", consume_multiple=True, help="check only these upstreams"),
    ] = None,
    log_level: Annotated[LogLevel | None, Parameter(help="[default: warning]")] = None,
) -> None:
    """Start each enabled upstream once and report: command, state, startup time, tools,
    ping and what to do about errors. Exit 1 when an enabled upstream fails."""
    try:
        settings = load_settings(config, {"manifests_dir": manifests})
    except SettingsInvalid as exc:
        _fail(str(exc), 2)

    import json
    import os

    import anyio

    from archon_gateway.gateway.doctor import diagnose, render_table, summary
    from archon_gateway.gateway.logs import configure_logging
    from archon_gateway.upstreams.manifest import (
        ManifestSet,
        builtin_manifests_dir,
        load_manifests,
        manifest_folders,
    )
    from archon_gateway.upstreams.overrides import layer_overrides

    # The report is the output; logs (stderr) only for what the report cannot show.
    configure_logging(log_level or "warning", settings.log_file)
    for name in unknown_env_settings():
        log.warning("ignoring %s: no such setting", name)
    if not settings.enable_external_gateway:
        log.warning("enable_external_gateway is off: `serve` will not start these upstreams")
    folders = manifest_folders(settings.manifests_dir, settings.data_dir)
    found = load_manifests(folders)
    try:
        layered = layer_overrides(
            found,
            settings.upstreams,
            shipped_dir=builtin_manifests_dir(),
            gateway_timeout_set="tool_timeout" in settings.model_fields_set,
        )
        found = ManifestSet(layered, found.problems, found.files)
    except SettingsInvalid as exc:
        _fail(str(exc), 2)
    if only:
        known = {m.name for m in found.manifests} | {p.path.stem for p in found.problems}
        if unknown := [name for name in only if name not in known]:
            _fail(
                f"no upstream manifest named {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known)) or 'none'})",
                2,
            )
        found = ManifestSet(
            [m for m in found.manifests if m.name in only],
            [p for p in found.problems if p.path.stem in only],
            found.files,
        )
    log_dir = settings.data_dir / "logs" / "upstreams"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"invalid setting 'data_dir' (ARCHON_DATA_DIR): cannot create {exc.filename}", 2)

    reports = anyio.run(lambda: diagnose(found, gateway_env=dict(os.environ), log_dir=log_dir))
    ok = all(report.ok for report in reports)
    if as_json:
        document = {"ok": ok, "upstreams": [report.model_dump(mode="json") for report in reports]}
        print(json.dumps(document, indent=2))
    else:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:  # a pipe or CI log: keep rows whole rather than 80 wide
            console.width = max(console.width, 160)
        if reports:
            console.print(render_table(reports))
            console.print(summary(reports), style="green" if ok else "red", highlight=False)
        else:
            places = " or ".join(str(folder) for folder in folders)
            console.print(f"no upstream manifests in {places}", highlight=False)
    if not ok:
        raise SystemExit(1)


events_app = App(name="events", help="Kafka events: follow what passes.")
app.command(events_app)


@events_app.command(name="tail")
def events_tail(
    *,
    topic: Annotated[
        list[str] | None,
        Parameter(negative="", consume_multiple=True, help="topics [default: all the gateway's]"),
    ] = None,
    from_beginning: Annotated[
        bool, Parameter(negative="", help="start at the oldest retained record")
    ] = False,
    config: Annotated[Path | None, Parameter(help="TOML config file")] = None,
) -> None:
    """Print events as they pass, one line each (time, topic[partition]@offset, type,
    correlation id, payload), until Ctrl-C. Needs kafka_bootstrap_servers."""
    try:
        settings = load_settings(config)
    except SettingsInvalid as exc:
        _fail(str(exc), 2)
    if not settings.kafka_bootstrap_servers:
        _fail("events tail needs Kafka: set ARCHON_KAFKA_BOOTSTRAP_SERVERS", 2)

    import anyio

    from archon_gateway.events.tail import tail
    from archon_gateway.events.topics import Topics
    from archon_gateway.gateway.events_wiring import kafka_options

    topics = topic or Topics(settings.kafka_topic_prefix).all()

    def emit(line: str) -> None:
        print(line, flush=True)

    try:
        anyio.run(
            lambda: tail(kafka_options(settings), topics, emit, from_beginning=from_beginning)
        )
    except GatewayError as exc:
        _fail(str(exc), 1)


@app.command
def version() -> None:
    """Print the gateway version."""
    print(__version__)


def event_loop_options(choice: str) -> dict[str, Any]:
    """libuv's event loop (uvloop) unless `choice` is "asyncio", when it is installed: the
    per-request cost of every transport drops with it."""
    if choice == "asyncio":
        return {}
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


def _reserve_standard_fds() -> list[int]:
    """Point closed standard descriptors (0, 1, 2) at /dev/null and return which were closed.

    Must run before anything else opens a file: a closed fd 1 would otherwise be reused by the
    next socket or event-loop handle, and stdout writes (or our stdio claim) would hit it.
    """
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:  # lowest free descriptor: normally lands on fd itself
            os.dup2(null, fd)
            os.close(null)
    return closed


def _leaves(group: BaseExceptionGroup[GatewayError]) -> list[GatewayError]:
    """The errors inside a (possibly nested) exception group from the task groups."""
    found: list[GatewayError] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


def _settings_or_exit(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except SettingsInvalid as exc:
        _fail(str(exc), 2)


def _gateway_url(settings: Settings) -> str:
    """The MCP URL of the gateway these settings describe (a wildcard bind: loopback)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}{settings.http_path}"


def _admin_credential(settings: Settings, target: str) -> str | None:
    """What the CLI sends a running gateway: the service token when one is set, else the
    local admin token the gateway wrote into the data dir (the same user's CLI needs no
    set-up), only to a gateway on this machine; None when there is neither."""
    from archon_gateway.gateway.auth.admin_token import admin_token_path, read_admin_token

    if settings.service_auth_token is not None:
        return settings.service_auth_token.get_secret_value()
    if not _is_loopback(target):
        return None
    try:
        token = read_admin_token(admin_token_path(settings.data_dir))
    except SettingsInvalid as exc:
        _fail(str(exc), 2)
    return token.get_secret_value() if token is not None else None


def _is_loopback(url: str) -> bool:
    """Whether `url` points at this machine (the local admin token never leaves it)."""
    from urllib.parse import urlsplit

    from archon_gateway.gateway.host_guard import is_loopback

    return is_loopback(urlsplit(url).hostname or "")


def _admin_refused(settings: Settings, target: str) -> str:
    """One line when the gateway refuses the CLI: what it needs and where the token is."""
    from archon_gateway.gateway.auth.admin_token import admin_token_path

    path = admin_token_path(settings.data_dir)
    found = "" if path.exists() else ", not found"
    return (
        f"the gateway at {target} refused this admin command: set SERVICE_AUTH_TOKEN to its "
        f"service token, or run as the user whose gateway wrote the admin token file "
        f"{path}{found} (same ARCHON_DATA_DIR)"
    )


def _default_config_file() -> Path:
    """The config file a gateway started without --config reads (and watches)."""
    return Path.cwd() / DEFAULT_CONFIG_NAME


def _check_host_rules(settings: Settings) -> None:
    """Before binding: DNS-rebinding protection needs allowed_hosts on an address that is
    not loopback (an IP literal or `localhost`): exit 2 without them (and without auth);
    with auth, say once that Host is not checked. The listener applies the same policy to
    the address it bound."""
    from archon_gateway.gateway.app import host_rules
    from archon_gateway.gateway.host_guard import host_check_off, host_policy

    try:
        policy = host_policy(host_rules(settings), settings.host, settings.port)
    except SettingsInvalid as exc:
        _fail(str(exc), 2)
    if policy.hosts is None:
        log.warning(host_check_off(settings.host))


def _fail(message: str, code: int) -> NoReturn:
    print(f"archon-gateway: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    try:
        app(argv, exit_on_error=False, print_error=False)
    except CycloptsError as exc:
        _fail(f"{exc} (see archon-gateway --help)", 2)
    except KeyboardInterrupt:
        # Ctrl-C before the gateway installed its own handler: stop quietly.
        raise SystemExit(130) from None
