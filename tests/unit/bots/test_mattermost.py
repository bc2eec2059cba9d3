"""Mattermost button tokens and driver options (bots/mattermost/tokens.py, notifier.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bots.mattermost import ActionSigner, ActionToken, driver_options
from hub.errors import AuthenticationError, ConfigError, ValidationError
from hub.links import DecisionLink, LinkExpiredError, LinkSigner
from hub.settings import MattermostSettings

SECRET = "s" * 32
NOW = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN = ActionToken(
    account_id="acc", request_id="apr_1", action="approve", expires_at=int(NOW.timestamp()) + 60
)


def test_a_token_round_trips_and_tampering_is_refused() -> None:
    signer = ActionSigner(SECRET)
    text = signer.sign(TOKEN)
    assert TOKEN == signer.verify(text, NOW)
    payload, _, signature = text.partition(".")
    other = signer.sign(
        ActionToken(account_id="acc", request_id="apr_1", action="deny", expires_at=2**40)
    )
    for bad in (payload, f"{payload}.{signature[:-2]}", f"{other.split('.')[0]}.{signature}"):
        with pytest.raises(AuthenticationError):
            signer.verify(bad, NOW)
    with pytest.raises(AuthenticationError):
        ActionSigner("t" * 32).verify(text, NOW)


def test_an_expired_token_is_refused() -> None:
    text = ActionSigner(SECRET).sign(TOKEN)
    with pytest.raises(LinkExpiredError):
        ActionSigner(SECRET).verify(text, datetime.fromtimestamp(TOKEN.expires_at, UTC))


def test_an_email_link_is_no_button_token_under_the_same_secret() -> None:
    link = LinkSigner(SECRET).sign(
        DecisionLink(
            id="lnk_1",
            account_id="acc",
            request_id="apr_1",
            user_id="u",
            choice="approve",
            expires_at=2**40,
        )
    )
    with pytest.raises(AuthenticationError):
        ActionSigner(SECRET).verify(link, NOW)
    with pytest.raises(AuthenticationError):
        LinkSigner(SECRET).verify(ActionSigner(SECRET).sign(TOKEN), NOW)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValidationError):
        ActionSigner("short")


def test_driver_options_come_from_the_url() -> None:
    options = driver_options(
        MattermostSettings(url="https://chat.example.com/mm/", token="tok", channel_id="")
    )
    assert ("https", "chat.example.com", 443, "/mm/api/v4", "tok") == (
        options["scheme"],
        options["url"],
        options["port"],
        options["basepath"],
        options["token"],
    )
    assert 8065 == driver_options(MattermostSettings(url="http://127.0.0.1:8065"))["port"]
    with pytest.raises(ConfigError):
        driver_options(MattermostSettings(url="chat.example.com"))
