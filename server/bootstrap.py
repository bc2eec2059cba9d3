"""The composition root: builds the hub's services from settings, and runs first start."""

from __future__ import annotations

import asyncio
import logging
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.catalog import CatalogService
from hub.channel_decisions import ChannelDecisions
from hub.clock import Clock, SystemClock
from hub.compliance.catalogue import Catalogue, load_catalogue
from hub.compliance.service import ComplianceService
from hub.devices import DeviceService
from hub.errors import ConfigError, ValidationError
from hub.events import EventBus, InMemoryEventBus
from hub.held_calls import HeldCalls
from hub.identity import IdentityService
from hub.ids import new_id
from hub.links import LinkSigner, new_link_secret
from hub.login_limits import LoginLimiter
from hub.logins import LoginService
from hub.mcp_servers import McpServers, ServerRegistry
from hub.model_gateway.budgets import BudgetService
from hub.model_gateway.capture_store import CaptureStore, InMemoryCaptureStore
from hub.model_gateway.custody import LOCAL, Custody
from hub.model_gateway.ledger import UsageLedger
from hub.model_gateway.pricing import PriceBook, check_price
from hub.model_gateway.providers import ProviderService
from hub.model_gateway.records import ModelPrice
from hub.model_gateway.runtime import RuntimeService
from hub.notification_dispatch import NotificationDispatch
from hub.notifier import Notifier
from hub.passthrough import PassThroughService
from hub.passwords import ScryptCost
from hub.policy import CelEngine, engine_named
from hub.policy.model import McpServerSpec
from hub.policy.servers import resolve_server_env
from hub.policy_versions import PolicyService
from hub.ports import Storage
from hub.private_files import make_private_dir, write_private
from hub.records import McpServer, Role
from hub.scheduler import ApprovalScheduler
from hub.settings import Settings
from hub.sync_waits import SyncWaits
from hub.tool_calls import ToolCalls
from hub.trackers.ports import TrackerClients, TrackerStorage
from hub.trackers.service import TrackerService
from server.hub_services import Hub, ModelGatewayOnFirstUse, close_bus
from server.mcp.upstream import UpstreamConfig, UpstreamPool
from server.search_wiring import build_search

if TYPE_CHECKING:
    from bots.mattermost import MattermostNotifier
    from hub.search.duplicate_store import DuplicatePairStore
    from hub.search.duplicates import Duplicates

log = logging.getLogger("preloop.server")

FIRST_KEY_FILE = "initial-admin-key"
LINK_SECRET_FILE = "link-secret"  # noqa: S105 - a file name, not a secret
EXAMPLE_POLICY = "example-policy.yaml"


