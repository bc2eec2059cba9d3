"""Verifying a tracker's webhook delivery by the tracker's own scheme, in constant time.

    GitHub  X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>
            delivery id X-GitHub-Delivery, event X-GitHub-Event
    GitLab  X-Gitlab-Token: <the secret token>                        (the default)
            or Standard Webhooks signing (webhook-id, webhook-timestamp,
            webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">,
            several space-separated; timestamp within 5 minutes)
            delivery id X-Gitlab-Webhook-UUID (else X-Gitlab-Event-UUID, else webhook-id),
            event X-Gitlab-Event
    Jira    X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>  (admin webhooks)
            delivery id X-Atlassian-Webhook-Identifier, event from the body's webhookEvent

``verify`` answers the delivery's id and event once its proof holds, else raises
``AuthenticationError`` naming the header that failed (a forged or unsigned delivery) or
``ValidationError`` (a signed delivery without the id the inbox deduplicates on). The body is
checked exactly as received: callers pass the raw bytes, never a re-encoded JSON. A
Standard Webhooks secret may carry its ``whsec_`` prefix (the key is then the base64 after it).
Headers are matched case-insensitively. Capping the body's size is the HTTP edge's job, before
the body is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

import msgspec

from hub.errors import AuthenticationError, ValidationError
from hub.trackers.records import TrackerKind

TIMESTAMP_TOLERANCE_SECONDS = 300  # Standard Webhooks' recommendation


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """A verified delivery: what the inbox keys it by and what it is about."""

    tracker: TrackerKind
    delivery_id: str
    event: str


def verify(
    kind: TrackerKind,
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: datetime,
) -> Delivery:
    """The delivery ``body`` with ``headers``, once proven to come from the tracker holding
    ``secret``."""
    if not secret:
        raise AuthenticationError(f"no webhook secret is configured for this {kind} tracker")
    lower = {name.lower(): value for name, value in headers.items()}
    if kind == TrackerKind.GITHUB:
        _check_hex_hmac(lower, "x-hub-signature-256", body, secret)
        return Delivery(
            tracker=kind,
            delivery_id=_required(lower, "x-github-delivery"),
            event=lower.get("x-github-event", ""),
        )
    if kind == TrackerKind.GITLAB:
        if "webhook-signature" in lower:
            delivery_id = _check_standard_webhook(lower, body, secret, now)
        else:
            _check_token(lower, "x-gitlab-token", secret)
            delivery_id = ""
        delivery_id = (
            lower.get("x-gitlab-webhook-uuid")
            or lower.get("x-gitlab-event-uuid")
            or delivery_id
            or _required(lower, "x-gitlab-webhook-uuid")
        )
        return Delivery(
            tracker=kind, delivery_id=delivery_id, event=lower.get("x-gitlab-event", "")
        )
    _check_hex_hmac(lower, "x-hub-signature", body, secret)
    return Delivery(
        tracker=kind,
        delivery_id=_required(lower, "x-atlassian-webhook-identifier"),
        event=_jira_event(body),
    )


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise ValidationError(f"the delivery has no {_title(name)} header to deduplicate it by")
    return value


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _check_hex_hmac(headers: Mapping[str, str], name: str, body: bytes, secret: str) -> None:
    given = headers.get(name, "")
    if not given:
        raise AuthenticationError(f"the delivery is not signed: no {_title(name)} header")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise AuthenticationError(f"the {_title(name)} signature does not match the body")


def _check_token(headers: Mapping[str, str], name: str, secret: str) -> None:
    given = headers.get(name, "")
    if not given:
        raise AuthenticationError(f"the delivery carries no {_title(name)} header")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise AuthenticationError(f"the {_title(name)} header does not match the secret token")


def _standard_webhooks_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            raise AuthenticationError("the webhook signing secret is not valid base64") from None
    return secret.encode()


def _check_standard_webhook(
    headers: Mapping[str, str], body: bytes, secret: str, now: datetime
) -> str:
    webhook_id = headers.get("webhook-id", "").strip()
    stamp = headers.get("webhook-timestamp", "").strip()
    if not webhook_id or not stamp:
        raise AuthenticationError(
            "a signed delivery needs its Webhook-Id and Webhook-Timestamp headers"
        )
    if not stamp.isdigit() or len(stamp) > 12:
        raise AuthenticationError("the Webhook-Timestamp header is not a Unix time in seconds")
    if abs(now.timestamp() - int(stamp)) > TIMESTAMP_TOLERANCE_SECONDS:
        raise AuthenticationError(
            "the Webhook-Timestamp is more than 5 minutes away from now (a replayed or delayed "
            "delivery)"
        )
    signed = webhook_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(
        hmac.new(_standard_webhooks_key(secret), signed, hashlib.sha256).digest()
    )
    matched = False
    for candidate in headers["webhook-signature"].split():
        version, _, signature = candidate.partition(",")
        if version == "v1":
            matched |= hmac.compare_digest(signature.encode(), expected)
    if not matched:
        raise AuthenticationError("no Webhook-Signature matches the body")
    return webhook_id


def _jira_event(body: bytes) -> str:
    try:
        payload = msgspec.json.decode(body, type=dict[str, object])
    except msgspec.DecodeError:
        return ""
    event = payload.get("webhookEvent")
    return event if isinstance(event, str) else ""
