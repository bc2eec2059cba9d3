"""``preloop bench approvals``: from a decision to the waiting agent's result.

An agent (the MCP SDK client) calls a tool whose policy requires a synchronous approval and
waits; once the request is pending, an approver approves it. One round is timed from just
before the decision is sent to the agent receiving the tool's result: the decision, the event
that wakes the held call, the (trivial) upstream call and the answer. The decision arrives
by one of two channels:

- ``rest``: ``POST /api/v1/approvals/{id}/approve`` with an admin key.
- ``slack``: a signed ``block_actions`` callback (the Approve button) to ``/slack/events``
  from a Slack user linked to a Preloop approver, as Slack sends it; bolt checks the
  signature, the handler finds the user and decides. The servers' Slack Web API is a minimal
  local fake (``server.mcp._slack_fake``); the workflow posts no message, so the fake serves
  only bolt's ``auth.test``.

Two setups, each ``python -m server serve`` subprocesses run from a repository checkout (the
upstream is the in-repo test server over stdio):

- ``one process``: one server on SQLite; the agent and the decision use the same server.
- ``two replicas``: two servers on one PostgreSQL; the agent waits on A, the decision goes to
  B, and the event crosses through LISTEN/NOTIFY. PostgreSQL is ``--postgres-url`` (an empty
  database the benchmark may migrate), else a throwaway local cluster when ``initdb`` and
  ``postgres`` are installed (``tests/pg.py``), else the setup is skipped.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import httpx2
import msgspec
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from slack_sdk.signature import SignatureVerifier

from bots.slack import APPROVE_ACTION
from server.mcp._slack_fake import FakeSlackApi
from server.mcp.bench import _free_port, _percentile, _stop, serve_subprocess

CHANNELS = ("rest", "slack")
SLACK_USER = "UBENCHAPPROVER"
APPROVER_EMAIL = "bench-approver@example.com"

POLICY = """\
version: "1.0"
metadata: {name: approvals bench}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.upstream_server", "stdio"]
approval_workflows:
  - {name: bench-sync, timeout_seconds: 600, async_approval: false}
tools:
  - {name: echo, server: demo, action: require_approval, approval_workflow: bench-sync}
