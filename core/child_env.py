"""The environment every child process gets: upstreams, code-tool workers, ruff.

A child never inherits the gateway's environment whole: it holds the gateway's own secrets
(`SERVICE_AUTH_TOKEN`, `ARCHON_HOOK_SECRETS`, ...). It gets a few base names (so programs
find their tools, home and locale), the names its configuration passes on, then the values
its configuration sets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Names no child receives from the gateway's environment: the gateway's settings and secrets.
_PRIVATE = re.compile(r"^(ARCHON_.*|SERVICE_AUTH_TOKEN)$")
# What every child gets, besides what its configuration passes on.
BASE_ENV_NAMES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "USER")


def is_private(name: str) -> bool:
    """Whether `name` belongs to the gateway (a setting or secret), never to a child."""
    return _PRIVATE.match(name) is not None


def child_env(
    parent: Mapping[str, str],
    *,
    pass_names: Iterable[str] = (),
    values: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The base names and `pass_names` that are set in `parent` (the gateway's private
    names never), then `values` as given."""
    names = (*BASE_ENV_NAMES, *pass_names)
    env = {name: parent[name] for name in names if name in parent and not is_private(name)}
    env.update(values or {})
    return env
