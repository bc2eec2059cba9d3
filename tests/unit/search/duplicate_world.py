"""The seeded set of tests/unit/search/duplicates.py as synced issues of one GitHub project in
the in-memory tracker storage, embedded by the hashing embedder, with a duplicate service and
a scripted model gateway over them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from hub.clock import FrozenClock
from hub.model_gateway.records import Attribution
from hub.search.confirmation import Confirmer
from hub.search.duplicates import Duplicates
from hub.search.embedders import HashingEmbedder
from hub.search.records import IssueVector
from hub.search.text import issue_text
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.records import Issue, Tracker, TrackerKind
from tests.unit.search.duplicates import ISSUES

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ACCOUNT = "acc"
PROJECT = "acme/app"


def tracker() -> Tracker:
    return Tracker(
        id="trk_gh",
        account_id=ACCOUNT,
        name="gh",
        kind=TrackerKind.GITHUB,
        base_url="https://api.github.com",
        token_ref="env:GH",
        projects=(PROJECT, "acme/other"),
        created_at=T0,
        updated_at=T0,
    )


def seeded_issue(name: str, text: str, *, project: str = PROJECT, **extra: Any) -> Issue:
    """One of the seeded texts as an issue: id ``iss-<name>``; its first sentence the title."""
    title, _, body = text.partition(". ")
    issue = Issue(
        id=f"iss-{name}",
        account_id=ACCOUNT,
        tracker_id="trk_gh",
        project=project,
        number=name,
        key=f"{project}#{name}",
        external_id=f"ext-{name}",
        title=title,
        body=body,
        state="open",
        url=f"https://github.com/{project}/issues/{name}",
        created_at=T0,
        updated_at=T0,
        synced_at=T0,
    )
    return msgspec.structs.replace(issue, **extra, content_hash=hash_of(issue, extra))


def hash_of(issue: Issue, extra: dict[str, Any]) -> str:
    edited = msgspec.structs.replace(issue, **extra)
    return hashlib.sha256(f"{edited.title}|{edited.body}|{edited.state}".encode()).hexdigest()


@dataclass
class ScriptedGateway:
    """A ``ModelGateway`` whose chat answers ``reply`` (or raises ``error``), counting asks."""

    reply: str = '{"decision": "DUPLICATE", "reason": "same crash", "suggestion": "close one"}'
    error: Exception | None = None
    asked: list[dict[str, Any]] = field(default_factory=list)
    who: list[Attribution] = field(default_factory=list)

    async def chat(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(body)
        self.who.append(who)
        if self.error is not None:
            raise self.error
        return {"choices": [{"message": {"role": "assistant", "content": self.reply}}]}


@dataclass
class Audit:
    events: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    async def record(
        self, account_id: str, kind: str, actor: str, data: dict[str, Any] | None = None
    ) -> None:
        self.events.append((account_id, kind, actor, data or {}))


@dataclass
class World:
    storage: InMemoryTrackerStorage
    duplicates: Duplicates
    gateway: ScriptedGateway
    audit: Audit
    clock: FrozenClock

    async def get(self, name: str) -> Issue:
        found = await self.storage.issues.get(ACCOUNT, f"iss-{name}")
        assert found is not None
        return found

    async def index(self, *issues: Issue) -> None:
        embedder = HashingEmbedder()
        for issue in issues:
            await self.storage.vectors.put(
                IssueVector(
                    account_id=ACCOUNT,
                    issue_id=issue.id,
                    model=str(embedder.identity),
                    content_hash=issue.content_hash,
                    vector=embedder.embed_one(issue_text(issue)),
                    embedded_at=T0,
                )
            )


async def world(*, indexed: bool = True, model: str = "gpt-fake", threshold: float = 0) -> World:
    storage = InMemoryTrackerStorage()
    await storage.trackers.add(tracker())
    issues = [await storage.issues.upsert(seeded_issue(n, t)) for n, t in ISSUES.items()]
    clock = FrozenClock(T0)
    gateway = ScriptedGateway()
    audit = Audit()
    duplicates = Duplicates(
        storage,
        storage.duplicates,
        HashingEmbedder,
        clock,
        audit,  # type: ignore[arg-type]  # records like the Auditor
        threshold=threshold,
        confirmer=Confirmer(gateway, model, clock) if model else None,
    )
    w = World(storage, duplicates, gateway, audit, clock)
    if indexed:
        await w.index(*issues)
    return w
