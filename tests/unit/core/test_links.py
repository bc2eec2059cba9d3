"""Signed decision links: what verifies, what is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.errors import AuthenticationError, ValidationError
from hub.links import DecisionLink, LinkExpiredError, LinkSigner, new_link_id, new_link_secret

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SECRET = "s" * 40


def _link(**changes: object) -> DecisionLink:
    fields: dict[str, object] = {
        "id": new_link_id(),
        "account_id": "acct_1",
        "request_id": "apr_1",
        "user_id": "user_1",
        "choice": "approve",
        "expires_at": int(NOW.timestamp()) + 60,
    }
    return DecisionLink(**(fields | changes))  # type: ignore[arg-type]


def test_a_signed_link_verifies_to_itself() -> None:
    link = _link()
    assert link == LinkSigner(SECRET).verify(LinkSigner(SECRET).sign(link), NOW)


def test_the_token_carries_no_secret() -> None:
    token = LinkSigner(SECRET).sign(_link())
    assert SECRET not in token


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
        lambda t: t.split(".")[0],  # signature cut off
        lambda t: t[:20],  # truncated
        lambda t: "x" + t,  # payload changed
        lambda t: t + "é",  # not ASCII
        lambda t: "",
    ],
)
def test_a_changed_token_is_refused(mangle: object) -> None:
    token = LinkSigner(SECRET).sign(_link())
    with pytest.raises(AuthenticationError, match="not valid"):
        LinkSigner(SECRET).verify(mangle(token), NOW)  # type: ignore[operator]


def test_another_servers_link_is_refused() -> None:
    token = LinkSigner("o" * 40).sign(_link())
    with pytest.raises(AuthenticationError, match="not valid"):
        LinkSigner(SECRET).verify(token, NOW)


def test_a_payload_swapped_between_links_is_refused() -> None:
    signer = LinkSigner(SECRET)
    deny = signer.sign(_link(choice="deny"))
    approve = signer.sign(_link(choice="approve"))
    with pytest.raises(AuthenticationError):
        signer.verify(approve.split(".")[0] + "." + deny.split(".")[1], NOW)


def test_an_expired_link_is_refused_at_its_deadline() -> None:
    signer = LinkSigner(SECRET)
    token = signer.sign(_link(expires_at=int(NOW.timestamp())))
    with pytest.raises(LinkExpiredError):
        signer.verify(token, NOW)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValidationError):
        LinkSigner("short")
    assert len(new_link_secret()) >= 32
