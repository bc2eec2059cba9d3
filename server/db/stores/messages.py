"""SQL store of the messages channels posted about requests (``hub.ports.ChannelMessageStore``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from hub.records import ChannelMessage
from server.db import tables as t
from server.db.stores._base import SqlStore, to_values


class SqlChannelMessageStore(SqlStore):
    async def add(self, message: ChannelMessage) -> None:
        stmt = self._db.insert_missing(
            t.channel_messages, to_values(message), key=("channel", "conversation", "ts")
        )
        missing = f"account {message.account_id!r} does not exist"
        async with self._db.write(missing=missing) as conn:
            await conn.execute(stmt)

    async def list(
        self, account_id: str, request_id: str, channel: str
    ) -> Sequence[ChannelMessage]:
        c = t.channel_messages.c
        stmt = (
            select(t.channel_messages)
            .where(c.account_id == account_id, c.request_id == request_id, c.channel == channel)
            .order_by(c.created_at, c.conversation, c.ts)
        )
        return await self._all(stmt, ChannelMessage)
