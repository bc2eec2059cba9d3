"""PostgreSQL only: the stores keep working across a server restart.

The engine does not ping a connection before each use (that cost three round trips per
transaction, see ``server.db.engine``): a pooled connection the server closed is noticed from
its socket at checkout, and a read whose connection is lost under it is run again on a new
one. Each test runs its own throwaway cluster, since it restarts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy import Executable, select, update
from sqlalchemy.engine import Connection

from hub.audit_chain import verify_chain
from hub.errors import StorageError
from hub.records import ApprovalStatus
from server.db import SqlStorage, make_engine, upgrade_database
from server.db import tables as t
from tests.conftest import NO_POSTGRES, _in_ci
from tests.pg import LocalCluster, binaries_available, run_in_thread

from .records import approval, at, draft, new_account, vote

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    if not binaries_available():
        if _in_ci():
            pytest.fail(f"{NO_POSTGRES}; CI must run the PostgreSQL tests")
        pytest.skip(NO_POSTGRES)
    started = LocalCluster.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def database_url(cluster: LocalCluster) -> str:
    async def create() -> str:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres")
        try:
            await conn.execute('CREATE DATABASE "preloop"')
        finally:
            await conn.close()
        url = cluster.admin_url.set(database="preloop").render_as_string(hide_password=False)
        await upgrade_database(url)
        return url

    return run_in_thread(create)


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[SqlStorage]:
    opened = SqlStorage(make_engine(database_url))
    try:
        yield opened
    finally:
        await opened.close()


async def _fill_the_pool(storage: SqlStorage, account_id: str) -> None:
    """Several connections in the pool, each used once: all of them go stale at a restart."""
    await asyncio.gather(*(storage.accounts.get(account_id) for _ in range(5)))
    assert storage.engine.pool.checkedin() >= 2  # type: ignore[attr-defined]


async def test_every_kind_of_store_call_works_right_after_a_restart(
    cluster: LocalCluster, storage: SqlStorage
) -> None:
    account_id = await new_account(storage)
    pending, approved = approval(account_id), approval(account_id, status=ApprovalStatus.APPROVED)
    for request in (pending, approved):
        await storage.approvals.add(request)
    await storage.audit.append(draft(account_id, n=1))
    await _fill_the_pool(storage, account_id)

    await asyncio.to_thread(cluster.restart)  # the loop runs on, as a server's would

    # First a single-statement write (never retried: it must get a live connection), then
    # concurrent reads (several stale connections at once), a write transaction, the audit
    # writer.
    claimed = await storage.approvals.claim(account_id, approved.id, at(5))
    assert claimed is not None
    assert claimed.claimed_at == at(5)
    found = await asyncio.gather(*(storage.approvals.get(account_id, pending.id) for _ in range(5)))
    assert [r.id for r in found if r is not None] == [pending.id] * 5
    outcome = await storage.approvals.cast_vote(vote(pending, "user_a"), required=1, decided_by="a")
    assert outcome.decided is not None
    assert outcome.decided.status is ApprovalStatus.APPROVED
    await storage.audit.append(draft(account_id, n=2))
    events = await storage.audit.all(account_id)
    assert [e.seq for e in events] == [1, 2]
    assert verify_chain(events, head=await storage.audit.head(account_id)).ok


async def _terminate_others(port: int) -> None:
    """End every other client connection of the cluster from the server side, as a restart
    or ``pg_terminate_backend`` does."""
    conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
    finally:
        await conn.close()


class LosesItsConnection:
    """Work for the ``Database`` runners whose first run has the server end its connection
    before its statement is sent (no check at checkout can see that coming)."""

    def __init__(self, port: int, stmt: Executable) -> None:
        self.port = port
        self.stmt = stmt
        self.runs = 0

    def __call__(self, conn: Connection) -> int:
        self.runs += 1
        if self.runs == 1:
            run_in_thread(lambda: _terminate_others(self.port))
        return int(conn.execute(self.stmt).rowcount)


async def test_a_read_whose_connection_is_lost_runs_again_on_a_new_one(
    cluster: LocalCluster, storage: SqlStorage
) -> None:
    account_id = await new_account(storage)
    work = LosesItsConnection(cluster.port, select(t.accounts).where(t.accounts.c.id == account_id))

    assert 1 == await storage.approvals._db.run_read(work)
    assert 2 == work.runs


async def test_a_write_transaction_lost_before_its_commit_runs_again(
    cluster: LocalCluster, storage: SqlStorage
) -> None:
    account_id = await new_account(storage)
    work = LosesItsConnection(
        cluster.port, update(t.accounts).where(t.accounts.c.id == account_id).values(name="renamed")
    )

    assert 1 == await storage.approvals._db.run_write(work)
    assert 2 == work.runs
    renamed = await storage.accounts.get(account_id)
    assert renamed is not None
    assert renamed.name == "renamed"


async def test_a_single_statement_write_lost_while_it_ran_is_reported_not_repeated(
    cluster: LocalCluster, storage: SqlStorage
) -> None:
    # Its statement may have committed before the connection went: running it again could
    # do it twice, so the caller hears of the loss instead.
    account_id = await new_account(storage)
    work = LosesItsConnection(
        cluster.port, update(t.accounts).where(t.accounts.c.id == account_id).values(name="renamed")
    )

    with pytest.raises(StorageError):
        await storage.approvals._db.run_single(work)
    assert 1 == work.runs
