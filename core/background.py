"""Tasks that run beside a block and end with it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio


@asynccontextmanager
async def running_beside(*tasks: Callable[[], Coroutine[Any, Any, object]]) -> AsyncIterator[None]:
    """Run `tasks` for the duration of the block, cancelling them when it ends. An error
    raised in the block comes out as itself, not wrapped in an exception group."""
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        for task in tasks:
            tg.start_soon(task)
        try:
            yield
        except Exception as exc:
            failure = exc
        finally:
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
