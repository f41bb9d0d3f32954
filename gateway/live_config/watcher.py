"""Watching the manifest folders and the config file (watchfiles: inotify and friends,
debounced in its own thread). A burst of writes (an editor's save, a script writing twenty
files) becomes one call of `changed` once the files have been quiet for `quiet` seconds."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio
from watchfiles import Change, awatch

log = logging.getLogger(__name__)

# Even a never-ending stream of writes reloads at least this often (seconds).
_LONGEST_BURST = 5.0


def watch_roots(folders: Sequence[Path], files: Sequence[Path]) -> list[Path]:
    """The directories to watch (not recursively): each manifest folder, and each file's
    folder (editors replace a file on save, which a watch on the file itself would lose)."""
    roots = {folder.resolve() for folder in folders if folder.is_dir()}
    roots |= {file.parent.resolve() for file in files if file.parent.is_dir()}
    return sorted(roots)


def relevant(folders: Sequence[Path], files: Sequence[Path]) -> Callable[[Change, str], bool]:
    """Manifests (`*.toml` directly in a manifest folder) and the config files: not an
    editor's swap file, nor anything else in the config file's folder."""
    folder_set = {folder.resolve() for folder in folders if folder.is_dir()}
    file_set = {file.parent.resolve() / file.name for file in files if file.parent.is_dir()}

    def check(change: Change, raw: str) -> bool:
        path = Path(raw)
        return path in file_set or (path.suffix == ".toml" and path.parent in folder_set)

    return check


async def watch_files(
    folders: Sequence[Path],
    files: Sequence[Path],
    changed: Callable[[], Awaitable[None]],
    *,
    quiet: float,
    stop: anyio.Event,
) -> None:
    """Call `changed` after each quiet burst of changes, until `stop` is set (set it before
    cancelling: the watching thread then returns at once)."""
    roots = await anyio.to_thread.run_sync(watch_roots, folders, files)
    if not roots:
        log.info("no configuration folder exists to watch")
        return
    check = await anyio.to_thread.run_sync(relevant, folders, files)
    quiet_ms = max(int(quiet * 1000), 1)
    log.debug("watching %s for configuration changes", ", ".join(map(str, roots)))
    async for _ in awatch(
        *roots,
        watch_filter=check,
        step=quiet_ms,
        debounce=max(quiet_ms, int(_LONGEST_BURST * 1000)),
        recursive=False,
        stop_event=stop,
    ):
        try:
            await changed()
        except Exception:  # a bug in one reload must not end the watching
            log.exception("reloading the configuration failed")
