"""SQL stores of the channels' bookkeeping: the messages they posted about requests
(``hub.ports.ChannelMessageStore``) and who carries out each notification
(``hub.ports.NotificationClaimStore``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from hub.records import ChannelMessage, NotificationClaim
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


class SqlNotificationClaimStore(SqlStore):
    """The primary key (account, request, channel, operation) decides: of concurrent claims,
    from any number of processes, exactly one inserts its row; every claimant then reads
    who holds it (in the same transaction, so a PostgreSQL loser sees the committed row its
    insert waited for)."""

    async def claim(self, claim: NotificationClaim) -> bool:
        values = to_values(claim)
        values["operation"] = str(claim.operation)
        stmt = self._db.insert_missing(
            t.notification_claims,
            values,
            key=("account_id", "request_id", "channel", "operation"),
        )
        missing = f"account {claim.account_id!r} does not exist"
        c = t.notification_claims.c
        holder = select(c.claimed_by).where(
            c.account_id == claim.account_id,
            c.request_id == claim.request_id,
            c.channel == claim.channel,
            c.operation == values["operation"],
        )
        async with self._db.write(missing=missing) as conn:
            await conn.execute(stmt)
            held_by = (await conn.execute(holder)).scalar_one()
        return bool(held_by == claim.claimed_by)
