"""Webhook replay through a real `archon-gateway serve` process over HTTP on 127.0.0.1: the
delivery id is part of what is signed, the timestamp must be whole epoch seconds, and a
repeated delivery id (either scheme) is never stored or acted on twice."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import anyio
import httpx
import pytest

from tests.support import running_http_gateway

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

SECRET = "replay-test-secret-" + "3" * 16
BODY = json.dumps({"event": "deploy", "ref": "main"}).encode()


def archon_headers(delivery: str, stamp: str) -> dict[str, str]:
    """Headers as a sender following docs/store.md writes them: the HMAC of
    `<timestamp>.<delivery id>.<body>`."""
    mac = hmac.new(SECRET.encode(), f"{stamp}.{delivery}.".encode() + BODY, hashlib.sha256)
    return {
        "content-type": "application/json",
        "x-archon-timestamp": stamp,
        "x-archon-signature": f"sha256={mac.hexdigest()}",
        "x-archon-delivery": delivery,
    }


async def test_a_signed_delivery_replayed_under_a_new_delivery_id_is_refused(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = gateway_env | {"ARCHON_HOOK_SECRETS": json.dumps({"ci": SECRET})}
    now = str(int(time.time()))
    with anyio.fail_after(60):
        async with (
            running_http_gateway(env, tmp_path) as (_, url, _),
            httpx.AsyncClient(base_url=url.removesuffix("/mcp")) as web,
        ):
            original = archon_headers("d-1", now)
            accepted = await web.post("/hooks/ci", content=BODY, headers=original)
            assert accepted.status_code == 202, accepted.text

            # The captured signature and timestamp, sent again under a fresh delivery id.
            replayed = original | {"x-archon-delivery": "d-2"}
            refused = await web.post("/hooks/ci", content=BODY, headers=replayed)
            assert refused.status_code == 401
            assert refused.json()["reason"] == "bad_signature"

            # The same delivery again is a duplicate: acknowledged, not acted on twice.
            again = await web.post("/hooks/ci", content=BODY, headers=original)
            assert (again.status_code, again.json()["status"]) == (200, "duplicate")

            # A sender still signing the old `<timestamp>.<body>` is refused, not half-trusted.
            old_mac = hmac.new(SECRET.encode(), f"{now}.".encode() + BODY, hashlib.sha256)
            old_scheme = original | {
                "x-archon-delivery": "d-3",
                "x-archon-signature": f"sha256={old_mac.hexdigest()}",
            }
            old = await web.post("/hooks/ci", content=BODY, headers=old_scheme)
            assert old.status_code == 401


async def test_a_timestamp_that_is_not_whole_epoch_seconds_is_refused_naming_the_header(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = gateway_env | {"ARCHON_HOOK_SECRETS": json.dumps({"ci": SECRET})}
    now = int(time.time())
    # "nan" compared with anything is never stale; the others are floats float() accepts.
    stamps = ["nan", "NaN", "inf", "-inf", "infinity", f"{now}.5", f"{now}e0", f"+{now}", "1e400"]
    with anyio.fail_after(60):
        async with (
            running_http_gateway(env, tmp_path) as (_, url, _),
            httpx.AsyncClient(base_url=url.removesuffix("/mcp")) as web,
        ):
            for n, stamp in enumerate(stamps):
                headers = archon_headers(f"bad-{n}", stamp)
                answer = await web.post("/hooks/ci", content=BODY, headers=headers)
                assert answer.status_code == 401, (stamp, answer.text)
                assert answer.json()["reason"] == "bad_timestamp", stamp
                assert "X-Archon-Timestamp must be whole epoch seconds" in answer.json()["error"]
            # The next, well-formed delivery is served.
            good = await web.post("/hooks/ci", content=BODY, headers=archon_headers("ok", str(now)))
            assert good.status_code == 202, good.text


async def test_a_github_delivery_id_seen_before_is_never_stored_or_acted_on_again(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = gateway_env | {"ARCHON_HOOK_SECRETS": json.dumps({"github": SECRET})}
    mac = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json",
        "x-hub-signature-256": f"sha256={mac}",
        "x-github-event": "push",
        "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }
    with anyio.fail_after(60):
        async with (
            running_http_gateway(env, tmp_path) as (_, url, _),
            httpx.AsyncClient(base_url=url.removesuffix("/mcp")) as web,
        ):
            first = await web.post("/hooks/github", content=BODY, headers=headers)
            assert first.status_code == 202, first.text
            replay = await web.post("/hooks/github", content=BODY, headers=headers)
            assert (replay.status_code, replay.json()["status"]) == (200, "duplicate")
