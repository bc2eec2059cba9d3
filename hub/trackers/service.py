"""``TrackerService``: connecting trackers and what people and agents do with them.

    add / list / get / remove    the account's trackers; every field checked with a message
                                 naming it (hub/trackers/checks.py); add and remove audited
    test                         per project, what the tracker answers (or its error)
    locate                       the tracker and project ``organization`` + ``project`` name
    search / create_issue        the synced index; an issue created in the tracker, then
                                 indexed as the tracker answered it
    scan / status                sync now (hub/trackers/sync.py), and where each project stands
    receive                      a webhook delivery, verified and stored in the durable inbox

Tokens are custody references (``token_ref``); the service never resolves, stores, returns or
audits a token. A tracker's webhook secret is made here when none is named: random, stored in
custody as ``local:tracker-NAME-webhook`` and handed back once by ``add`` (docs/decisions/0096).
"""

from __future__ import annotations

import builtins
import contextlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from hub.auditing import Auditor
from hub.clock import Clock
from hub.deep_json import refuse_deep_json
from hub.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    NotFoundError,
    TrackerError,
    ValidationError,
)
from hub.ids import new_id
from hub.model_gateway.custody import LOCAL, REFERENCE_FORMS, Custody
from hub.trackers.checks import (
    check_base_url,
    check_kind,
    check_name,
    check_poll_seconds,
    check_projects,
    check_username,
    project_in,
)
from hub.trackers.ports import TrackerClients, TrackerStorage
from hub.trackers.records import (
    Issue,
    IssueDraft,
    IssueQuery,
    ProjectInfo,
    SyncCursor,
    Tracker,
    WebhookDelivery,
)
from hub.trackers.sync import Syncer, SyncProgress, SyncReport
from hub.trackers.webhooks import verify

NO_ADAPTERS = (
    "this server has no tracker adapters (server/trackers): it cannot reach a tracker's API"
)


class TrackerAdded(msgspec.Struct, frozen=True, kw_only=True):
    """A tracker just added. ``webhook_secret``: the secret made for its webhooks, present
    only in this answer (``None`` when a ``webhook_secret_ref`` was named, or custody has no
    ``local`` backend to keep one in)."""

    tracker: Tracker
    webhook_secret: str | None = None


class ProjectTest(msgspec.Struct, frozen=True, kw_only=True):
    project: str
    success: bool
    message: str
    details: ProjectInfo | None = None


class TrackerStatus(msgspec.Struct, frozen=True, kw_only=True):
    tracker: Tracker
    issues: int  # synced and not deleted
    cursors: tuple[SyncCursor, ...]
    last_webhook_at: datetime | None = None


class Located(msgspec.Struct, frozen=True, kw_only=True):
    tracker: Tracker
    project: str


def webhook_secret_ref(name: str) -> str:
    """Where the secret made for tracker ``name``'s webhooks is kept."""
    return f"{LOCAL}:tracker-{name}-webhook"


