"""Whether a webhook delivery was signed by its source, and signed recently.

The Archon scheme signs `<X-Archon-Timestamp>.<X-Archon-Delivery>.<raw body>`: the timestamp
so the replay window cannot be moved, the delivery id so a captured delivery cannot be sent
again under a fresh id (the store keeps each id once, so the same id is a duplicate). The
`github` source keeps GitHub's own scheme: `X-Hub-Signature-256` over the raw body, with no
timestamp; there a replay is refused by its delivery id alone.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from archon_gateway.core.errors import WebhookRejected

# Epoch seconds as plain decimal digits: 12 cover the next 30,000 years.
MAX_TIMESTAMP_DIGITS = 12


def archon_signature(secret: str, timestamp: str, delivery: str, body: bytes) -> str:
    """The `X-Archon-Signature` value a sender puts on a delivery."""
    signed = timestamp.encode() + b"." + delivery.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def github_signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub puts on a delivery."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_archon(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    delivery: str,
    now: float,
    tolerance: float,
) -> None:
    """WebhookRejected (401) unless the delivery is signed with `secret` over its
    timestamp, delivery id and body, and the timestamp is within `tolerance` s of `now`."""
    given = _signature(headers, "x-archon-signature")
    stamp = headers.get("x-archon-timestamp", "")
    if not stamp:
        raise WebhookRejected(
            401, "missing_timestamp", "X-Archon-Timestamp (epoch seconds) is required"
        )
    # Only plain digits: float() would take "nan" (never stale) and "1e9".
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= MAX_TIMESTAMP_DIGITS):
        raise WebhookRejected(
            401,
            "bad_timestamp",
            "X-Archon-Timestamp must be whole epoch seconds "
            f"(at most {MAX_TIMESTAMP_DIGITS} digits, no sign, point or exponent)",
        )
    if abs(now - int(stamp)) > tolerance:
        raise WebhookRejected(
            401,
            "stale_timestamp",
            f"X-Archon-Timestamp is more than {tolerance:g} s off the gateway's clock",
        )
    _compare(given, archon_signature(secret, stamp, delivery, body))


def verify_github(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """WebhookRejected (401) unless the body is signed with `secret` (GitHub's scheme)."""
    _compare(_signature(headers, "x-hub-signature-256"), github_signature(secret, body))


def _signature(headers: Mapping[str, str], header: str) -> str:
    given = headers.get(header) or headers.get("x-archon-signature")
    if not given:
        raise WebhookRejected(401, "missing_signature", f"the {header} header is required")
    return given


def _compare(given: str, expected: str) -> None:
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise WebhookRejected(401, "bad_signature", "the webhook signature does not match")
