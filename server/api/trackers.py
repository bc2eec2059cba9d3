"""Issue trackers over HTTP: connecting them (admins), testing them, syncing them, their status.

A tracker shows the custody references of its token and webhook secret, never a value; the
secret made for its webhooks is in the answer to ``POST /trackers`` once (decision 0096).
``POST /trackers/{name}/sync`` answers JSON Lines as the scan goes: progress per page, then
the report (the CLI's progress display reads them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from hub.errors import ConfigError, ConflictError, PreloopError
from hub.model_gateway.custody import REFERENCE_PATTERN
from hub.trackers.checks import (
    GITHUB_PROJECT,
    GITLAB_PROJECT,
    JIRA_PROJECT,
    MAX_POLL_SECONDS,
    MAX_PROJECTS,
    NAME_PATTERN,
)
from hub.trackers.records import ProjectInfo, Tracker, TrackerKind
from hub.trackers.service import ProjectTest, TrackerService
from hub.trackers.sync import SyncProgress, SyncReport
from hub.wire import (
    ConnectionTest,
    ProjectCursorView,
    ProjectDetails,
    SyncEvent,
    SyncReportView,
    TrackerCreated,
    TrackerSyncStatus,
    TrackerView,
)
from server.api.deps import caller_of, hub_of
from server.api.fields import each, shaped
from server.api.providers import BASE_URL
from server.auth import ADMIN, READ, roles
from server.hub_services import Hub

PROJECT = rf"(?:{GITHUB_PROJECT})|(?:{GITLAB_PROJECT})|(?:{JIRA_PROJECT})"
Ref = Annotated[str, shaped(REFERENCE_PATTERN, min_length=1, max_length=500)]
_encoder = msgspec.json.Encoder()
log = logging.getLogger("preloop.trackers")


class TrackerCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A tracker to connect. ``token_ref`` names its API token in custody; ``projects`` are
    GitHub ``owner/repo``, GitLab ``group/project`` or Jira keys; without
    ``webhook_secret_ref`` a secret is made and answered once."""

    name: Annotated[str, shaped(NAME_PATTERN, min_length=1, max_length=100)]
    kind: TrackerKind
    base_url: Annotated[str, shaped(BASE_URL, min_length=1, max_length=2000)]
    token_ref: Ref
    projects: Annotated[list[str], each(PROJECT, max_items=MAX_PROJECTS)] = []
    webhook_secret_ref: Ref | None = None
    username: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    poll_seconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_POLL_SECONDS)] = 300


def trackers_of(hub: Hub) -> TrackerService:
    if hub.tracker_service is None:
        raise ConfigError("this server keeps no tracker storage")
    return hub.tracker_service


def webhook_url(hub: Hub, tracker: Tracker) -> str:
    return f"{hub.settings.public_url}/api/v1/webhooks/{tracker.id}"


def tracker_view(hub: Hub, tracker: Tracker) -> TrackerView:
    return TrackerView(
        id=tracker.id,
        name=tracker.name,
        kind=tracker.kind.value,
        base_url=tracker.base_url,
        token_ref=tracker.token_ref,
        projects=list(tracker.projects),
        webhook_secret_ref=tracker.webhook_secret_ref,
        webhook_url=webhook_url(hub, tracker),
        username=tracker.username,
        poll_seconds=tracker.poll_seconds,
        next_poll_at=tracker.next_poll_at,
        created_at=tracker.created_at,
        updated_at=tracker.updated_at,
    )


def details(tracker: Tracker, info: ProjectInfo) -> ProjectDetails:
    return ProjectDetails(
        tracker=tracker.name,
        kind=tracker.kind.value,
        project=info.project,
        name=info.name,
        url=info.url,
        description=info.description,
        default_branch=info.default_branch,
    )


def connection_test(tracker: Tracker, test: ProjectTest) -> ConnectionTest:
    shown = details(tracker, test.details) if test.details is not None else None
    return ConnectionTest(success=test.success, message=test.message, details=shown)


def report_view(report: SyncReport) -> SyncReportView:
    return SyncReportView(
        tracker=report.tracker,
        full=report.full,
        projects=report.projects,
        issues=report.issues,
        comments=report.comments,
        deleted=report.deleted,
        not_modified=report.not_modified,
        seconds=report.seconds,
        errors=list(report.errors),
    )


