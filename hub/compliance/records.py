"""What the compliance cache keeps: one answer per (account, issue, metric, mode, engine), with
the content hash and catalogue digest it was computed from (a lookup whose hash or digest
differs is a miss; the next answer replaces the row)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import msgspec

from hub.trackers.records import Issue

Mode = Literal["estimate", "improve"]


class ComplianceResult(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    issue_id: str
    metric: str  # DoR | INVEST | Risk
    mode: Mode
    engine: str  # model:<name> (the rules' answers are not cached: decision 0107)
    content_hash: str  # compliance_hash(issue) when it was scored
    catalogue: str  # the catalogue's digest when it was scored
    result: dict[str, Any]  # upstream's contract as the engine answered it
    created_at: datetime


def compliance_hash(issue: Issue) -> str:
    """SHA-256 of every part of an issue a scorer reads: an edit of any of them is a miss."""
    text = msgspec.json.encode(
        [
            issue.title,
            issue.body,
            sorted(issue.labels),
            issue.kind.value,
            issue.state,
            issue.priority,
        ]
    )
    return hashlib.sha256(text).hexdigest()
