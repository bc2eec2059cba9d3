"""Paired devices and their pairing tokens in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Update, case, insert, literal, select, update

from hub.errors import NotFoundError
from hub.records import Device, PairingToken
from hub.store_rules import aware_utc
from server.db import tables as t
from server.db.stores._base import SqlStore, to_record, to_values
from server.db.tables import UtcDateTime


class SqlDeviceStore(SqlStore):
    async def add(self, device: Device) -> None:
        conflict = f"device {device.id!r} or its secret hash exists"
        missing = f"account {device.account_id!r} or user {device.user_id!r} does not exist"
        async with self._db.write(conflict=conflict, missing=missing) as conn:
            await conn.execute(insert(t.devices).values(to_values(device)))

    async def get(self, device_id: str) -> Device | None:
        return await self._first(select(t.devices).where(t.devices.c.id == device_id), Device)

    async def list(self, account_id: str, *, user_id: str | None = None) -> Sequence[Device]:
        c = t.devices.c
        stmt = select(t.devices).where(c.account_id == account_id)
        if user_id is not None:
            stmt = stmt.where(c.user_id == user_id)
        return await self._all(stmt.order_by(c.created_at, c.id), Device)

    async def revoke(self, account_id: str, device_id: str, at: datetime) -> Device:
        c = t.devices.c
        at_value = literal(at, UtcDateTime())
        earliest = case(
            (c.revoked_at.is_(None) | (c.revoked_at > at_value), at_value), else_=c.revoked_at
        )
        stmt = (
            update(t.devices)
            .where(c.account_id == account_id, c.id == device_id)
            .values(revoked_at=earliest)
            .returning(*c)
        )
        return await self._one(stmt, device_id)

    async def set_push_token(
        self, account_id: str, device_id: str, push_token: str | None
    ) -> Device:
        c = t.devices.c
        stmt = (
            update(t.devices)
            .where(c.account_id == account_id, c.id == device_id)
            .values(push_token=push_token)
            .returning(*c)
        )
        return await self._one(stmt, device_id)

    async def _one(self, stmt: Update, device_id: str) -> Device:
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFoundError(f"device {device_id!r} does not exist")
        return to_record(row, Device)


class SqlPairingStore(SqlStore):
    async def add(self, token: PairingToken) -> None:
        conflict = f"pairing token {token.id!r} or its hash exists"
        missing = f"account {token.account_id!r} or user {token.user_id!r} does not exist"
        async with self._db.write(conflict=conflict, missing=missing) as conn:
            await conn.execute(insert(t.pairing_tokens).values(to_values(token)))

    async def get(self, pairing_id: str) -> PairingToken | None:
        stmt = select(t.pairing_tokens).where(t.pairing_tokens.c.id == pairing_id)
        return await self._first(stmt, PairingToken)

    async def use(self, pairing_id: str, *, at: datetime, device_id: str) -> PairingToken | None:
        c = t.pairing_tokens.c
        at = aware_utc(at, "used_at")
        stmt = (
            update(t.pairing_tokens)
            .where(c.id == pairing_id, c.used_at.is_(None), c.expires_at > at)
            .values(used_at=at, device_id=device_id)
            .returning(*c)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
            if row is None:
                exists = select(c.id).where(c.id == pairing_id)
                if (await conn.execute(exists)).first() is None:
                    raise NotFoundError(f"pairing token {pairing_id!r} does not exist")
                return None
        return to_record(row, PairingToken)