class TrackerController(Controller):
    path = "/trackers"
    tags = ["trackers"]

    @post("/", opt=roles(ADMIN, raises=(ConflictError,)), status_code=201)
    async def add(
        self, request: Request[Any, Any, Any], data: JSONBody[TrackerCreate]
    ) -> TrackerCreated:
        """Connect a tracker (admin). The answer holds the webhook secret made for it, once."""
        hub, caller = hub_of(request), caller_of(request)
        added = await trackers_of(hub).add(
            caller.account_id,
            name=data.name,
            kind=data.kind.value,
            base_url=data.base_url,
            token_ref=data.token_ref,
            projects=data.projects,
            webhook_secret_ref=data.webhook_secret_ref,
            username=data.username,
            poll_seconds=data.poll_seconds,
            actor=caller.key_id,
        )
        return TrackerCreated(
            tracker=tracker_view(hub, added.tracker), webhook_secret=added.webhook_secret
        )

    @get("/", opt=roles(READ))
    async def list_trackers(self, request: Request[Any, Any, Any]) -> list[TrackerView]:
        """The account's trackers, by name (references, never a token)."""
        hub, caller = hub_of(request), caller_of(request)
        return [tracker_view(hub, t) for t in await trackers_of(hub).list(caller.account_id)]

    @get("/{name:str}", opt=roles(READ))
    async def show(self, request: Request[Any, Any, Any], name: FromPath[str]) -> TrackerView:
        hub, caller = hub_of(request), caller_of(request)
        return tracker_view(hub, await trackers_of(hub).get(caller.account_id, name))

    @delete("/{name:str}", opt=roles(ADMIN), status_code=204)
    async def remove(self, request: Request[Any, Any, Any], name: FromPath[str]) -> None:
        """Disconnect a tracker (admin): its synced issues, cursors and inbox go with it."""
        hub, caller = hub_of(request), caller_of(request)
        await trackers_of(hub).remove(caller.account_id, name, actor=caller.key_id)

    @post("/{name:str}/test", opt=roles(READ), status_code=200)
    async def test(
        self, request: Request[Any, Any, Any], name: FromPath[str]
    ) -> list[ConnectionTest]:
        """Ask the tracker for each project with the tracker's token: what it answers, or
        its error (the token is never shown)."""
        hub, caller = hub_of(request), caller_of(request)
        service = trackers_of(hub)
        tracker = await service.get(caller.account_id, name)
        tests = await service.test(caller.account_id, name)
        return [connection_test(tracker, t) for t in tests]

    @post(
        "/{name:str}/sync",
        opt=roles(ADMIN),
        media_type="application/x-ndjson",
        status_code=200,
        responses={
            200: ResponseSpec(
                data_container=SyncEvent,
                media_type="application/x-ndjson",
                description="JSON Lines: one SyncEvent per line (progress..., then a report)",
            )
        },
    )
    async def sync(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        full: Annotated[bool, QueryParameter()] = False,
    ) -> Stream:
        """Sync the tracker now (admin): what changed since the last sync, or everything
        with ``full`` (deletions noticed). JSON Lines: ``{"type": "progress", ...}`` per page,
        then ``{"type": "report", "report": {...}}`` (or ``{"type": "error", ...}``)."""
        hub, caller = hub_of(request), caller_of(request)
        service = trackers_of(hub)
        tracker = await service.get(caller.account_id, name)  # 404 before the stream starts
        service.clients  # noqa: B018 - 503 before the stream starts when there are no adapters
        return Stream(_scan_lines(service, caller.account_id, tracker.name, full))


async def _scan_lines(
    service: TrackerService, account_id: str, name: str, full: bool
) -> AsyncIterator[bytes]:
    events: asyncio.Queue[SyncEvent] = asyncio.Queue()

    def progress(step: SyncProgress) -> None:
        events.put_nowait(
            SyncEvent(type="progress", tracker=name, project=step.project, issues=step.issues)
        )

    async def run() -> None:
        try:
            report = await service.scan(account_id, name, full=full, progress=progress)
            events.put_nowait(SyncEvent(type="report", tracker=name, report=report_view(report)))
        except PreloopError as exc:
            events.put_nowait(SyncEvent(type="error", tracker=name, message=exc.message))
        except Exception:  # the stream must end: say so, and keep the trace in the log
            log.exception("the sync of tracker %r failed", name)
            message = "the sync failed with an internal error (the server's log has the trace)"
            events.put_nowait(SyncEvent(type="error", tracker=name, message=message))

    task = asyncio.create_task(run())
    try:
        while True:
            event = await events.get()
            yield _encoder.encode(event) + b"\n"
            if event.type != "progress":
                break
    finally:
        if not task.done():  # the client went away: the cursor resumes the scan next time
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class SyncController(Controller):
    path = "/sync"
    tags = ["trackers"]

    @get("/status", opt=roles(READ))
    async def status(self, request: Request[Any, Any, Any]) -> list[TrackerSyncStatus]:
        """Where each tracker's sync stands: issues synced, each project's cursor and last
        error, the next background poll and the last webhook received."""
        hub, caller = hub_of(request), caller_of(request)
        found = await trackers_of(hub).status(caller.account_id)
        return [
            TrackerSyncStatus(
                tracker=s.tracker.name,
                kind=s.tracker.kind.value,
                issues=s.issues,
                poll_seconds=s.tracker.poll_seconds,
                next_poll_at=s.tracker.next_poll_at,
                last_webhook_at=s.last_webhook_at,
                projects=[
                    ProjectCursorView(
                        project=c.project,
                        updated_since=c.updated_since,
                        last_sync_at=c.last_sync_at,
                        last_full_scan_at=c.last_full_scan_at,
                        resuming=c.page is not None,
                        issues_synced=c.issues_synced,
                        last_error=c.last_error,
                    )
                    for c in s.cursors
                ],
            )
            for s in found
        ]
