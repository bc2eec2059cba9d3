"""Processing the webhook inbox: what each verified delivery is about, refreshed from the
tracker.

    run_once ─▶ inbox.claim(now, lease)          pending rows, leased to this process
             └▶ per delivery: about(kind, payload) ─▶ (project, number) or nothing to do
                   ├▶ deleted (GitHub ``issues`` ``deleted``, Jira ``jira:issue_deleted``):
                   │      the synced issue is marked deleted
                   ├▶ else Syncer.refresh_issue      the issue and its comments, fetched again
                   └▶ inbox.finish                  done; or failed: pending again after a
                                                    growing delay; given up after
                                                    ``max_attempts`` (the error kept)

The delivery only says *which* issue changed; its content is fetched again rather than taken
from the payload, so a late or reordered delivery never writes stale data, and a replay
changes nothing. Deliveries about projects the tracker does not sync are done at once. A
tracker that answers 404 or 410 for the issue no longer has it: it is marked deleted.

``kick()`` wakes the loop that calls ``run_once`` (``wait``): the webhook endpoint kicks it
right after storing a delivery, so the replica that received it processes it at once; every
replica also runs it periodically, which picks up what a crashed process left (its lease
ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import msgspec

from hub.clock import Clock
from hub.errors import PreloopError, TrackerError
from hub.trackers.ports import TrackerStorage
from hub.trackers.records import Tracker, TrackerKind, WebhookDelivery
from hub.trackers.sync import Syncer

log = logging.getLogger("preloop.trackers")
_GONE = (404, 410)
_GITHUB_COMMENT_EVENTS = {"issue_comment", "pull_request_review_comment", "commit_comment"}


class About(msgspec.Struct, frozen=True, kw_only=True):
    """What a delivery is about: one issue or pull/merge request of a project."""

    project: str
    number: str
    deleted: bool = False  # the tracker deleted it


class InboxRun(msgspec.Struct, frozen=True, kw_only=True):
    """What one ``run_once`` did."""

    claimed: int = 0
    done: int = 0
    retried: int = 0  # failed, pending again after a delay
    failed: int = 0  # given up


def about(kind: TrackerKind, event: str, payload: dict[str, Any]) -> About | None:
    """The issue a delivery is about, from the payload's shape (``None``: nothing to sync:
    a ping, a push, a note on a commit)."""
    if kind is TrackerKind.GITHUB:
        return _github(event, payload)
    if kind is TrackerKind.GITLAB:
        return _gitlab(payload)
    return _jira(event, payload)


def _github(event: str, payload: dict[str, Any]) -> About | None:
    project = _text(payload, "repository", "full_name")
    number = (
        _text(payload, "issue", "number")
        or _text(payload, "pull_request", "number")
        or _text(payload, "number")
    )
    if not project or not number:
        return None
    deleted = (
        payload.get("action") == "deleted"
        and "issue" in payload
        and "comment" not in payload
        and event not in _GITHUB_COMMENT_EVENTS
    )
    return About(project=project, number=number, deleted=deleted)


def _gitlab(payload: dict[str, Any]) -> About | None:
    project = _text(payload, "project", "path_with_namespace")
    kind = payload.get("object_kind")
    if kind in ("issue", "work_item"):
        number = _text(payload, "object_attributes", "iid")
    elif kind == "merge_request":
        iid = _text(payload, "object_attributes", "iid")
        number = f"!{iid}" if iid else ""
    elif kind == "note":
        issue_iid = _text(payload, "issue", "iid")
        mr_iid = _text(payload, "merge_request", "iid")
        number = issue_iid or (f"!{mr_iid}" if mr_iid else "")
    else:
        return None
    return About(project=project, number=number) if project and number else None


def _jira(event: str, payload: dict[str, Any]) -> About | None:
    key = _text(payload, "issue", "key")
    if not key:
        return None
    project = _text(payload, "issue", "fields", "project", "key") or key.rsplit("-", 1)[0]
    webhook_event = str(payload.get("webhookEvent") or event)
    return About(project=project, number=key, deleted=webhook_event == "jira:issue_deleted")


def _text(payload: Any, *path: str) -> str:
    """The scalar at ``path`` as text ("" when absent or not a scalar)."""
    for name in path:
        if not isinstance(payload, dict):
            return ""
        payload = payload.get(name)
    if isinstance(payload, bool) or not isinstance(payload, str | int):
        return ""
    return str(payload)


def _synced(tracker: Tracker, project: str) -> str | None:
    """The tracker's own spelling of ``project`` when it syncs it (``None`` when not). The
    trackers look projects up regardless of case (``Octocat/Hello-World`` is
    ``octocat/hello-world``), and rows are keyed by the spelling scans use."""
    folded = project.casefold()
    return next((p for p in tracker.projects if p.casefold() == folded), None)


class InboxProcessor:
    def __init__(
        self,
        storage: TrackerStorage,
        syncer: Syncer,
        clock: Clock,
        *,
        batch: int = 10,
        lease_seconds: float = 120.0,
        retry_seconds: float = 30.0,
        max_attempts: int = 5,
    ) -> None:
        self._storage = storage
        self._syncer = syncer
        self._clock = clock
        self._batch = batch
        self._lease = timedelta(seconds=lease_seconds)
        self._retry = retry_seconds
        self._max_attempts = max_attempts
        self._kicked = asyncio.Event()

    def kick(self) -> None:
        """Wake the loop waiting in :meth:`wait` (a delivery was just stored)."""
        self._kicked.set()

    async def wait(self, seconds: float) -> None:
        """Until :meth:`kick` is called or ``seconds`` pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kicked.wait(), timeout=seconds)
        self._kicked.clear()

    async def run_once(self) -> InboxRun:
        """Claim and process pending deliveries until none is left (or one batch fails)."""
        claimed = done = retried = failed = 0
        while True:
            now = self._clock.now()
            batch = await self._storage.inbox.claim(now, now + self._lease, limit=self._batch)
            for delivery in batch:
                outcome = await self._process(delivery)
                done += outcome == "done"
                retried += outcome == "retried"
                failed += outcome == "failed"
            claimed += len(batch)
            if len(batch) < self._batch:  # drained (what failed waits for its retry time)
                break
        return InboxRun(claimed=claimed, done=done, retried=retried, failed=failed)

    async def _process(self, delivery: WebhookDelivery) -> str:
        inbox = self._storage.inbox
        try:
            await self._handle(delivery)
        except Exception as exc:  # kept on the row; the next deliveries still run
            message = exc.message if isinstance(exc, PreloopError) else repr(exc)
            now = self._clock.now()
            give_up = delivery.attempts >= self._max_attempts
            delay = self._retry * 2 ** (delivery.attempts - 1)
            if isinstance(exc, TrackerError) and exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            log.warning(
                "webhook delivery %s (attempt %d): %s%s",
                delivery.delivery_id,
                delivery.attempts,
                message,
                "; giving up" if give_up else "",
            )
            await inbox.finish(
                delivery.account_id,
                delivery.id,
                now=now,
                error=message,
                give_up=give_up,
                retry_at=None if give_up else now + timedelta(seconds=delay),
            )
            return "failed" if give_up else "retried"
        await inbox.finish(delivery.account_id, delivery.id, now=self._clock.now())
        return "done"

    async def _handle(self, delivery: WebhookDelivery) -> None:
        tracker = await self._storage.trackers.get(delivery.account_id, delivery.tracker_id)
        if tracker is None:
            return  # removed since (its inbox rows go with it)
        target = about(tracker.kind, delivery.event, delivery.payload)
        project = _synced(tracker, target.project) if target is not None else None
        if target is None or project is None:
            return  # nothing this tracker syncs
        target = msgspec.structs.replace(target, project=project)
        if target.deleted:
            await self._mark_deleted(tracker, target)
            return
        try:
            await self._syncer.refresh_issue(tracker, target.project, target.number)
        except TrackerError as exc:
            if exc.status not in _GONE:
                raise
            await self._mark_deleted(tracker, target)

    async def _mark_deleted(self, tracker: Tracker, target: About) -> None:
        issues = self._storage.issues
        found = await issues.get_by_number(
            tracker.account_id, tracker.id, target.project, target.number
        )
        if found is not None and not found.deleted:
            await issues.upsert(
                msgspec.structs.replace(found, deleted=True, synced_at=self._clock.now())
            )