class TrackerService:
    def __init__(
        self,
        storage: TrackerStorage,
        clients: TrackerClients | None,
        custody: Custody,
        auditor: Auditor,
        clock: Clock,
        *,
        syncer: Syncer | None = None,
    ) -> None:
        self.storage = storage
        self._clients = clients
        self._syncer = syncer  # the hub's; else one over ``clients``, made when first needed
        self._custody = custody
        self._auditor = auditor
        self._clock = clock
        self._delivery_listeners: list[Callable[[WebhookDelivery], None]] = []

    # --- the account's trackers -------------------------------------------------------------
    async def add(
        self,
        account_id: str,
        *,
        name: str,
        kind: str,
        base_url: str,
        token_ref: str,
        projects: Sequence[str] = (),
        webhook_secret_ref: str | None = None,
        username: str | None = None,
        poll_seconds: int = 300,
        actor: str,
    ) -> TrackerAdded:
        now = self._clock.now()
        checked_kind = check_kind(kind)
        tracker = Tracker(
            id=new_id("trk"),
            account_id=account_id,
            name=check_name(name),
            kind=checked_kind,
            base_url=check_base_url(base_url),
            token_ref=self._ref("token_ref", token_ref),
            projects=check_projects(checked_kind, projects),
            webhook_secret_ref=(
                self._ref("webhook_secret_ref", webhook_secret_ref) if webhook_secret_ref else None
            ),
            username=check_username(checked_kind, username),
            poll_seconds=check_poll_seconds(poll_seconds),
            created_at=now,
            updated_at=now,
        )
        if await self.storage.trackers.get_by_name(account_id, tracker.name) is not None:
            raise ConflictError(f"name: a tracker named {tracker.name!r} exists")
        secret = None
        if tracker.webhook_secret_ref is None:
            secret, ref = await self._make_webhook_secret(account_id, tracker.name, actor)
            tracker = msgspec.structs.replace(tracker, webhook_secret_ref=ref)
        await self.storage.trackers.add(tracker)
        await self._auditor.record(account_id, "tracker.added", actor, _audited(tracker))
        return TrackerAdded(tracker=tracker, webhook_secret=secret)

    def _ref(self, field: str, text: str) -> str:
        """A custody reference; the message never repeats what was given (it may be a token
        pasted by mistake)."""
        try:
            return str(self._custody.check_ref(text))
        except ValidationError:
            raise ValidationError(
                f"{field}: not a secret reference: expected {REFERENCE_FORMS} (store the value "
                "with 'preloop secrets set NAME' and give local:NAME)"
            ) from None

    async def _make_webhook_secret(
        self, account_id: str, name: str, actor: str
    ) -> tuple[str | None, str | None]:
        try:
            self._custody.backend(LOCAL)
        except ConfigError:
            return None, None  # no local custody: the operator names a secret they keep
        secret = secrets.token_urlsafe(32)
        ref = webhook_secret_ref(name)
        await self._custody.put(account_id, ref, secret, actor=actor)
        return secret, ref

    async def list(self, account_id: str) -> Sequence[Tracker]:
        return await self.storage.trackers.list(account_id)

    async def get(self, account_id: str, name: str) -> Tracker:
        found = await self.storage.trackers.get_by_name(account_id, name)
        if found is None:
            raise NotFoundError(f"no tracker named {name!r} (see 'preloop trackers list')")
        return found

    async def by_id(self, account_id: str, tracker_id: str) -> Tracker:
        found = await self.storage.trackers.get(account_id, tracker_id)
        if found is None:
            raise NotFoundError(f"no tracker {tracker_id!r}")
        return found

    async def remove(self, account_id: str, name: str, *, actor: str) -> None:
        """Remove the tracker and everything synced from it; the webhook secret made for it
        goes too (a secret the operator named stays theirs)."""
        tracker = await self.get(account_id, name)
        await self.storage.trackers.remove(account_id, tracker.id)
        if tracker.webhook_secret_ref == webhook_secret_ref(tracker.name):
            # already gone, or custody lost its local backend: nothing to remove
            with contextlib.suppress(NotFoundError, ConfigError):
                await self._custody.delete(account_id, tracker.webhook_secret_ref, actor=actor)
        await self._auditor.record(
            account_id, "tracker.removed", actor, {"tracker": tracker.name, "id": tracker.id}
        )

    # --- talking to the tracker --------------------------------------------------------------
    @property
    def clients(self) -> TrackerClients:
        if self._clients is None:
            raise ConfigError(NO_ADAPTERS)
        return self._clients

    @property
    def syncer(self) -> Syncer:
        if self._syncer is None:
            self._syncer = Syncer(self.storage, self.clients, self._clock)
        return self._syncer

    async def test(self, account_id: str, name: str) -> Sequence[ProjectTest]:
        """Each project's answer: what ``test_connection`` says, or the tracker's error."""
        tracker = await self.get(account_id, name)
        return [await self.test_project(tracker, project) for project in tracker.projects]

    async def test_project(self, tracker: Tracker, project: str) -> ProjectTest:
        try:
            client = await self.clients.client(tracker)
        except TrackerError as exc:
            return ProjectTest(project=project, success=False, message=exc.message)
        try:
            info = await client.test_connection(project)
        except TrackerError as exc:
            return ProjectTest(project=project, success=False, message=exc.message)
        finally:
            await client.close()
        message = f"connected to {tracker.kind.value} project {project} ({tracker.name})"
        return ProjectTest(project=project, success=True, message=message, details=info)

    async def locate(
        self,
        account_id: str,
        organization: str | None,
        project: str,
        *,
        tracker: str | None = None,
    ) -> Located:
        """The tracker syncing the project named (the first by name when several do, unless
        ``tracker`` names one)."""
        candidates = (
            [await self.get(account_id, tracker)] if tracker else await self.list(account_id)
        )
        for candidate in candidates:
            found = project_in(candidate, organization, project)
            if found is not None:
                return Located(tracker=candidate, project=found)
        named = f"{organization}/{project}" if organization else project
        raise NotFoundError(
            f"no connected tracker syncs the project {named!r}: add it with 'preloop trackers "
            "add NAME --kind ... --project ...' (GitHub owner/repo, GitLab group/project, "
            "Jira the project key with the site as organization)"
        )

    async def search(
        self,
        account_id: str,
        query: IssueQuery,
        *,
        organization: str | None = None,
        project: str | None = None,
        tracker: str | None = None,
    ) -> Sequence[Issue]:
        """The synced index, narrowed to the project named (if any)."""
        narrowed = await self.narrowed(
            account_id, query, organization=organization, project=project, tracker=tracker
        )
        return await self.storage.issues.search(account_id, narrowed)

    async def narrowed(
        self,
        account_id: str,
        query: IssueQuery,
        *,
        organization: str | None = None,
        project: str | None = None,
        tracker: str | None = None,
    ) -> IssueQuery:
        """``query`` narrowed to the tracker and project named (``NotFoundError`` when no
        connected tracker syncs it), as every kind of search takes it."""
        if project:
            where = await self.locate(account_id, organization, project, tracker=tracker)
            query = msgspec.structs.replace(
                query, tracker_id=where.tracker.id, project=where.project
            )
        elif tracker:
            query = msgspec.structs.replace(
                query, tracker_id=(await self.get(account_id, tracker)).id
            )
        elif organization:
            raise ValidationError("project: name the project too (organization alone is not one)")
        return query

    async def create_issue(
        self, account_id: str, where: Located, draft: IssueDraft, *, actor: str
    ) -> Issue:
        """Create the issue in the tracker, then index it as the tracker answered."""
        client = await self.clients.client(where.tracker)
        try:
            remote = await client.create_issue(where.project, draft)
        finally:
            await client.close()
        issue = await self.syncer.write_remote(where.tracker, where.project, remote)
        await self._auditor.record(
            account_id,
            "tracker.issue_created",
            actor,
            {"tracker": where.tracker.name, "project": where.project, "issue": issue.key},
        )
        return issue

    # --- sync ---------------------------------------------------------------------------------
    async def scan(
        self,
        account_id: str,
        name: str,
        *,
        full: bool = False,
        progress: Callable[[SyncProgress], None] | None = None,
    ) -> SyncReport:
        tracker = await self.get(account_id, name)
        return await self.syncer.scan(tracker, full=full, progress=progress)

    async def status(self, account_id: str) -> Sequence[TrackerStatus]:
        found: builtins.list[TrackerStatus] = []
        for tracker in await self.list(account_id):
            cursors = await self.storage.cursors.list(account_id, tracker.id)
            latest = await self.storage.inbox.list(account_id, tracker.id, limit=1)
            found.append(
                TrackerStatus(
                    tracker=tracker,
                    issues=await self.storage.issues.count(account_id, tracker.id),
                    cursors=tuple(cursors),
                    last_webhook_at=latest[0].received_at if latest else None,
                )
            )
        return found

    # --- webhooks -----------------------------------------------------------------------------
    def on_delivery(self, listener: Callable[[WebhookDelivery], None]) -> None:
        """Call ``listener`` with each delivery stored in the inbox (the inbox processor is
        woken this way; without one, deliveries wait in the inbox)."""
        self._delivery_listeners.append(listener)

    async def receive(
        self, tracker: Tracker, headers: Mapping[str, str], body: bytes
    ) -> WebhookDelivery:
        """Verify a delivery by the tracker's own scheme and store it in the durable inbox.
        ``AuthenticationError``: forged or unsigned; ``ValidationError``: not a JSON object
        (checked after the signature, so a forger learns nothing); ``ConflictError``: a
        replay of a delivery id already stored. Nothing is stored unless all three hold."""
        if tracker.webhook_secret_ref is None:
            raise AuthenticationError(
                f"tracker {tracker.name!r} has no webhook secret: its deliveries cannot be "
                "verified (add the tracker again without --webhook-secret to get one)"
            )
        try:
            secret = await self._custody.resolve(tracker.account_id, tracker.webhook_secret_ref)
        except (NotFoundError, ConfigError) as exc:
            raise AuthenticationError(
                f"tracker {tracker.name!r}: its webhook secret {tracker.webhook_secret_ref} "
                f"cannot be read from custody ({exc.message}), so no delivery can be verified"
            ) from exc
        now = self._clock.now()
        delivery = verify(tracker.kind, headers, body, secret, now=now)
        payload = _json_object(body)
        stored = WebhookDelivery(
            id=new_id("whd"),
            account_id=tracker.account_id,
            tracker_id=tracker.id,
            delivery_id=delivery.delivery_id,
            event=delivery.event,
            payload=payload,
            received_at=now,
        )
        if not await self.storage.inbox.add(stored):
            raise ConflictError(
                f"delivery {delivery.delivery_id!r} was received before: a replay is not "
                "processed again"
            )
        for listener in self._delivery_listeners:
            listener(stored)
        return stored


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        with refuse_deep_json("the delivery"):
            payload = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ValidationError(f"the delivery's body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValidationError("the delivery's body is not a JSON object")
    return payload


def _audited(tracker: Tracker) -> dict[str, Any]:
    """What the audit keeps of a tracker: its references, never a token."""
    return {
        "tracker": tracker.name,
        "id": tracker.id,
        "kind": tracker.kind.value,
        "base_url": tracker.base_url,
        "key_ref": tracker.token_ref,  # "token" keys are redacted: this is a reference
        "webhook_ref": tracker.webhook_secret_ref,
        "projects": list(tracker.projects),
        "poll_seconds": tracker.poll_seconds,
    }