async def open_hub(
    settings: Settings, *, clock: Clock | None = None, storage: Storage | None = None
) -> Hub:
    """Open storage (migrating when configured) and build the services. Events cross
    processes through PostgreSQL when the database is PostgreSQL (and storage is not given)."""
    opened_here = storage is None
    # checked before anything is opened: a bad catalogue stops the start, naming file and field
    catalogue = load_catalogue(settings.search.compliance_catalogue or None)
    if storage is None:
        from server.db import open_storage

        if not settings.database.url:
            make_private_dir(settings.data_path)
        storage = await open_storage(
            settings.database_url, migrate=settings.database.migrate_on_start
        )
    clock = clock or SystemClock()
    try:
        bus = await open_event_bus(settings.database_url) if opened_here else InMemoryEventBus()
    except BaseException:
        await storage.close()  # opened above: not left open when the bus cannot connect
        raise
    auditor = Auditor(storage.audit, clock, bus=bus)  # system facts go on the "system" topic
    cache = settings.server.cache_seconds
    registry = ServerRegistry(storage, clock)
    policies = PolicyService(
        storage,
        clock,
        auditor,
        engine=_engine(settings),
        cache_seconds=cache,
        servers=registry,
    )
    approvals = ApprovalService(storage, clock, auditor, bus)
    pool = UpstreamPool(clock=clock)
    link_secret = settings.notifications.link_secret or _link_secret_file(settings)
    links = LinkSigner(link_secret)
    mattermost = _mattermost(settings, link_secret, clock, storage)
    notifiers = _notifiers(settings, links, clock, storage, auditor)
    if mattermost is not None:
        notifiers.append(mattermost)
    try:
        custody, custody_notes = _custody(settings, storage, clock, auditor)
    except BaseException:  # e.g. a bad PRELOOP_SECRETS_KEYS: nothing is left open
        await close_bus(bus)
        if opened_here:
            await storage.close()
        raise
    notifications = NotificationDispatch(
        storage=storage,
        policies=policies,
        auditor=auditor,
        clock=clock,
        bus=bus,
        notifiers=notifiers,
        attempts=settings.notifications.attempts,
        first_delay=settings.notifications.retry_seconds,
    )
    identity = IdentityService(
        storage, clock, auditor, bootstrap_admin_key=settings.admin_key, cache_seconds=cache
    )
    model_router = ProviderService(
        storage,
        clock,
        auditor,
        custody,
        cache_seconds=cache,
        key_seconds=settings.secrets.cache_seconds,
    )
    custody.on_change(model_router.forget_keys)
    runtime = RuntimeService(
        storage,
        clock,
        auditor,
        identity,
        max_ttl_seconds=settings.secrets.runtime_token_max_seconds,
        cache_seconds=cache,
    )
    # This process, for the sync waits it holds (its lease is renewed by the scheduler).
    sync_waits = SyncWaits(
        storage.sync_waits,
        approvals,
        auditor,
        clock,
        instance_id=new_id("inst"),
        lease_seconds=settings.server.lease_seconds,
    )
    catalog = CatalogService(storage, clock, auditor, cache_seconds=cache)
    mcp_servers = McpServers(
        registry,
        auditor=auditor,
        identity=identity,
        policies=policies,
        pool=pool,
        configure=lambda server: upstream_config(server, settings),
    )
    hub = Hub(
        settings=settings,
        storage=storage,
        clock=clock,
        auditor=auditor,
        identity=identity,
        policies=policies,
        bus=bus,
        approvals=approvals,
        channel_decisions=ChannelDecisions(approvals, identity, storage),
        pool=pool,
        catalog=catalog,
        mcp_servers=mcp_servers,
        tool_calls=ToolCalls(
            clock=clock,
            auditor=auditor,
            policies=policies,
            approvals=approvals,
            upstream=pool,
            servers=mcp_servers,
            pins=catalog,
            heartbeat_seconds=settings.mcp.approval_heartbeat_seconds,
            held_calls=_held_calls(custody, storage, clock),
            sync_waits=sync_waits,
        ),
        passthrough=PassThroughService(auditor=auditor, upstream=pool),
        links=links,
        notifications=notifications,
        scheduler=ApprovalScheduler(approvals, sync_waits=sync_waits),
        devices=DeviceService(storage, clock, auditor, approvals, server_url=settings.public_url),
        logins=_logins(settings, storage, clock, auditor, identity),
        custody=custody,
        model_router=model_router,
        gateway_auth=runtime,
        runtime=runtime,
        **_gateway_accounting(settings, storage, clock, auditor, approvals, policies),
        trackers=_tracker_storage(storage),
        capture_store=_capture_store(storage),
        tracker_clients=_tracker_clients(custody),
        mattermost=mattermost,
        notes=custody_notes,
    )
    hub.tracker_service = _tracker_service(hub)
    try:  # the embedder of PRELOOP_SEARCH_EMBEDDER, issue search, the indexer
        build_search(hub)
    except BaseException:  # a bad setting (ConfigError): nothing is left open
        await hub.close()
        raise
    hub.compliance = compliance_service(settings, hub, catalogue)
    hub.duplicates = _duplicates(hub)
    return hub


def _tracker_service(hub: Hub) -> TrackerService | None:
    """Connecting trackers, searching them and receiving their webhooks, over the hub's
    tracker storage and the clients of the trackers' APIs (absent: no adapters)."""
    if hub.trackers is None:
        return None
    service = TrackerService(
        hub.trackers,
        hub.tracker_clients,
        hub.custody,
        hub.auditor,
        hub.clock,
        syncer=hub.tracker_sync,  # one Syncer per process: the polls', the inbox's, the API's
    )
    inbox = hub.tracker_inbox
    if inbox is not None:  # a stored delivery wakes the inbox loop at once
        service.on_delivery(lambda _delivery: inbox.kick())
    return service


