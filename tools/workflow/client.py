"""HTTP client for the workflow coordinator.

REST mapping (JSON bodies; documented in docs/tools.md):

    POST   /workflows/{workflow}/runs   {"inputs": {...}}   -> 200/201/202 {"run_id": "..."}
    GET    /runs/{run_id}                                   -> 200 RunStatus
    POST   /runs/{run_id}/cancel                            -> any (best effort, no breaker)

RunStatus: {"status": "queued"|"running"|"succeeded"|"failed"|"cancelled",
            "progress": number|null, "total": number|null, "message": str|null,
            "result": any, "error": str|null}

Every request passes the backend's breaker; 5xx answers, connection failures and request
timeouts raise UpstreamUnavailable (which the breaker counts); 4xx answers are answers
(the coordinator is up) and become InvalidArgument or WorkflowFailed outside the guard.
Polling backs off from `poll_min` to `poll_max` seconds and survives a few failed polls in
a row, since the run keeps going on the coordinator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import quote

import anyio
import httpx
from pydantic import BaseModel, ValidationError

from archon_gateway.core.circuit_breaker import CircuitBreaker
from archon_gateway.core.errors import InvalidArgument, UpstreamUnavailable, WorkflowFailed
from archon_gateway.core.http_client import http_errors, raise_for_unavailable

RunState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
NAME = "workflow coordinator"


class RunStatus(BaseModel):
    status: RunState
    progress: float | None = None
    total: float | None = None
    message: str | None = None
    result: Any = None
    error: str | None = None


ProgressCallback = Callable[[RunStatus], Awaitable[None]]


class CoordinatorClient:
    """One coordinator behind one breaker, over an httpx client the caller owns."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        breaker: CircuitBreaker,
        *,
        poll_min: float = 0.1,
        poll_max: float = 2.0,
        poll_failures: int = 3,
        cancel_within: float = 5.0,
    ) -> None:
        self._http = http
        self._breaker = breaker
        self._poll_min = poll_min
        self._poll_max = poll_max
        self._poll_failures = poll_failures
        self._cancel_within = cancel_within

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        async with self._breaker.guard(), http_errors(NAME):
            response = await self._http.request(method, path, json=body)
            return raise_for_unavailable(response, NAME)

    async def start(self, workflow: str, inputs: dict[str, Any]) -> str:
        path = f"/workflows/{quote(workflow, safe='')}/runs"
        response = await self._request("POST", path, {"inputs": inputs})
        if response.status_code == 404:
            raise InvalidArgument(f"workflow: {workflow!r} is not known to the {NAME}")
        if response.status_code >= 400:
            raise InvalidArgument(
                f"the {NAME} refused {workflow!r} (HTTP {response.status_code}): "
                f"{_detail(response)}"
            )
        run_id = _json(response).get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise UpstreamUnavailable(f"{NAME} answered POST {path} without a run_id")
        return run_id

    async def status(self, run_id: str) -> RunStatus:
        path = f"/runs/{quote(run_id, safe='')}"
        response = await self._request("GET", path)
        if response.status_code >= 400:
            raise WorkflowFailed(
                f"{NAME} lost run {run_id} (HTTP {response.status_code}): {_detail(response)}"
            )
        try:
            return RunStatus.model_validate(_json(response))
        except ValidationError:
            reason = f"{NAME} sent an unreadable status for run {run_id}"
            # from None: pydantic's error quotes the body, which may echo the caller's inputs.
            raise UpstreamUnavailable(reason) from None

    async def cancel(self, run_id: str) -> None:
        """Best-effort clean-up, sent even while the breaker is open (and not counted)."""
        async with http_errors(NAME):
            await self._http.post(f"/runs/{quote(run_id, safe='')}/cancel")

    async def wait(self, run_id: str, on_progress: ProgressCallback | None = None) -> RunStatus:
        """Poll until the run ends; report each change of progress or message."""
        delay = self._poll_min
        failures = 0
        last: tuple[float | None, float | None, str | None] | None = None
        while True:
            try:
                state = await self.status(run_id)
            except UpstreamUnavailable:
                failures += 1
                if failures >= self._poll_failures:
                    raise
            else:
                failures = 0
                seen = (state.progress, state.total, state.message)
                if on_progress is not None and seen != last and state.status not in FINAL:
                    await on_progress(state)
                last = seen
                if state.status in FINAL:
                    return state
            await anyio.sleep(delay)
            delay = min(delay * 1.5, self._poll_max)

    async def run(
        self,
        workflow: str,
        inputs: dict[str, Any],
        on_progress: ProgressCallback | None = None,
    ) -> tuple[str, Any]:
        """Start a run and wait for its result. If this is cancelled (the MCP call was
        cancelled or timed out) or polling gives up, the remote run is cancelled first,
        within a short bound, and the error propagates."""
        run_id = await self.start(workflow, inputs)
        try:
            state = await self.wait(run_id, on_progress)
        except BaseException:
            with anyio.move_on_after(self._cancel_within, shield=True):
                # Best effort: the error that brought us here is the one to report.
                with contextlib.suppress(Exception):
                    await self.cancel(run_id)
            raise
        if state.status == "failed":
            raise WorkflowFailed(
                f"workflow {workflow!r} run {run_id} failed: {state.error or 'no reason given'}"
            )
        if state.status == "cancelled":
            raise WorkflowFailed(f"workflow {workflow!r} run {run_id} was cancelled remotely")
        return run_id, state.result


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise UpstreamUnavailable(
            f"{NAME} answered HTTP {response.status_code} with a body that is not JSON"
        ) from exc
    return body if isinstance(body, dict) else {}


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or "no detail"
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])[:200]
    return str(body)[:200]
