"""One built-in call's view of the trackers: the account, its synced index, the trackers'
clients and the steps the tools share (a live read that updates the index, a comment
written to the index, a pull request found and checked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hub.builtin_tools.references import CODE_KINDS, Located, References, require_kind
from hub.builtin_tools.results import BuiltinToolError
from hub.clock import Clock
from hub.compliance.service import ComplianceService
from hub.ids import new_id
from hub.search.duplicates import Duplicates
from hub.search.embedders import Embedder, HashingEmbedder
from hub.search.service import IssueSearch
from hub.trackers.ports import TrackerClient, TrackerClients, TrackerStorage
from hub.trackers.records import Issue, IssueComment, IssueKind, RemoteComment, Tracker
from hub.trackers.sync import Syncer

NO_CLIENTS = (
    "this Preloop server cannot reach issue trackers (no tracker clients are configured); "
    "only reads from the synced index work"
)


class Session:
    def __init__(
        self,
        account_id: str,
        storage: TrackerStorage,
        clients: TrackerClients | None,
        clock: Clock,
        embedder: Embedder | None = None,
        compliance: ComplianceService | None = None,
        *,
        duplicates: Duplicates | None = None,
    ) -> None:
        self.account_id = account_id
        self.duplicates = duplicates  # create_issue's duplicate check (None: none)
        self.storage = storage
        self.embedder = embedder or HashingEmbedder()
        self.refs = References(storage, account_id)
        self._clients = clients
        self._clock = clock
        self._syncer = Syncer(storage, clients, clock) if clients is not None else None
        # scoring issues (hub/compliance); without one, the packaged catalogue's rules
        self.compliance = compliance or ComplianceService.rules_only(clock)

    @property
    def syncer(self) -> Syncer:
        if self._syncer is None:
            raise BuiltinToolError(NO_CLIENTS)
        return self._syncer

    def issue_search(self) -> IssueSearch:
        """Search of the synced index with the hub's embedder (only the query is embedded)."""
        return IssueSearch(self.storage, self.embedder)

    @asynccontextmanager
    async def client(self, tracker: Tracker) -> AsyncIterator[TrackerClient]:
        """The tracker's client, closed after use."""
        if self._clients is None:
            raise BuiltinToolError(NO_CLIENTS)
        client = await self._clients.client(tracker)
        try:
            yield client
        finally:
            await client.close()

    async def live(self, found: Located) -> Issue:
        """Read an issue (or pull/merge request) and its comments from its tracker, and
        write them to the index."""
        if not found.pull_request:
            return await self.syncer.refresh_issue(found.tracker, found.project, found.number)
        async with self.client(found.tracker) as client:
            answer = await client.get_pull_request(
                found.project, found.number, include_comments=True, include_diff=False
            )
        return await self.syncer.write_remote(
            found.tracker, found.project, answer.pull_request, answer.comments
        )

    async def indexed(self, found: Located) -> Issue:
        """The issue as the index holds it (read live first when it does not)."""
        return found.issue if found.issue is not None else await self.live(found)

    async def pull_request(self, reference: str, tool: str) -> Located:
        """The pull/merge request ``reference`` names, on a tracker that has them."""
        found = await self.refs.locate(reference, "pull_request")
        require_kind(found.tracker, CODE_KINDS, tool)
        if found.issue is not None and found.issue.kind is not IssueKind.PULL_REQUEST:
            raise BuiltinToolError(
                f"{found.issue.key} is an issue, not a pull or merge request (use get_issue "
                "or update_issue)"
            )
        return found

    async def store_comment(self, tracker: Tracker, issue: Issue, remote: RemoteComment) -> None:
        """A comment as the tracker answered it, written under its issue in the index."""
        await self.storage.issues.upsert_comment(
            IssueComment(
                id=new_id("cmt"),
                account_id=self.account_id,
                tracker_id=tracker.id,
                issue_id=issue.id,
                external_id=remote.external_id,
                body=remote.body,
                author=remote.author,
                kind=remote.kind,
                url=remote.url,
                created_at=remote.created_at,
                updated_at=remote.updated_at,
                synced_at=self._clock.now(),
            )
        )