def compliance_service(settings: Settings, hub: Hub, catalogue: Catalogue) -> ComplianceService:
    """Scoring issues against ``catalogue``: the cache beside the hub's storage, and the model
    through the hub's gateway when ``PRELOOP_SEARCH_COMPLIANCE_MODEL`` names one."""
    from hub.compliance.memory import InMemoryComplianceResults
    from hub.compliance.ports import ComplianceResults
    from server.db import SqlStorage

    results: ComplianceResults
    if isinstance(hub.storage, SqlStorage):
        from server.db.stores.compliance import SqlComplianceResults

        results = SqlComplianceResults(hub.storage.database)
    else:
        results = InMemoryComplianceResults()
    model = settings.search.compliance_model
    return ComplianceService(
        catalogue,
        results,
        hub.clock,
        gateway=ModelGatewayOnFirstUse(hub) if model else None,
        model=model,
    )


def _duplicates(hub: Hub) -> Duplicates | None:
    """Duplicate detection over the hub's trackers (decision 0105): pairs kept beside the
    trackers' storage, the hub's embedder read on each call, and the duplicate model (when
    set) asked through the hub's own model gateway."""
    if hub.trackers is None:
        return None
    from hub.search.confirmation import Confirmer
    from hub.search.duplicates import Duplicates
    from server.db import SqlStorage

    pairs: DuplicatePairStore
    if isinstance(hub.storage, SqlStorage):
        from server.db.stores.duplicates import SqlDuplicatePairs

        pairs = SqlDuplicatePairs(hub.storage.database)
    else:
        from hub.trackers.memory import InMemoryTrackerStorage

        if not isinstance(hub.trackers, InMemoryTrackerStorage):
            return None
        pairs = hub.trackers.duplicates
    search = hub.settings.search
    confirmer = None
    if search.duplicate_model:
        gateway = ModelGatewayOnFirstUse(hub)
        confirmer = Confirmer(gateway, search.duplicate_model, hub.clock)
    return Duplicates(
        hub.trackers,
        pairs,
        lambda: hub.search_embedder,
        hub.clock,
        hub.auditor,
        threshold=search.duplicate_threshold,
        confirmer=confirmer,
    )


def _logins(
    settings: Settings, storage: Storage, clock: Clock, auditor: Auditor, identity: IdentityService
) -> LoginService:
    a = settings.auth
    limiter = LoginLimiter(
        clock,
        per_username=a.login_attempts,
        per_address=a.address_attempts,
        window_seconds=a.lockout_seconds,
    )
    return LoginService(
        storage,
        clock,
        auditor,
        identity,
        limiter,
        token_seconds=a.token_seconds,
        cost=ScryptCost(log_n=a.scrypt_log_n),
    )


def _tracker_storage(storage: Storage) -> TrackerStorage:
    """The synced trackers' stores, beside the hub's storage: in its database (the same engine)
    when that is SQL, else in memory with it."""
    from server.db import SqlStorage

    if isinstance(storage, SqlStorage):
        from server.db.stores.trackers import SqlTrackerStorage

        return SqlTrackerStorage.beside(storage)
    from hub.memory import InMemoryStorage
    from hub.trackers.memory import InMemoryTrackerStorage

    if isinstance(storage, InMemoryStorage):
        return InMemoryTrackerStorage(storage.require_account)
    return InMemoryTrackerStorage()


def _capture_store(storage: Storage) -> CaptureStore:
    """Gateway capture's store beside the hub's storage: in its database when that is SQL, else
    in memory (reading the in-memory ledger for runtime sessions)."""
    from server.db import SqlStorage

    if isinstance(storage, SqlStorage):
        from server.db.stores.captures import SqlCaptureStore

        return SqlCaptureStore.beside(storage)
    from hub.memory import InMemoryStorage
    from hub.model_gateway.memory import InMemoryUsageStore

    if isinstance(storage, InMemoryStorage) and isinstance(storage.usage, InMemoryUsageStore):
        return InMemoryCaptureStore(
            usage=storage.usage.records_of, require_account=storage.require_account
        )
    return InMemoryCaptureStore()


def _tracker_clients(custody: Custody) -> TrackerClients:
    """The trackers' REST clients (server/trackers/), their tokens resolved through custody."""
    from server.trackers.clients import HttpTrackerClients

    return HttpTrackerClients(custody)


def _held_calls(custody: Custody, storage: Storage, clock: Clock) -> HeldCalls | None:
    """Held calls sealed in the database when custody has the ``local_encrypted`` keys (on
    PostgreSQL: ``PRELOOP_SECRETS_KEYS``); else async calls are held in memory only."""
    from server.custody.local import KeyringSealer, LocalEncryptedBackend

    try:
        local = custody.backend(LOCAL)
    except ConfigError:
        return None
    if not isinstance(local, LocalEncryptedBackend):
        return None
    return HeldCalls(storage.held_calls, KeyringSealer(local.keyring), clock)


