"""The services of one running Preloop process (:class:`Hub`), as request handlers see them.

Built by the composition root (server/bootstrap.py); the request path (server/api,
server/mcp) imports this module for the type, never the composition root itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.builtin_tools.runner import BuiltinTools
from hub.catalog import CatalogService
from hub.channel_decisions import ChannelDecisions
from hub.clock import Clock
from hub.compliance.service import ComplianceService
from hub.devices import DeviceService
from hub.errors import TrackerError
from hub.events import EventBus
from hub.identity import IdentityService
from hub.links import LinkSigner
from hub.logins import LoginService
from hub.mcp_servers import McpServers
from hub.model_gateway.budgets import BudgetService
from hub.model_gateway.capture import GatewayCapture
from hub.model_gateway.capture_store import CaptureStore, InMemoryCaptureStore
from hub.model_gateway.custody import Custody
from hub.model_gateway.ledger import UsageLedger
from hub.model_gateway.pricing import PriceBook
from hub.model_gateway.providers import ProviderService
from hub.model_gateway.records import Attribution
from hub.model_gateway.runtime import RuntimeService
from hub.notification_dispatch import NotificationDispatch
from hub.notifier import Notifier
from hub.passthrough import PassThroughService
from hub.policy_versions import PolicyService
from hub.ports import Storage
from hub.scheduler import ApprovalScheduler
from hub.search.duplicates import Duplicates
from hub.search.embedders import Embedder, HashingEmbedder
from hub.search.indexer import Indexer
from hub.search.service import IssueSearch
from hub.settings import Settings
from hub.tool_calls import ToolCalls
from hub.trackers.inbox import InboxProcessor
from hub.trackers.polling import Poller
from hub.trackers.ports import TrackerClient, TrackerClients, TrackerStorage
from hub.trackers.records import Tracker
from hub.trackers.service import TrackerService
from hub.trackers.sync import Syncer
from server.mcp.upstream import UpstreamConfig, UpstreamPool

if TYPE_CHECKING:
    from server.model_gateway.proxy import ModelGatewayProxy


@dataclass
class Hub:
    """Everything a request handler needs, built once per process."""

    settings: Settings
    storage: Storage
    clock: Clock
    auditor: Auditor
    identity: IdentityService
    policies: PolicyService
    bus: EventBus
    approvals: ApprovalService
    channel_decisions: ChannelDecisions  # the channels' clicks decide through it (bots/)
    pool: UpstreamPool
    catalog: CatalogService
    mcp_servers: McpServers[UpstreamConfig]  # registering servers; the pool follows them
    tool_calls: ToolCalls  # every tool call's pipeline (hub/tool_calls)
    passthrough: PassThroughService
    links: LinkSigner
    notifications: NotificationDispatch
    scheduler: ApprovalScheduler
    devices: DeviceService
    logins: LoginService  # users' passwords and the access tokens logins issue
    # gateway: custody
    custody: Custody
    model_router: ProviderService  # the ModelRouter; also manages providers
    gateway_auth: RuntimeService  # the GatewayAuth
    runtime: RuntimeService  # flow executions and runtime tokens
    # the model gateway's pricing, budgets and usage ledger (hub/model_gateway)
    prices: PriceBook
    budgets: BudgetService
    ledger: UsageLedger
    # the model gateway's HTTP edge (server/model_gateway): built from the parts above on first
    # use (``model_gateway``): aiohttp takes a fifth of a second and ~10 MB an idle server
    # does not need
    _model_gateway: ModelGatewayProxy | None = field(default=None, init=False, repr=False)
    # issue trackers: the synced data, and the clients of the trackers' APIs
    trackers: TrackerStorage | None = None
    tracker_clients: TrackerClients | None = None
    tracker_service: TrackerService | None = None  # connecting trackers, search, webhooks
    # what embeds issue text for search and duplicates (settings.search.embedder; issue 16)
    search_embedder: Embedder = field(default_factory=HashingEmbedder)
    # searching synced issues (fulltext, similarity, hybrid) and the background indexer that
    # embeds them (server/search_wiring.py); None without tracker storage
    issue_search: IssueSearch | None = None
    indexer: Indexer | None = None
    # scoring issues for compliance (DoR, INVEST, Risk; hub/compliance): the catalogue, the
    # model through the gateway when settings.search.compliance_model says so, the cache.
    # None: the built-in tools use the packaged catalogue's rules
    compliance: ComplianceService | None = None
    # gateway content capture (off unless a rule turns it on; decision 0109) and its store;
    # built beside ``storage`` by the composition root, in memory when not given
    capture_store: CaptureStore | None = None
    capture: GatewayCapture = field(init=False, repr=False)
    # duplicate candidates, confirmation and resolutions (create_issue checks drafts with it)
    duplicates: Duplicates | None = None
    # the 11 built-in tools (hub/builtin_tools): run through tool_calls on the trackers above
    builtin_tools: BuiltinTools = field(init=False, repr=False)
    mattermost: Notifier | None = None  # the Mattermost channel, when configured
    notes: list[str] = field(default_factory=list)  # printed once the server is up
    # built from ``trackers`` (and ``tracker_clients``, read when a client is needed):
    # syncing, background polls (``tracker_poller.tick``) and the webhook inbox
    # (``tracker_inbox.run_once``; ``tracker_inbox.kick()`` once a delivery is stored)
    tracker_sync: Syncer | None = field(default=None, init=False)
    tracker_poller: Poller | None = field(default=None, init=False)
    tracker_inbox: InboxProcessor | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.approvals.reviewer.gateway = ModelGatewayOnFirstUse(self)  # ai workflows ask it
        if self.capture_store is None:
            self.capture_store = InMemoryCaptureStore()
        self.capture = GatewayCapture(
            self.capture_store,
            lambda: self.search_embedder,
            self.clock,
            cache_seconds=self.settings.server.cache_seconds,
        )
        if self.trackers is not None:
            sync = Syncer(self.trackers, _HubTrackerClients(self), self.clock)
            self.tracker_sync = sync
            self.tracker_poller = Poller(self.trackers, sync, self.clock)
            self.tracker_inbox = InboxProcessor(self.trackers, sync, self.clock)
        # The built-in tools read ``trackers`` and ``tracker_clients`` from here on each call.
        self.builtin_tools = BuiltinTools(self, self.clock, embedder=lambda: self.search_embedder)
        self.tool_calls.use_builtins(self.builtin_tools)

    @property
    def model_gateway(self) -> ModelGatewayProxy:
        """The model gateway, built on first use."""
        if self._model_gateway is None:
            from server.model_gateway.proxy import ModelGatewayProxy  # aiohttp: only when used

            self._model_gateway = ModelGatewayProxy(
                auth=self.gateway_auth,
                router=self.model_router,
                prices=self.prices,
                budgets=self.budgets,
                ledger=self.ledger,
                clock=self.clock,
                settings=self.settings.gateway,
                capture=self.capture,
            )
        return self._model_gateway

    async def close(self) -> None:
        try:
            try:
                await self.approvals.stop_reviews()  # AI reviews still asking a model
                if self._model_gateway is not None:  # its upstream pool; before the ledger
                    await self._model_gateway.close()
            finally:
                try:  # owed tool.call records get their last attempt whatever failed before
                    await self.tool_calls.drain()  # records of calls cancelled at shutdown
                finally:
                    await self.pool.close()
        finally:
            try:
                await close_bus(self.bus)
            finally:
                try:
                    await self.ledger.close()  # queued usage records are written first
                finally:
                    try:
                        await self.capture.close()  # then queued captures
                    finally:
                        await self.storage.close()


class _HubTrackerClients:
    """The hub's ``tracker_clients`` when a client is needed (set after the hub is built)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def client(self, tracker: Tracker) -> TrackerClient:
        clients = self._hub.tracker_clients
        if clients is None:
            raise TrackerError(
                f"tracker {tracker.name!r}: this server has no tracker adapters configured",
                tracker=tracker.name,
            )
        return await clients.client(tracker)


class ModelGatewayOnFirstUse:
    """The hub's model gateway for those that hold it from the start (the AI reviewer, the
    HTTP mounts): the gateway itself is built on their first request."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def chat(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]:
        return await self._hub.model_gateway.chat(who, body)

    async def embed(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]:
        return await self._hub.model_gateway.embed(who, body)

    async def handle(self, scope: Any, receive: Any, send: Any, family: str) -> None:
        await self._hub.model_gateway.handle(scope, receive, send, family)


async def close_bus(bus: EventBus) -> None:
    close = getattr(bus, "close", None)
    if close is not None:
        await close()
