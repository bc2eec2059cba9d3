"""The audit chain: each event's hash covers its content and the previous event's hash.

Editing a row changes its hash; deleting one breaks the next row's ``prev_hash`` (or, for the
last row, the stored chain head). ``verify_chain`` walks an account's events and names the
first place the chain breaks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from hub.records import AuditDraft, AuditEvent

GENESIS_HASH = "0" * 64

_encoder = msgspec.json.Encoder(order="sorted")


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    *,
    account_id: str,
    seq: int,
    kind: str,
    actor: str,
    at: datetime,
    data: dict[str, Any],
    prev_hash: str,
) -> str:
    """The SHA-256 of the event's canonical JSON form."""
    body = {
        "account_id": account_id,
        "seq": seq,
        "kind": kind,
        "actor": actor,
        "at": _utc(at),
        "data": data,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(_encoder.encode(body)).hexdigest()


def chain(draft: AuditDraft, *, seq: int, prev_hash: str) -> AuditEvent:
    """Turn a draft into the event that follows ``prev_hash`` at position ``seq``."""
    at = draft.at.astimezone(UTC)
    # Normalise data through JSON so what is hashed is exactly what a store gives back.
    data: dict[str, Any] = msgspec.json.decode(_encoder.encode(draft.data))
    digest = event_hash(
        account_id=draft.account_id,
        seq=seq,
        kind=draft.kind,
        actor=draft.actor,
        at=at,
        data=data,
        prev_hash=prev_hash,
    )
    return AuditEvent(
        account_id=draft.account_id,
        seq=seq,
        kind=draft.kind,
        actor=draft.actor,
        at=at,
        data=data,
        prev_hash=prev_hash,
        hash=digest,
    )


class ChainReport(msgspec.Struct, frozen=True, kw_only=True):
    """The result of verifying one account's audit chain."""

    ok: bool
    events: int
    problems: tuple[str, ...] = ()


def verify_chain(events: Iterable[AuditEvent], *, head: tuple[int, str] | None) -> ChainReport:
    """Check every event's hash and link; ``head`` is the store's record of the last event."""
    problems: list[str] = []
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    for event in events:
        count += 1
        if event.seq != expected_seq:
            problems.append(
                f"event {expected_seq}: missing (next event found is {event.seq}); "
                "rows were deleted"
            )
        elif event.prev_hash != prev_hash:
            problems.append(f"event {event.seq}: does not link to the event before it")
        recomputed = event_hash(
            account_id=event.account_id,
            seq=event.seq,
            kind=event.kind,
            actor=event.actor,
            at=event.at,
            data=event.data,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.hash:
            problems.append(f"event {event.seq}: content does not match its hash; it was edited")
        prev_hash = event.hash
        expected_seq = event.seq + 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq != expected_seq - 1:
            problems.append(
                f"chain head says {head_seq} events but {expected_seq - 1} were found; "
                "the newest rows were deleted"
            )
        elif head_hash != prev_hash:
            problems.append(f"event {head_seq}: does not match the recorded chain head")
    elif count:
        problems.append("the chain head is missing")
    return ChainReport(ok=not problems, events=count, problems=tuple(problems))
