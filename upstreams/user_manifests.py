"""The user's manifest folder as `archon-gateway add`, `remove` and `list` change and read
it (the shape of `claude mcp add`); files are written by `manifest_writer`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from archon_gateway.core.errors import ManifestInvalid, NotFound
from archon_gateway.upstreams.manifest import (
    Manifest,
    RemoteTransport,
    describe_validation_error,
    parse_manifest,
)


def parse_pairs(values: Sequence[str], separator: str, what: str) -> dict[str, str]:
    """`K=V` (env) or `K: V` (headers) pairs; ManifestInvalid names the bad one (by its
    name only: the value may be a secret)."""
    pairs: dict[str, str] = {}
    for value in values:
        key, found, rest = value.partition(separator)
        if not found or not key.strip():
            shown = key.strip() or "(empty)"
            raise ManifestInvalid(f"{what} '{shown}' is not in the form NAME{separator}VALUE")
        pairs[key.strip()] = rest.strip() if separator == ":" else rest
    return pairs


def new_manifest(
    name: str,
    *,
    command: Sequence[str] = (),
    env: Sequence[str] = (),
    url: str | None = None,
    headers: Sequence[str] = (),
    transport: RemoteTransport | None = None,
    folder: Path,
) -> Manifest:
    """A stdio manifest (`command` is the command and its arguments) or a remote one
    (`url`); ManifestInvalid says what is wrong in one line."""
    if bool(command) == (url is not None):
        raise ManifestInvalid("give either a command (after --) or --url, not both or neither")
    values: dict[str, Any] = {"name": name}
    if url is not None:
        if env:
            raise ManifestInvalid("--env is for stdio servers; a remote one takes --header")
        values |= {"url": url, "headers": parse_pairs(headers, ":", "header")}
        if transport is not None:
            values["transport"] = transport
    else:
        if headers or transport:
            raise ManifestInvalid("--header and --transport are for --url servers")
        values |= {"command": command[0], "args": list(command[1:])}
        values["env"] = parse_pairs(env, "=", "env")
    try:
        return parse_manifest(folder / f"{name}.toml", values)
    except ValidationError as exc:
        # from None: pydantic's error quotes the input values (env, headers may be secrets).
        raise ManifestInvalid(describe_validation_error(exc)) from None


def remove_manifest(folder: Path, name: str, *, shipped: Sequence[str] = ()) -> Path:
    """Delete `<folder>/<name>.toml`; NotFound says what there is, and how to turn off a
    shipped manifest (which `remove` cannot delete)."""
    target = folder / f"{name}.toml"
    try:
        target.unlink()
    except FileNotFoundError:
        if name in shipped:
            raise NotFound(
                f"'{name}' is a shipped manifest; turn it off with `enabled = false` under "
                f"[upstreams.{name}] in archon.toml"
            ) from None
        there = sorted(path.stem for path in folder.glob("*.toml")) if folder.is_dir() else []
        raise NotFound(
            f"no manifest named '{name}' in {folder} (there: {', '.join(there) or 'none'})"
        ) from None
    return target
