"""Room for open connections in the process's file-descriptor limit.

Each open HTTP connection holds one descriptor. Many systems start processes with a soft
limit of 1,024, which `http_max_connections` (4,096 by default) would exceed: accept() would
then fail with EMFILE and uvicorn would stop accepting altogether. The soft limit may be
raised up to the hard limit without privileges; what still does not fit lowers the
connection cap instead, saying so.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

# Descriptors kept for everything else: upstream pipes, the store, logs, the listener.
RESERVED_FDS = 256


def connection_room(max_connections: int, reserved: int = RESERVED_FDS) -> int:
    """Raise the soft descriptor limit (up to the hard limit) so `max_connections` fit
    beside `reserved` others; return how many connections actually fit (at least 1)."""
    wanted = max_connections + reserved
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return max_connections
    fits = max(1, soft - reserved)
    log.warning(
        "http_max_connections=%d does not fit the open-file limit (%d, hard %s); "
        "serving at most %d connections",
        max_connections,
        soft,
        "unlimited" if hard == resource.RLIM_INFINITY else hard,
        fits,
    )
    return fits