def _custody(
    settings: Settings, storage: Storage, clock: Clock, auditor: Auditor
) -> tuple[Custody, list[str]]:
    from server.custody.setup import open_custody  # cryptography: only when a hub opens

    return open_custody(settings, storage, clock, auditor)


def _gateway_accounting(
    settings: Settings,
    storage: Storage,
    clock: Clock,
    auditor: Auditor,
    approvals: ApprovalService,
    policies: PolicyService,
) -> dict[str, Any]:
    """The gateway's price book, budgets and usage ledger (``prices``, ``budgets``, ``ledger``)."""
    b = settings.budgets
    unpriced = ModelPrice(model="*", input=b.unpriced_input, output=b.unpriced_output)
    try:
        check_price(unpriced)
    except ValidationError as exc:
        raise ConfigError(f"PRELOOP_BUDGETS_UNPRICED_INPUT/OUTPUT: {exc}") from exc
    cache = settings.server.cache_seconds
    return {
        "prices": PriceBook(
            storage.model_prices,
            unpriced=unpriced,
            default_max_output_tokens=b.default_max_output_tokens,
            cache_seconds=cache,
        ),
        "budgets": BudgetService(
            storage,
            clock,
            auditor,
            approvals=approvals,
            policies=policies,
            cache_seconds=cache,
            reservation_seconds=b.reservation_seconds,
        ),
        "ledger": UsageLedger(
            storage.usage, batch=b.ledger_batch, retry_seconds=b.ledger_retry_seconds
        ),
    }


def _notifiers(
    settings: Settings, links: LinkSigner, clock: Clock, storage: Storage, auditor: Auditor
) -> list[Notifier]:
    """The channels this server delivers on, from the settings."""
    notifiers: list[Notifier] = []
    if settings.push.proxy_url:
        from bots.push import PushNotifier

        push = PushNotifier.from_settings(settings, devices=storage.devices, auditor=auditor)
        if push is not None:
            notifiers.append(push)
    if settings.smtp.host:
        from bots.email import EmailNotifier

        notifiers.append(
            EmailNotifier(
                settings.smtp,
                links,
                public_url=settings.public_url,
                clock=clock,
                link_seconds=settings.notifications.link_seconds,
            )
        )
    check_slack_settings(settings)
    if settings.slack.bot_token:
        from slack_sdk.web.async_client import AsyncWebClient

        from bots.slack import SlackNotifier

        client = AsyncWebClient(token=settings.slack.bot_token, base_url=settings.slack.api_url)
        notifiers.append(
            SlackNotifier(
                client,
                default_channel=settings.slack.channel,
                users=storage.users,
                messages=storage.channel_messages,
                clock=clock,
            )
        )
    return notifiers


def check_slack_settings(settings: Settings) -> None:
    """Slack's tokens fit together: clicks come back signed (HTTP mode, the signing secret)
    or over the worker's own connection (Socket Mode, the app token), never unverified."""
    slack = settings.slack
    if slack.app_token and not slack.app_token.startswith("xapp-"):
        raise ConfigError(
            "PRELOOP_SLACK_APP_TOKEN is not an app-level token (xapp-...): make one under "
            "Basic Information > App-Level Tokens with the connections:write scope"
        )
    if slack.app_token and not slack.bot_token:
        raise ConfigError(
            "PRELOOP_SLACK_APP_TOKEN is set but PRELOOP_SLACK_BOT_TOKEN is not: Socket Mode "
            "receives clicks, but posting and updating messages needs the bot token (xoxb-...)"
        )
    if slack.bot_token and not (slack.signing_secret or slack.app_token):
        raise ConfigError(
            "PRELOOP_SLACK_BOT_TOKEN is set but neither PRELOOP_SLACK_SIGNING_SECRET (HTTP "
            "mode) nor PRELOOP_SLACK_APP_TOKEN (Socket Mode, in 'preloop bots') is: Slack's "
            "button clicks could not be verified"
        )


