"""Make a source checkout import like an installed gateway: only `archon_gateway.*`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

FOLDERS = frozenset({"gateway", "tools", "upstreams", "manifests"})


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
