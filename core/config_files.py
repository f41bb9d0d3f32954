"""Reading the files users write (TOML settings and manifests, JSON client configs), with
their failures translated into one error that says which file and what is wrong."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from archon_gateway.core.bounded_json import JsonRejected, parse_json
from archon_gateway.core.errors import UnusableFile

# Settings, manifests and client configs are small; anything larger is a mistake or abuse.
MAX_CONFIG_BYTES = 4 * 1024 * 1024

__all__ = ["UnusableFile", "read_json", "read_toml"]


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document at `path`; UnusableFile if it cannot be had."""
    data = _read_bounded(path)
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UnusableFile(path, f"not valid TOML: {exc}", unparsable=True) from exc
    except RecursionError:
        # tomllib recurses per nesting level; its RecursionError is not a parse error.
        raise UnusableFile(
            path, "not valid TOML: nested too deeply for the TOML parser", unparsable=True
        ) from None


def read_json(path: Path) -> Any:
    """The JSON document at `path`; UnusableFile if it cannot be had."""
    data = _read_bounded(path)
    try:
        return parse_json(data, max_bytes=MAX_CONFIG_BYTES, what="the file")
    except JsonRejected as exc:
        raise UnusableFile(path, f"not valid JSON: {exc.detail}", unparsable=True) from exc


def _read_bounded(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise UnusableFile(path, f"over the {MAX_CONFIG_BYTES}-byte limit for a config file")
    return data


def _unreadable(path: Path, exc: OSError) -> UnusableFile:
    if isinstance(exc, FileNotFoundError):
        return UnusableFile(path, "does not exist")
    return UnusableFile(path, f"cannot be read: {exc.strerror or exc}")
