"""Manifests as files: TOML text, and the one writer (`add` and `import-config` both use
it). A file is written whole under a temporary name, readable by its owner only (env
values and headers may be secrets), and renamed into place, so a watching gateway never
reads half a manifest."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archon_gateway.upstreams.manifest import Manifest


def write_manifest(folder: Path, manifest: Manifest, *, overwrite: bool = False) -> Path:
    """Write `<folder>/<name>.toml` atomically (readable by the owner only: env values and
    headers may be secrets); FileExistsError when it exists and `overwrite` is off."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{manifest.name}.toml"
    if target.exists() and not overwrite:
        raise FileExistsError(target)
    # Not *.toml while incomplete: a watching gateway ignores it until the rename.
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{manifest.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(to_toml(manifest))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def to_toml(manifest: Manifest) -> str:
    """The manifest's non-default fields as TOML (strings, lists and tables of strings)."""
    data = manifest.model_dump(exclude_defaults=True, mode="json")
    lines = []
    tables = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, table in tables:
        lines.append(f"\n[{key}]")
        lines.extend(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(str(value))
