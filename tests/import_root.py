"""Make a source checkout import like an installed gateway: only `archon_gateway.*`."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
# The repository's folders that the wheel installs under `archon_gateway`.
FOLDERS = ("core", "gateway", "events", "catalog", "tools", "upstreams", "manifests", "store")


def copy_folders(into: Path) -> None:
    """Copy the package folders (not caches) into `into`, as the build or the wheel sees them."""
    for folder in FOLDERS:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(REPO / folder, into / folder, ignore=ignore)


class _BareFolderImports:
    """A meta-path finder that refuses the project's folders as top-level modules, so code
    that imports `manifests` instead of `archon_gateway.manifests` fails in tests as it
    would for a user, instead of loading a second copy of the module."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name in FOLDERS:
            raise ModuleNotFoundError(
                f"No module named {name!r}: import archon_gateway.{name} (the one import root)",
                name=name,
            )
        return None


def refuse_bare_folder_imports() -> None:
    if not any(isinstance(finder, _BareFolderImports) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BareFolderImports())