defaults: {action: deny, unknown_tools: deny}
"""


class SetupResult(msgspec.Struct):
    setup: str  # "one process" | "two replicas"
    database: str  # "sqlite" | "postgresql"
    channel: str  # "rest" | "slack": how the decision arrived
    rounds: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    # Part of it: until the REST call that decided returned (the decision's own cost).
    decide_p50_ms: float
    decide_p99_ms: float


class _Slack(msgspec.Struct):
    api_url: str  # the fake Web API the servers' Slack client calls
    signing_secret: str  # a fresh one per run: only this run's servers and clicks know it


class _Replica(msgspec.Struct):
    url: str
    admin_key: str


def _start(
    repo: Path, root: Path, database_url: str, admin_key: str, slack: _Slack
) -> tuple[Any, _Replica]:
    root.mkdir(parents=True, exist_ok=True)
    policy = root / "policy.yaml"
    policy.write_text(POLICY % {"python": sys.executable})
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRELOOP_")}
    env |= {
        "PRELOOP_DATA_DIR": str(root / "data"),
        "PRELOOP_ENV_FILE": str(root / "no.env"),
        "PRELOOP_POLICY_FILE": str(policy),
        "PRELOOP_LOG_LEVEL": "WARNING",
        # The agent must wake on the decision's event, never on a heartbeat's re-read.
        "PRELOOP_MCP_APPROVAL_HEARTBEAT_SECONDS": "3600",
        "HOME": str(root),
        # Slack on, for the callbacks; the workflow names no channel, so nothing is posted.
        "PRELOOP_SLACK_BOT_TOKEN": "xoxb-preloop-bench",
        "PRELOOP_SLACK_SIGNING_SECRET": slack.signing_secret,
        "PRELOOP_SLACK_API_URL": slack.api_url,
    }
    if database_url:
        env["PRELOOP_DATABASE_URL"] = database_url
    process, url = serve_subprocess(repo, port, env)
    key_file = root / "data" / "initial-admin-key"
    key = key_file.read_text().strip() if key_file.exists() else admin_key
    return process, _Replica(url=url, admin_key=key)


@contextmanager
def _replicas(
    repo: Path, root: Path, database_url: str, count: int, slack: _Slack
) -> Iterator[list[_Replica]]:
    """``count`` servers on one database, started one after another (the first migrates and
    makes the admin key)."""
    processes: list[Any] = []
    replicas: list[_Replica] = []
    try:
        for n in range(count):
            key = replicas[0].admin_key if replicas else ""
            process, replica = _start(repo, root / f"replica-{n}", database_url, key, slack)
            processes.append(process)
            replicas.append(replica)
        yield replicas
    finally:
        for process in processes:
            _stop(process)


Decide = Callable[[httpx.AsyncClient, str, str], Awaitable[None]]
"""Sends the decision for (account id, request id) and returns once it was answered."""


async def _rounds(
    agent_on: _Replica, decide_on: _Replica, rounds: int, channel: str, slack: _Slack
) -> tuple[list[float], list[float]]:
    admin = {"Authorization": f"Bearer {agent_on.admin_key}"}
    async with httpx.AsyncClient(timeout=30) as http:
        created = await http.post(
            f"{agent_on.url}/api/v1/keys/",
            json={"name": f"bench agent {channel}", "role": "agent"},
            headers=admin,
        )
        created.raise_for_status()
        secret = str(created.json()["secret"])
        decide = (
            await _slack_decider(http, decide_on, slack.signing_secret)
            if channel == "slack"
            else _rest_decider(decide_on)
        )
        latencies: list[float] = []
        deciding: list[float] = []
        async with _agent(agent_on.url, secret) as client:
            for n in range(rounds + 1):  # round 0 warms up, not measured
                call = asyncio.create_task(client.call_tool("demo__echo", {"text": f"r{n}"}))
                account_id, request_id = await _pending(http, decide_on, call)
                started = time.perf_counter()
                await decide(http, account_id, request_id)
                decided = time.perf_counter() - started
                result = await asyncio.wait_for(call, timeout=30)
                elapsed = time.perf_counter() - started
                if result.is_error:
                    raise RuntimeError(f"the approved call failed: {result.content}")
                if n:
                    latencies.append(elapsed)
                    deciding.append(decided)
    return latencies, deciding


def _rest_decider(on: _Replica) -> Decide:
    async def decide(http: httpx.AsyncClient, _account_id: str, request_id: str) -> None:
        approved = await http.post(
            f"{on.url}/api/v1/approvals/{request_id}/approve",
            json={},
            headers={"Authorization": f"Bearer {on.admin_key}"},
        )
        approved.raise_for_status()

    return decide


async def _slack_decider(http: httpx.AsyncClient, on: _Replica, signing_secret: str) -> Decide:
    """An approver user with an approver key, linked to a Slack user; the decision is that
    user's click on Approve, signed as Slack signs it."""
    admin = {"Authorization": f"Bearer {on.admin_key}"}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/users/", {"email": APPROVER_EMAIL}),
        ("/api/v1/keys/", {"name": "approver", "role": "approver", "user_email": APPROVER_EMAIL}),
        (f"/api/v1/users/{APPROVER_EMAIL}/link", {"slack": SLACK_USER}),
    ]
    for path, body in steps:
        answer = await http.post(f"{on.url}{path}", json=body, headers=admin)
        if answer.status_code == 409:  # a second replica sees the first one's user
            continue
        answer.raise_for_status()
    signer = SignatureVerifier(signing_secret)

    async def decide(http: httpx.AsyncClient, account_id: str, request_id: str) -> None:
        body = _approve_click(account_id, request_id)
        timestamp = str(int(time.time()))
        signature = signer.generate_signature(timestamp=timestamp, body=body)
        if signature is None:  # slack_sdk's type allows it; a str body always signs
            raise RuntimeError("could not sign the Slack callback")
        answer = await http.post(
            f"{on.url}/slack/events",
            content=body,
            headers={
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        answer.raise_for_status()

    return decide


def _approve_click(account_id: str, request_id: str) -> str:
    """Slack's ``block_actions`` payload for a click on a request's Approve button."""
    payload = {
        "type": "block_actions",
        "team": {"id": "TBENCH"},
        "user": {"id": SLACK_USER},
        "api_app_id": "ABENCH",
        "trigger_id": f"trigger-{request_id}",
        "channel": {"id": "CBENCH"},
        "container": {"type": "message", "channel_id": "CBENCH"},
        "actions": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION + request_id,
                "block_id": "preloop_decision",
                "value": account_id,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": msgspec.json.encode(payload).decode()})


async def _pending(
    http: httpx.AsyncClient, on: _Replica, call: asyncio.Task[Any]
) -> tuple[str, str]:
    """(account id, request id) of the request the held call opened (not timed)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if call.done():
            raise RuntimeError(f"the call ended before its approval: {call.result()}")
        found = await http.get(
            f"{on.url}/api/v1/approvals/",
            params={"status": "pending"},
            headers={"Authorization": f"Bearer {on.admin_key}"},
        )
        found.raise_for_status()
        if found.json():
            request = found.json()[0]
            return str(request["account_id"]), str(request["id"])
        await asyncio.sleep(0.005)
    raise RuntimeError("the held call never opened an approval request")


@asynccontextmanager
async def _agent(url: str, key: str) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(30.0, read=300.0)
    ) as http:
        transport = streamable_http_client(f"{url}/mcp", http_client=http)
        async with Client(transport, cache=None) as client:
            yield client


def _result(
    setup: str, database: str, channel: str, measured: tuple[list[float], list[float]]
) -> SetupResult:
    latencies, deciding = measured
    return SetupResult(
        setup=setup,
        database=database,
        channel=channel,
        rounds=len(latencies),
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        max_ms=max(latencies) * 1000,
        decide_p50_ms=_percentile(deciding, 0.50) * 1000,
        decide_p99_ms=_percentile(deciding, 0.99) * 1000,
    )


@contextmanager
def _postgres(postgres_url: str, progress: Callable[[str], None]) -> Iterator[str | None]:
    """The PostgreSQL URL to use: the given one, or a throwaway cluster, or ``None``."""
    if postgres_url:
        yield postgres_url
        return
    try:
        from tests.pg import LocalCluster, binaries_available  # a repository checkout
    except ImportError:
        progress("no --postgres-url and no tests/pg.py: skipping two replicas")
        yield None
        return
    if not binaries_available():
        progress("no --postgres-url and no PostgreSQL binaries: skipping two replicas")
        yield None
        return
    progress("starting a throwaway PostgreSQL cluster...")
    cluster = LocalCluster.start()
    try:
        yield cluster.admin_url.render_as_string(hide_password=False)
    finally:
        cluster.stop()


def run_approvals_bench(
    *,
    rounds: int,
    postgres_url: str,
    progress: Callable[[str], None],
    repo: Path | None = None,
    channels: Sequence[str] = CHANNELS,
) -> list[SetupResult]:
    """Each setup's servers are started once; each channel's rounds run on them in turn."""
    repo = repo or Path.cwd()
    results: list[SetupResult] = []
    with tempfile.TemporaryDirectory(prefix="preloop-bench-") as tmp, FakeSlackApi() as api:
        slack = _Slack(api_url=api.url, signing_secret=secrets.token_urlsafe(32))
        progress("one process (SQLite)...")
        with _replicas(repo, Path(tmp) / "sqlite", "", 1, slack) as (only,):
            for channel in channels:
                measured = asyncio.run(_rounds(only, only, rounds, channel, slack))
                results.append(_result("one process", "sqlite", channel, measured))
        with _postgres(postgres_url, progress) as url:
            if url is not None:
                progress("two replicas (PostgreSQL)...")
                with _replicas(repo, Path(tmp) / "pg", url, 2, slack) as (a, b):
                    for channel in channels:
                        measured = asyncio.run(_rounds(a, b, rounds, channel, slack))
                        results.append(_result("two replicas", "postgresql", channel, measured))
    return results
