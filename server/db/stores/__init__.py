"""``SqlStorage``: every store of ``hub.ports.Storage`` on one SQLAlchemy async engine."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, cast

from sqlalchemy.ext.asyncio import AsyncEngine

from hub.ports import Storage
from server.db.engine import make_sqlite_sync_engine, sqlite_path
from server.db.stores._base import Database
from server.db.stores._sqlite_audit import SqliteAuditWriter
from server.db.stores._sqlite_sync import SqliteSync
from server.db.stores.approvals import SqlApprovalStore
from server.db.stores.audit import SqlAuditStore
from server.db.stores.catalog import SqlMcpServerStore, SqlToolStore
from server.db.stores.custody import (
    SqlFlowExecutionStore,
    SqlProviderStore,
    SqlRuntimeTokenStore,
    SqlSecretStore,
)
from server.db.stores.devices import SqlDeviceStore, SqlPairingStore
from server.db.stores.gateway import SqlBudgetStore, SqlModelPriceStore, SqlUsageStore
from server.db.stores.held_calls import SqlHeldCallStore
from server.db.stores.identity import (
    SqlAccountStore,
    SqlApiKeyStore,
    SqlTeamStore,
    SqlUsedLinkStore,
    SqlUserStore,
)
from server.db.stores.logins import SqlAccessTokenStore, SqlPasswordStore
from server.db.stores.messages import SqlChannelMessageStore, SqlNotificationClaimStore
from server.db.stores.policy import SqlPolicyStore, SqlWorkflowStore
from server.db.stores.sync_waits import SqlSyncWaitStore

__all__ = [
    "SqlAccessTokenStore",
    "SqlAccountStore",
    "SqlApiKeyStore",
    "SqlApprovalStore",
    "SqlAuditStore",
    "SqlBudgetStore",
    "SqlDeviceStore",
    "SqlFlowExecutionStore",
    "SqlMcpServerStore",
    "SqlModelPriceStore",
    "SqlNotificationClaimStore",
    "SqlPairingStore",
    "SqlPasswordStore",
    "SqlPolicyStore",
    "SqlProviderStore",
    "SqlRuntimeTokenStore",
    "SqlSecretStore",
    "SqlStorage",
    "SqlTeamStore",
    "SqlToolStore",
    "SqlUsageStore",
    "SqlUsedLinkStore",
    "SqlUserStore",
    "SqlWorkflowStore",
]


class SqlStorage:
    """The SQL implementation of ``hub.ports.Storage``. It owns ``engine``: ``close`` disposes
    it. The schema must be migrated already (``server.db.open_storage`` does both)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        path = sqlite_path(engine.url) if engine.dialect.name == "sqlite" else None
        # On a SQLite file: one thread for whole transactions (_sqlite_sync) and audit appends.
        self._executor: ThreadPoolExecutor | None = None
        sync: SqliteSync | None = None
        if path is not None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preloop-db")
            sync = SqliteSync(make_sqlite_sync_engine(engine.url), self._executor)
        self._sync = sync
        db = Database(engine, sync=sync)
        self.accounts = SqlAccountStore(db)
        self.users = SqlUserStore(db)
        self.teams = SqlTeamStore(db)
        self.api_keys = SqlApiKeyStore(db)
        self.passwords = SqlPasswordStore(db)
        self.access_tokens = SqlAccessTokenStore(db)
        self.servers = SqlMcpServerStore(db)
        self.tools = SqlToolStore(db)
        self.policies = SqlPolicyStore(db)
        self.workflows = SqlWorkflowStore(db)
        self.approvals = SqlApprovalStore(db)
        self.held_calls = SqlHeldCallStore(db)
        self.sync_waits = SqlSyncWaitStore(db)
        self.used_links = SqlUsedLinkStore(db)
        self.channel_messages = SqlChannelMessageStore(db)
        self.notification_claims = SqlNotificationClaimStore(db)
        self.devices = SqlDeviceStore(db)
        self.pairings = SqlPairingStore(db)
        # gateway: custody
        self.providers = SqlProviderStore(db)
        self.secrets = SqlSecretStore(db)
        self.flow_executions = SqlFlowExecutionStore(db)
        self.runtime_tokens = SqlRuntimeTokenStore(db)
        self.usage = SqlUsageStore(db)
        self.budgets = SqlBudgetStore(db)
        self.model_prices = SqlModelPriceStore(db)
        writer = (
            SqliteAuditWriter(path, engine.dialect, executor=self._executor)
            if path is not None
            else None
        )
        self.audit = SqlAuditStore(db, sqlite_writer=writer)

    async def close(self) -> None:
        await self.audit.close()  # events of callers that went away are written first
        if self._sync is not None:
            await self._sync.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        await self.engine.dispose()


if TYPE_CHECKING:  # mypy proves the SQL stores keep the port's shape
    _storage: Storage = SqlStorage(cast(AsyncEngine, None))
