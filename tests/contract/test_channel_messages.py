"""Messages channels posted about requests: recorded once, listed per request and channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.errors import NotFoundError
from hub.ports import Storage
from hub.records import ChannelMessage

from .records import new_account

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def _message(account: str, request: str, ts: str, at: datetime = T0) -> ChannelMessage:
    return ChannelMessage(
        account_id=account,
        request_id=request,
        channel="slack",
        conversation="C1",
        ts=ts,
        created_at=at,
    )


async def test_messages_are_listed_per_request_and_channel_oldest_first(
    storage: Storage,
) -> None:
    account = await new_account(storage, "acme")
    later = _message(account, "apr_1", "2.0", T0 + timedelta(seconds=5))
    first = _message(account, "apr_1", "1.0")
    await storage.channel_messages.add(later)
    await storage.channel_messages.add(first)
    await storage.channel_messages.add(first)  # again: ignored
    await storage.channel_messages.add(_message(account, "apr_2", "3.0"))

    assert [first, later] == list(await storage.channel_messages.list(account, "apr_1", "slack"))
    assert [] == list(await storage.channel_messages.list(account, "apr_1", "mattermost"))
    other = await new_account(storage, "other")
    assert [] == list(await storage.channel_messages.list(other, "apr_1", "slack"))


async def test_a_message_of_a_missing_account_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFoundError):
        await storage.channel_messages.add(_message("acct_missing", "apr_1", "1.0"))