def check_delivery(settings: Settings) -> None:
    """``PRELOOP_NOTIFICATIONS_DELIVER=worker`` needs events that reach the worker: only the
    PostgreSQL bus crosses processes. On SQLite nobody would deliver, so refuse to start."""
    from server.db import normalize_database_url

    url = normalize_database_url(settings.database_url)
    if settings.notifications.deliver == "worker" and not url.startswith("postgresql"):
        raise ConfigError(
            "PRELOOP_NOTIFICATIONS_DELIVER=worker needs PostgreSQL (PRELOOP_DATABASE_URL): on "
            "SQLite the server's events do not reach the 'preloop bots' worker, so no "
            "notice would be sent. Use PRELOOP_NOTIFICATIONS_DELIVER=server"
        )


def _mattermost(
    settings: Settings, link_secret: str, clock: Clock, storage: Storage
) -> MattermostNotifier | None:
    """The Mattermost channel, when its URL and token are set."""
    if not (settings.mattermost.url and settings.mattermost.token):
        return None
    from bots.mattermost import ActionSigner, MattermostNotifier

    return MattermostNotifier(
        settings.mattermost,
        ActionSigner(link_secret),
        public_url=settings.public_url,
        clock=clock,
        link_seconds=settings.notifications.link_seconds,
        users=storage.users,
        messages=storage.channel_messages,
    )


def _link_secret_file(settings: Settings) -> str:
    """The link secret kept in the data directory, made on first use (mode 0600)."""
    path = settings.data_path / LINK_SECRET_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        secret = new_link_secret()
        write_private(path, secret + "\n")
        return secret


async def open_event_bus(database_url: str) -> EventBus:
    """PostgreSQL LISTEN/NOTIFY on PostgreSQL (replicas share events), in-process otherwise."""
    from server.db import normalize_database_url

    if not normalize_database_url(database_url).startswith("postgresql"):
        return InMemoryEventBus()
    from server.db.pg_bus import PostgresEventBus  # asyncpg: only when needed

    return await PostgresEventBus.connect(normalize_database_url(database_url))


def upstream_config(server: McpServer, settings: Settings) -> UpstreamConfig:
    """A stored server definition, its ``${NAME}`` references resolved only through
    ``PRELOOP_MCP_ENV_ALLOW``."""
    spec = msgspec.convert(
        {**server.config, "name": server.name, "transport": server.transport}, McpServerSpec
    )
    resolved = resolve_server_env(spec, os.environ, settings.mcp.env_allow_names)
    return UpstreamConfig.from_spec(resolved)


async def start_upstreams(hub: Hub) -> None:
    """Connect (in the background) to every MCP server of the default account. A server
    whose definition cannot be resolved is skipped, with a note saying why."""
    for problem in await hub.mcp_servers.sync():
        hub.notes.append(problem)


def _engine(settings: Settings) -> CelEngine:
    try:
        return engine_named(settings.policy.cel_engine)
    except ValueError as exc:
        raise ConfigError(f"PRELOOP_POLICY_CEL_ENGINE: {exc}") from exc


def example_policy_text() -> str:
    return resources.files("server").joinpath(EXAMPLE_POLICY).read_text(encoding="utf-8")


async def first_start(hub: Hub) -> None:
    """Make a new installation usable: the default account, a first admin key (shown once,
    and saved to a 0600 file in the data directory), and a policy."""
    account = await hub.identity.default_account()
    if not await hub.storage.api_keys.list(account.id) and not hub.settings.admin_key:
        created = await hub.identity.create_key(
            account.id, name="initial admin", role=Role.ADMIN, actor="system"
        )
        path = hub.settings.data_path / FIRST_KEY_FILE
        write_private(path, created.secret + "\n")
        hub.notes.append(
            f"Created the first admin key (shown once, also saved to {path}):\n\n"
            f"    {created.secret}\n"
        )
    policy_file = hub.settings.policy.file
    if policy_file:
        text = await asyncio.to_thread(_read_policy_file, policy_file)
        result = await hub.policies.apply(
            account.id,
            text,
            actor="system",
            filename=policy_file,
            comment="applied at start (PRELOOP_POLICY_FILE)",
        )
        state = "applied as version" if result.changed else "unchanged, version"
        hub.notes.append(f"Policy {policy_file}: {state} {result.version}.")
    elif await hub.storage.policies.latest(account.id) is None:
        result = await hub.policies.apply(
            account.id,
            example_policy_text(),
            actor="system",
            filename=EXAMPLE_POLICY,
            comment="example policy for a new installation",
        )
        hub.notes.append(
            f"Applied the example policy as version {result.version} "
            "(see it with 'preloop policy export')."
        )


def _read_policy_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"policy file {path} (PRELOOP_POLICY_FILE): {exc.strerror}") from exc
