"""What the token stores share: revoking a token keeps the earliest revocation time."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import msgspec
from sqlalchemy import Table, case, literal, update

from hub.errors import NotFoundError
from server.db.stores._base import Database, to_record
from server.db.tables import UtcDateTime

R = TypeVar("R", bound=msgspec.Struct)


async def revoke_token(
    db: Database,
    table: Table,
    cls: type[R],
    account_id: str,
    token_id: str,
    at: datetime,
    what: str,
) -> R:
    """Revoke ``token_id`` at ``at`` (an earlier revocation stands) and answer the token;
    ``NotFoundError`` naming ``what`` ("access token") when the account has no such token."""
    c = table.c
    at_value = literal(at, UtcDateTime())
    earliest = case(
        (c.revoked_at.is_(None) | (c.revoked_at > at_value), at_value), else_=c.revoked_at
    )
    stmt = (
        update(table)
        .where(c.account_id == account_id, c.id == token_id)
        .values(revoked_at=earliest)
        .returning(*c)
    )
    async with db.write() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFoundError(f"{what} {token_id!r} does not exist")
    return to_record(row, cls)
