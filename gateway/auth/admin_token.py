"""The local admin token: a random secret the gateway writes into its data dir at first
start (mode 0600) and reuses after, so the same user's CLI can call admin tools over HTTP
with no set-up. It is never logged; only its file's path is ever shown."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from archon_gateway.core.errors import SettingsInvalid

ADMIN_TOKEN_FILE = "admin-token"
# A token is 43 characters; anything much longer is not a file this module wrote.
MAX_TOKEN_BYTES = 1024
MIN_TOKEN_CHARS = 16


def admin_token_path(data_dir: Path) -> Path:
    return data_dir / ADMIN_TOKEN_FILE


def ensure_admin_token(data_dir: Path) -> SecretStr:
    """The token in `<data_dir>/admin-token`, written first if there is none. The file is
    created complete or not at all (a private temporary file, then a hard link that fails
    when another process won the race), so a reader never sees half a token."""
    path = admin_token_path(data_dir)
    existing = read_admin_token(path)
    if existing is not None:
        return existing
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        temporary = data_dir / f".{ADMIN_TOKEN_FILE}.{secrets.token_hex(8)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
            # Another gateway on this data dir may have written it first: use theirs.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as exc:
        raise SettingsInvalid(
            f"cannot write the admin token file {path}: {exc.strerror or exc}"
        ) from exc
    token = read_admin_token(path)
    if token is None:
        raise SettingsInvalid(f"the admin token file {path} vanished while it was written")
    return token


def read_admin_token(path: Path) -> SecretStr | None:
    """The token in `path`; None when there is no such file. A file that cannot be a
    token (empty, too short, too long) is refused naming the file, never its content."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_TOKEN_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SettingsInvalid(
            f"cannot read the admin token file {path}: {exc.strerror or exc}"
        ) from exc
    text = raw.decode("utf-8", "replace").strip()
    if len(raw) > MAX_TOKEN_BYTES or len(text) < MIN_TOKEN_CHARS or not text.isprintable():
        raise SettingsInvalid(
            f"the admin token file {path} does not hold a token ({MIN_TOKEN_CHARS}-"
            f"{MAX_TOKEN_BYTES} printable characters): delete it and restart the gateway"
        )
    return SecretStr(text)
