"""Reading the files users write (TOML settings and manifests, JSON client configs), with
their failures translated into one error that says which file and what is wrong."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from archon_gateway.gateway.core.errors import UnusableFile

__all__ = ["UnusableFile", "read_json", "read_toml"]


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document at `path`; UnusableFile if it cannot be had."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise UnusableFile(path, f"not valid TOML: {exc}", unparsable=True) from exc
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def read_json(path: Path) -> Any:
    """The JSON document at `path`; UnusableFile if it cannot be had."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    except ValueError as exc:  # JSONDecodeError, or text that is not UTF-8
        raise UnusableFile(path, f"not valid JSON: {exc}", unparsable=True) from exc


def _unreadable(path: Path, exc: OSError) -> UnusableFile:
    if isinstance(exc, FileNotFoundError):
        return UnusableFile(path, "does not exist")
    return UnusableFile(path, f"cannot be read: {exc.strerror or exc}")
