"""Each tracker's webhook scheme, checked against the trackers' own published examples and
against deliveries signed here the way each tracker signs them (hub/trackers/webhooks.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from hub.errors import AuthenticationError, ValidationError
from hub.trackers.webhooks import TIMESTAMP_TOLERANCE_SECONDS, verify

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SECRET = "s3cret-for-tests"

# GitHub's documentation, "Validating webhook deliveries": this secret and payload give this
# signature.
GITHUB_DOC_SECRET = "It's a Secret to Everybody"
GITHUB_DOC_BODY = b"Hello, World!"
GITHUB_DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# The Standard Webhooks specification's example (the scheme GitLab's signing token uses).
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _hex(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _standard(secret: bytes, webhook_id: str, stamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{stamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


# -- GitHub ----------------------------------------------------------------------------------


def test_githubs_published_example_verifies() -> None:
    headers = {
        "X-Hub-Signature-256": GITHUB_DOC_SIGNATURE,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-GitHub-Event": "issues",
    }
    delivery = verify("github", headers, GITHUB_DOC_BODY, GITHUB_DOC_SECRET, now=NOW)
    assert (delivery.delivery_id, delivery.event) == (
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "issues",
    )


def test_github_headers_are_matched_whatever_their_case() -> None:
    headers = {"x-hub-signature-256": GITHUB_DOC_SIGNATURE, "x-github-delivery": "d1"}
    assert (
        verify("github", headers, GITHUB_DOC_BODY, GITHUB_DOC_SECRET, now=NOW).delivery_id == "d1"
    )


@pytest.mark.parametrize(
    ("body", "secret", "signature", "says"),
    [
        (b"Hello, World?", GITHUB_DOC_SECRET, GITHUB_DOC_SIGNATURE, "does not match the body"),
        (GITHUB_DOC_BODY, "another secret", GITHUB_DOC_SIGNATURE, "does not match the body"),
        (GITHUB_DOC_BODY, GITHUB_DOC_SECRET, GITHUB_DOC_SIGNATURE.upper(), "does not match"),
        (GITHUB_DOC_BODY, GITHUB_DOC_SECRET, "sha1=" + "0" * 40, "does not match the body"),
        (GITHUB_DOC_BODY, GITHUB_DOC_SECRET, "", "no X-Hub-Signature-256 header"),
    ],
)
def test_a_forged_or_unsigned_github_delivery_is_refused(
    body: bytes, secret: str, signature: str, says: str
) -> None:
    headers = {"X-GitHub-Delivery": "d1"} | (
        {"X-Hub-Signature-256": signature} if signature else {}
    )
    with pytest.raises(AuthenticationError, match=says):
        verify("github", headers, body, secret, now=NOW)


def test_a_signed_github_delivery_without_its_id_cannot_be_deduplicated() -> None:
    headers = {"X-Hub-Signature-256": GITHUB_DOC_SIGNATURE}
    with pytest.raises(ValidationError, match="X-Github-Delivery"):
        verify("github", headers, GITHUB_DOC_BODY, GITHUB_DOC_SECRET, now=NOW)


def test_no_configured_secret_refuses_every_delivery() -> None:
    headers = {"X-Hub-Signature-256": _hex("", b"{}"), "X-GitHub-Delivery": "d1"}
    with pytest.raises(AuthenticationError, match="no webhook secret"):
        verify("github", headers, b"{}", "", now=NOW)


# -- GitLab ----------------------------------------------------------------------------------


def test_a_gitlab_delivery_with_the_secret_token_verifies() -> None:
    headers = {
        "X-Gitlab-Token": SECRET,
        "X-Gitlab-Event": "Issue Hook",
        "X-Gitlab-Webhook-UUID": "uuid-1",
        "X-Gitlab-Event-UUID": "event-1",
    }
    delivery = verify("gitlab", headers, b"{}", SECRET, now=NOW)
    assert (delivery.delivery_id, delivery.event) == ("uuid-1", "Issue Hook")


@pytest.mark.parametrize("token", ["wrong", SECRET + " ", SECRET[:-1], ""])
def test_a_gitlab_delivery_with_another_token_is_refused(token: str) -> None:
    headers = {"X-Gitlab-Webhook-UUID": "uuid-1"} | ({"X-Gitlab-Token": token} if token else {})
    with pytest.raises(AuthenticationError, match="X-Gitlab-Token"):
        verify("gitlab", headers, b"{}", SECRET, now=NOW)


def test_the_standard_webhooks_published_example_verifies() -> None:
    headers = {
        "webhook-id": SW_ID,
        "webhook-timestamp": str(SW_TIMESTAMP),
        "webhook-signature": SW_SIGNATURE,
    }
    at = datetime.fromtimestamp(SW_TIMESTAMP, UTC)
    assert verify("gitlab", headers, SW_BODY, SW_SECRET, now=at).delivery_id == SW_ID


def test_a_signed_gitlab_delivery_with_several_signatures_verifies_if_one_matches() -> None:
    stamp = int(NOW.timestamp())
    good = _standard(SECRET.encode(), "wh-1", stamp, b"{}")
    headers = {
        "webhook-id": "wh-1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": f"v1,{'A' * 44} v2,{good[3:]} {good}",
        "X-Gitlab-Webhook-UUID": "uuid-9",
    }
    assert verify("gitlab", headers, b"{}", SECRET, now=NOW).delivery_id == "uuid-9"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"body": b'{"test": 2432232315}'}, "no Webhook-Signature matches"),
        ({"id": "msg_other"}, "no Webhook-Signature matches"),
        ({"now": SW_TIMESTAMP + TIMESTAMP_TOLERANCE_SECONDS + 1}, "more than 5 minutes"),
        ({"now": SW_TIMESTAMP - TIMESTAMP_TOLERANCE_SECONDS - 1}, "more than 5 minutes"),
        ({"stamp": "1614265330.5"}, "not a Unix time"),
        ({"stamp": ""}, "Webhook-Timestamp headers"),
        ({"signature": SW_SIGNATURE.replace("v1,", "v2,")}, "no Webhook-Signature matches"),
    ],
)
def test_a_forged_replayed_or_malformed_signed_gitlab_delivery_is_refused(
    change: dict[str, object], says: str
) -> None:
    stamp = change.get("stamp", str(SW_TIMESTAMP))
    headers = {
        "webhook-id": str(change.get("id", SW_ID)),
        "webhook-signature": str(change.get("signature", SW_SIGNATURE)),
    } | ({"webhook-timestamp": str(stamp)} if stamp else {})
    body = change.get("body", SW_BODY)
    assert isinstance(body, bytes)
    at = datetime.fromtimestamp(float(str(change.get("now", SW_TIMESTAMP))), UTC)
    with pytest.raises(AuthenticationError, match=says):
        verify("gitlab", headers, body, SW_SECRET, now=at)


def test_the_tolerance_admits_a_delivery_just_inside_it() -> None:
    headers = {
        "webhook-id": SW_ID,
        "webhook-timestamp": str(SW_TIMESTAMP),
        "webhook-signature": SW_SIGNATURE,
    }
    at = datetime.fromtimestamp(SW_TIMESTAMP, UTC) + timedelta(seconds=TIMESTAMP_TOLERANCE_SECONDS)
    assert verify("gitlab", headers, SW_BODY, SW_SECRET, now=at).delivery_id == SW_ID


# -- Jira ------------------------------------------------------------------------------------


def test_a_jira_admin_webhook_verifies_and_names_its_event() -> None:
    body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "OPS-1"}}).encode()
    headers = {"X-Hub-Signature": _hex(SECRET, body), "X-Atlassian-Webhook-Identifier": "j-1"}
    delivery = verify("jira", headers, body, SECRET, now=NOW)
    assert (delivery.delivery_id, delivery.event) == ("j-1", "jira:issue_updated")


def test_a_jira_delivery_signed_with_another_secret_or_unsigned_is_refused() -> None:
    body = b'{"webhookEvent": "jira:issue_created"}'
    headers = {"X-Hub-Signature": _hex("other", body), "X-Atlassian-Webhook-Identifier": "j-1"}
    with pytest.raises(AuthenticationError, match="X-Hub-Signature signature does not match"):
        verify("jira", headers, body, SECRET, now=NOW)
    with pytest.raises(AuthenticationError, match="no X-Hub-Signature header"):
        verify("jira", {"X-Atlassian-Webhook-Identifier": "j-1"}, body, SECRET, now=NOW)


def test_a_signed_jira_delivery_without_its_identifier_or_with_a_garbage_body() -> None:
    body = b"not json"
    with pytest.raises(ValidationError, match="X-Atlassian-Webhook-Identifier"):
        verify("jira", {"X-Hub-Signature": _hex(SECRET, body)}, body, SECRET, now=NOW)
    headers = {"X-Hub-Signature": _hex(SECRET, body), "X-Atlassian-Webhook-Identifier": "j-2"}
    assert verify("jira", headers, body, SECRET, now=NOW).event == ""
