"""The audit trail as the REST API answers it: events (also each line of the export) and the
hash chain's verification."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class AuditEventView(msgspec.Struct, frozen=True, kw_only=True):
    """One event; ``hash`` covers its content and ``prev_hash`` (verifiable offline)."""

    account_id: str
    seq: int  # 1, 2, 3 ... per account
    kind: str
    actor: str
    at: datetime
    data: dict[str, Any] = {}
    prev_hash: str
    hash: str


class ChainReportView(msgspec.Struct, frozen=True, kw_only=True):
    """``ok`` when no event was edited, deleted or reordered; else each problem found."""

    ok: bool
    events: int
    problems: tuple[str, ...] = ()
