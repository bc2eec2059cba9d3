"""Posted messages: recorded in the store; a retry after a failed recording posts nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bots._messages import PostedMessages
from hub.clock import FrozenClock
from hub.memory import InMemoryStorage
from hub.records import Account, ApprovalRequest, ChannelMessage

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


class Unreliable:
    """The channel message store with its first ``failures`` adds failing."""

    def __init__(self, storage: InMemoryStorage, failures: int) -> None:
        self._store = storage.channel_messages
        self.failures = failures

    async def add(self, message: ChannelMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("the database went away")
        await self._store.add(message)

    async def list(self, account_id: str, request_id: str, channel: str) -> list[ChannelMessage]:
        return list(await self._store.list(account_id, request_id, channel))


@pytest.fixture
async def storage() -> InMemoryStorage:
    storage = InMemoryStorage()
    await storage.accounts.add(Account(id="acct_1", name="acme", created_at=T0))
    return storage


REQUEST = ApprovalRequest(
    id="apr_1",
    account_id="acct_1",
    principal_key_id="key_1",
    server="demo",
    tool="echo",
    args_digest="d",
    policy_version=1,
    workflow="w",
    created_at=T0,
)


async def test_a_retry_after_a_failed_recording_records_without_posting_again(
    storage: InMemoryStorage,
) -> None:
    posts: list[str] = []

    async def post() -> tuple[str, str]:
        posts.append("posted")
        return "C1", f"ts{len(posts)}"

    messages = PostedMessages(Unreliable(storage, failures=1), "slack", FrozenClock(T0))
    with pytest.raises(ConnectionResetError):
        await messages.post_once(REQUEST, escalation=False, post=post)
    await messages.post_once(REQUEST, escalation=False, post=post)  # the dispatch's retry
    await messages.post_once(REQUEST, escalation=True, post=post)  # the escalation

    assert ["posted", "posted"] == posts
    assert [("C1", "ts1"), ("C1", "ts2")] == [
        (m.conversation, m.ts)
        for m in await PostedMessages(storage.channel_messages, "slack", FrozenClock(T0)).of(
            REQUEST
        )
    ]
