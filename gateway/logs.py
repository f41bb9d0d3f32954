"""Logging setup. On the stdio transport stdout is the protocol, so logs never go there."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from archon_gateway.gateway.log_redaction import RedactSecrets

_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
# Libraries that install their own handlers; we route them through ours instead.
_ADOPTED_LOGGERS = ("fastmcp", "mcp", "uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(level: str, log_file: Path | None = None) -> None:
    """Send every log record to stderr (or `log_file`), one plain line each."""
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S"))
    # On the handler, so every record (ours and the libraries', propagated) passes it.
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _ADOPTED_LOGGERS:
        adopted = logging.getLogger(name)
        for old in adopted.handlers[:]:
            adopted.removeHandler(old)
        adopted.propagate = True
        adopted.setLevel(logging.NOTSET)
    # Per-request access lines are noise at info level; they stay available at debug.
    if root.level > logging.DEBUG:
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx logs every request's full URL at info, query included: a remote upstream's URL
    # or SSE endpoint may carry a key or session id. Never below warning.
    logging.getLogger("httpx").setLevel(logging.WARNING)
