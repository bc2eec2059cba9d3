"""The SQL tracker storage (``hub.trackers.ports.TrackerStorage``): connected trackers, synced
issues and comments, sync cursors and the webhook inbox, on the hub's engine.

It shares the ``Database`` of ``SqlStorage`` (``SqlTrackerStorage.beside(storage)``): the same
pool, the same SQLite write lock and thread, the same error translation.

- ``claim_poll`` is one compare-and-set ``UPDATE`` on ``next_poll_at``: of several replicas
  claiming the same due poll, the database lets exactly one match (PostgreSQL re-checks the
  row after the first commits; SQLite runs writers one at a time).
- ``WebhookInbox.claim`` leases a batch in one statement on PostgreSQL (``UPDATE … WHERE id IN
  (SELECT … FOR UPDATE SKIP LOCKED)``: concurrent claimers take disjoint rows, without
  waiting); on SQLite it reads and updates in one ``BEGIN IMMEDIATE`` transaction.
- ``vectors`` is the vector index of the issues (``issue_vectors.SqlIssueVectorStore``).
- ``IssueStore.search`` narrows in SQL (every filter SQL answers exactly as Python does, and
  the text as a superset: ``lower(title|body) LIKE '%word%'`` for any query word), then applies
  ``hub.trackers.search.matches`` and ``rank`` in Python, so every backend answers the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Select,
    and_,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.errors import NotFoundError
from hub.store_rules import aware_utc, check_limit
from hub.trackers.records import (
    DeliveryState,
    Issue,
    IssueComment,
    IssueQuery,
    SyncCursor,
    Tracker,
    WebhookDelivery,
)
from hub.trackers.search import matches, rank, words
from server.db import tables as t
from server.db.stores._base import Database, SqlStore, executes, to_record, to_values
from server.db.stores._issue_filters import by_code_point, narrowing
from server.db.stores.issue_vectors import SqlIssueVectorStore

if TYPE_CHECKING:
    from server.db.stores import SqlStorage

_SEARCH_BATCH = 200


def _values(record: Any) -> dict[str, Any]:
    values = to_values(record)
    for name, value in values.items():  # enums as their text (asyncpg wants plain str)
        if isinstance(value, str) and type(value) is not str:
            values[name] = str(value)
    return values


def _tracker_missing(account_id: str, tracker_id: str) -> str:
    return f"tracker {tracker_id!r} does not exist in account {account_id!r}"


class SqlTrackerStore(SqlStore):
    async def add(self, tracker: Tracker) -> None:
        await self._db.run_single(
            executes(insert(t.trackers).values(_values(tracker))),
            conflict=f"a tracker named {tracker.name!r} (or with id {tracker.id!r}) exists",
            missing=f"account {tracker.account_id!r} does not exist",
        )

    async def get(self, account_id: str, tracker_id: str) -> Tracker | None:
        c = t.trackers.c
        stmt = select(t.trackers).where(c.account_id == account_id, c.id == tracker_id)
        return await self._first(stmt, Tracker)

    async def get_by_name(self, account_id: str, name: str) -> Tracker | None:
        c = t.trackers.c
        stmt = select(t.trackers).where(c.account_id == account_id, c.name == name)
        return await self._first(stmt, Tracker)

    async def list(self, account_id: str) -> Sequence[Tracker]:
        c = t.trackers.c
        stmt = (
            select(t.trackers)
            .where(c.account_id == account_id)
            .order_by(by_code_point(c.name, self._db), by_code_point(c.id, self._db))
        )
        return await self._all(stmt, Tracker)

    async def update(self, tracker: Tracker) -> None:
        c = t.trackers.c
        values = _values(tracker)
        stmt = (
            update(t.trackers)
            .where(c.account_id == tracker.account_id, c.id == tracker.id)
            .values(values)
        )

        def work(conn: Connection) -> int:
            return conn.execute(stmt).rowcount

        changed = await self._db.run_single(
            work, conflict=f"a tracker named {tracker.name!r} exists"
        )
        if changed == 0:
            raise NotFoundError(f"tracker {tracker.id!r} does not exist")

    async def remove(self, account_id: str, tracker_id: str) -> None:
        c = t.trackers.c
        stmt = delete(t.trackers).where(c.account_id == account_id, c.id == tracker_id)

        def work(conn: Connection) -> int:
            return conn.execute(stmt).rowcount  # the synced rows go by ON DELETE CASCADE

        if await self._db.run_single(work) == 0:
            raise NotFoundError(f"tracker {tracker_id!r} does not exist")

    async def due(self, now: datetime, limit: int = 100) -> Sequence[Tracker]:
        check_limit(limit)
        now = aware_utc(now, "now")
        c = t.trackers.c
        stmt = (
            select(t.trackers)
            .where(c.poll_seconds > 0, or_(c.next_poll_at.is_(None), c.next_poll_at <= now))
            .order_by(c.next_poll_at.is_not(None), c.next_poll_at, by_code_point(c.id, self._db))
            .limit(limit)
        )
        return await self._all(stmt, Tracker)

    async def claim_poll(
        self, account_id: str, tracker_id: str, due: datetime | None, next_at: datetime
    ) -> bool:
        next_at = aware_utc(next_at, "next_at")
        c = t.trackers.c
        was = c.next_poll_at.is_(None) if due is None else c.next_poll_at == aware_utc(due, "due")
        stmt = (
            update(t.trackers)
            .where(c.account_id == account_id, c.id == tracker_id, was)
            .values(next_poll_at=next_at)
        )

        def work(conn: Connection) -> bool:
            return conn.execute(stmt).rowcount == 1

        return await self._db.run_single(work)


class SqlIssueStore(SqlStore):
    async def upsert(self, issue: Issue) -> Issue:
        c = t.issues.c
        values = _values(issue)
        stmt = self._db.upsert_all(
            t.issues, key=("account_id", "tracker_id", "external_id"), keep=("id",)
        )
        read = select(t.issues).where(
            c.account_id == issue.account_id,
            c.tracker_id == issue.tracker_id,
            c.external_id == issue.external_id,
        )

        def work(conn: Connection) -> Issue:
            conn.execute(stmt, values)
            return to_record(conn.execute(read).one(), Issue)

        return await self._db.run_write(
            work,
            conflict=f"an issue with id {issue.id!r} exists",
            missing=_tracker_missing(issue.account_id, issue.tracker_id),
        )

    async def write_synced(self, issue: Issue, comments: Sequence[IssueComment]) -> Issue:
        c, cc = t.issues.c, t.issue_comments.c
        values = _values(issue)
        upsert = self._db.upsert_all(
            t.issues, key=("account_id", "tracker_id", "external_id"), keep=("id",)
        )
        upsert_comment = self._db.upsert_all(
            t.issue_comments, key=("account_id", "issue_id", "external_id"), keep=("id",)
        )
        read = select(t.issues).where(
            c.account_id == issue.account_id,
            c.tracker_id == issue.tracker_id,
            c.external_id == issue.external_id,
        )
        rows = [_values(comment) for comment in comments]
        listed = [row["external_id"] for row in rows]

        def work(conn: Connection) -> Issue:
            conn.execute(upsert, values)
            stored = to_record(conn.execute(read).one(), Issue)
            for row in rows:
                row["issue_id"] = stored.id
            if rows:
                conn.execute(upsert_comment, rows)
            conn.execute(
                update(t.issue_comments)
                .where(
                    cc.account_id == stored.account_id,
                    cc.issue_id == stored.id,
                    cc.deleted == false(),
                    cc.external_id.not_in(listed),
                )
                .values(deleted=True, synced_at=stored.synced_at)
            )
            return stored

        return await self._db.run_write(
            work,
            conflict=f"an issue or comment with id {issue.id!r} exists",
            missing=_tracker_missing(issue.account_id, issue.tracker_id),
        )

    async def get(self, account_id: str, issue_id: str) -> Issue | None:
        c = t.issues.c
        stmt = select(t.issues).where(c.account_id == account_id, c.id == issue_id)
        return await self._first(stmt, Issue)

    async def get_by_number(
        self, account_id: str, tracker_id: str, project: str, number: str
    ) -> Issue | None:
        c = t.issues.c
        stmt = (
            select(t.issues)
            .where(
                c.account_id == account_id,
                c.tracker_id == tracker_id,
                c.project == project,
                c.number == number,
            )
            .order_by(by_code_point(c.id, self._db))
            .limit(1)
        )
        return await self._first(stmt, Issue)

    async def find(self, account_id: str, key: str) -> Sequence[Issue]:
        c = t.issues.c
        stmt = (
            select(t.issues)
            .where(c.account_id == account_id, or_(c.key == key, and_(c.url != "", c.url == key)))
            .order_by(by_code_point(c.id, self._db))
        )
        return await self._all(stmt, Issue)

    async def search(self, account_id: str, query: IssueQuery) -> Sequence[Issue]:
        check_limit(query.limit)
        for bound in (query.updated_after, query.updated_before):
            if bound is not None:
                aware_utc(bound, "updated_after/updated_before")
        c = t.issues.c
        id_order = by_code_point(c.id, self._db)
        stmt = select(t.issues).where(c.account_id == account_id, *narrowing(query, self._db))
        if words(query.text):  # ranked by score: every candidate is read, then ranked
            candidates = await self._all(stmt, Issue)
            return rank([i for i in candidates if matches(i, query)], query.text)[: query.limit]
        # Without text the order is (updated_at newest first, id): read in that order, in
        # batches, until ``limit`` issues match.
        ordered = stmt.order_by(c.updated_at.desc(), id_order)
        found: list[Issue] = []
        after: Issue | None = None
        while len(found) < query.limit:
            page = ordered
            if after is not None:
                page = page.where(
                    or_(
                        c.updated_at < after.updated_at,
                        and_(c.updated_at == after.updated_at, id_order > after.id),
                    )
                )
            batch = await self._all(page.limit(_SEARCH_BATCH), Issue)
            found.extend(i for i in batch if matches(i, query))
            if len(batch) < _SEARCH_BATCH:
                break
            after = batch[-1]
        return found[: query.limit]

    async def count(
        self, account_id: str, tracker_id: str, *, include_deleted: bool = False
    ) -> int:
        c = t.issues.c
        stmt = select(func.count()).where(c.account_id == account_id, c.tracker_id == tracker_id)
        if not include_deleted:
            stmt = stmt.where(c.deleted == false())

        def work(conn: Connection) -> int:
            return int(conn.execute(stmt).scalar_one())

        return await self._db.run_read(work)

    async def mark_deleted(
        self, account_id: str, tracker_id: str, project: str, synced_before: datetime
    ) -> int:
        c = t.issues.c
        stmt = (
            update(t.issues)
            .where(
                c.account_id == account_id,
                c.tracker_id == tracker_id,
                c.project == project,
                c.deleted == false(),
                c.synced_at < aware_utc(synced_before, "synced_before"),
            )
            .values(deleted=True)
        )

        def work(conn: Connection) -> int:
            return int(conn.execute(stmt).rowcount)

        return await self._db.run_single(work)

    async def upsert_comment(self, comment: IssueComment) -> IssueComment:
        c = t.issue_comments.c
        values = _values(comment)
        stmt = self._db.upsert_all(
            t.issue_comments, key=("account_id", "issue_id", "external_id"), keep=("id",)
        )
        read = select(t.issue_comments).where(
            c.account_id == comment.account_id,
            c.issue_id == comment.issue_id,
            c.external_id == comment.external_id,
        )

        def work(conn: Connection) -> IssueComment:
            conn.execute(stmt, values)
            return to_record(conn.execute(read).one(), IssueComment)

        return await self._db.run_write(
            work,
            conflict=f"a comment with id {comment.id!r} exists",
            missing=f"issue {comment.issue_id!r} does not exist",
        )

    async def comments(self, account_id: str, issue_id: str) -> Sequence[IssueComment]:
        c = t.issue_comments.c
        stmt = (
            select(t.issue_comments)
            .where(c.account_id == account_id, c.issue_id == issue_id, c.deleted == false())
            .order_by(c.created_at, by_code_point(c.id, self._db))
        )
        return await self._all(stmt, IssueComment)


class SqlSyncCursorStore(SqlStore):
    async def get(self, account_id: str, tracker_id: str, project: str) -> SyncCursor | None:
        c = t.sync_cursors.c
        stmt = select(t.sync_cursors).where(
            c.account_id == account_id, c.tracker_id == tracker_id, c.project == project
        )
        return await self._first(stmt, SyncCursor)

    async def put(self, cursor: SyncCursor) -> None:
        values = _values(cursor)
        stmt = self._db.upsert_all(
            t.sync_cursors, key=("account_id", "tracker_id", "project"), keep=()
        )

        def work(conn: Connection) -> None:
            conn.execute(stmt, values)

        await self._db.run_single(
            work, missing=_tracker_missing(cursor.account_id, cursor.tracker_id)
        )

    async def list(self, account_id: str, tracker_id: str | None = None) -> Sequence[SyncCursor]:
        c = t.sync_cursors.c
        stmt = select(t.sync_cursors).where(c.account_id == account_id)
        if tracker_id is not None:
            stmt = stmt.where(c.tracker_id == tracker_id)
        order = (by_code_point(c.tracker_id, self._db), by_code_point(c.project, self._db))
        return await self._all(stmt.order_by(*order), SyncCursor)


class SqlWebhookInbox(SqlStore):
    async def add(self, delivery: WebhookDelivery) -> bool:
        stmt = self._db.insert_missing(
            t.webhook_deliveries,
            _values(delivery),
            key=("account_id", "tracker_id", "delivery_id"),
        )

        def work(conn: Connection) -> bool:
            return conn.execute(stmt).rowcount == 1

        return await self._db.run_single(
            work,
            conflict=f"an inbox row with id {delivery.id!r} exists",
            missing=_tracker_missing(delivery.account_id, delivery.tracker_id),
        )

    async def claim(
        self, now: datetime, lease_until: datetime, limit: int = 10
    ) -> Sequence[WebhookDelivery]:
        check_limit(limit)
        now, lease_until = aware_utc(now, "now"), aware_utc(lease_until, "lease_until")
        c = t.webhook_deliveries.c
        ready = (
            select(c.id)
            .where(
                c.state == str(DeliveryState.PENDING),
                or_(c.claimed_until.is_(None), c.claimed_until <= now),
            )
            .order_by(c.received_at, by_code_point(c.id, self._db))
            .limit(limit)
        )
        lease = {"claimed_until": lease_until, "attempts": c.attempts + 1}
        if self._db.dialect == "postgresql":
            # Concurrent claimers skip the rows another one has locked: disjoint batches.
            stmt = (
                update(t.webhook_deliveries)
                .where(c.id.in_(ready.with_for_update(skip_locked=True).scalar_subquery()))
                .values(lease)
                .returning(*c)
            )

            def claim_pg(conn: Connection) -> list[WebhookDelivery]:
                return [to_record(row, WebhookDelivery) for row in conn.execute(stmt)]

            claimed = await self._db.run_single(claim_pg)
        else:

            def claim_sqlite(conn: Connection) -> list[WebhookDelivery]:
                ids = list(conn.execute(ready).scalars())
                if not ids:
                    return []
                conn.execute(update(t.webhook_deliveries).where(c.id.in_(ids)).values(lease))
                rows = conn.execute(select(t.webhook_deliveries).where(c.id.in_(ids)))
                return [to_record(row, WebhookDelivery) for row in rows]

            claimed = await self._db.run_write(claim_sqlite)
        return sorted(claimed, key=lambda d: (d.received_at, d.id))

    async def finish(
        self,
        account_id: str,
        delivery_id: str,
        *,
        now: datetime,
        error: str | None = None,
        give_up: bool = False,
        retry_at: datetime | None = None,
    ) -> None:
        now = aware_utc(now, "now")
        c = t.webhook_deliveries.c
        values: dict[str, Any]
        if error is None:
            values = {"state": str(DeliveryState.DONE), "processed_at": now, "error": None}
        elif give_up:
            values = {"state": str(DeliveryState.FAILED), "processed_at": now, "error": error}
        else:
            values = {"error": error}
            if retry_at is not None:
                values["claimed_until"] = aware_utc(retry_at, "retry_at")
        stmt = (
            update(t.webhook_deliveries)
            .where(c.account_id == account_id, c.id == delivery_id)
            .values(values)
        )

        def work(conn: Connection) -> int:
            return conn.execute(stmt).rowcount

        if await self._db.run_single(work) == 0:
            raise NotFoundError(f"webhook delivery {delivery_id!r} does not exist")

    async def get(self, account_id: str, delivery_id: str) -> WebhookDelivery | None:
        c = t.webhook_deliveries.c
        stmt = select(t.webhook_deliveries).where(c.account_id == account_id, c.id == delivery_id)
        return await self._first(stmt, WebhookDelivery)

    async def list(
        self, account_id: str, tracker_id: str | None = None, limit: int = 50
    ) -> Sequence[WebhookDelivery]:
        check_limit(limit)
        c = t.webhook_deliveries.c
        stmt: Select[Any] = select(t.webhook_deliveries).where(c.account_id == account_id)
        if tracker_id is not None:
            stmt = stmt.where(c.tracker_id == tracker_id)
        stmt = stmt.order_by(c.received_at.desc(), by_code_point(c.id, self._db)).limit(limit)
        return await self._all(stmt, WebhookDelivery)


class SqlTrackerStorage:
    """Every tracker store on one ``Database``; the engine belongs to the hub's storage (it
    closes it), so this object has nothing to close."""

    def __init__(self, db: Database) -> None:
        self.trackers = SqlTrackerStore(db)
        self.issues = SqlIssueStore(db)
        self.cursors = SqlSyncCursorStore(db)
        self.inbox = SqlWebhookInbox(db)
        self.vectors = SqlIssueVectorStore(db)  # issue 16's vector index

    @classmethod
    def beside(cls, storage: SqlStorage) -> SqlTrackerStorage:
        """On the same engine (and SQLite writer) as the hub's ``storage``."""
        return cls(storage.database)


if TYPE_CHECKING:  # mypy proves the SQL stores keep the port's shape
    from hub.trackers.ports import TrackerStorage

    _storage: TrackerStorage = SqlTrackerStorage(Database(cast(AsyncEngine, None)))
