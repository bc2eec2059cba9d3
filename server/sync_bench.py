"""``preloop bench sync``: tracker sync throughput, issues/s from the GitHub fake into SQLite.

Both rows make the same requests to the same fake over real HTTP with the real GitHub adapter:
every Link page of ``GET /repos/{o}/{r}/issues`` and each issue's comments.

- **fetch only** (the baseline): the pages and the comments, nothing written;
- **sync**: ``Syncer.scan(full=True)`` into a new SQLite database (migrated before the clock
  starts): the same requests, every issue and comment upserted, the cursor moved per page.

The fake (tests/integration/fakes/github.py, so a repository checkout) runs in a subprocess
of its own, so its CPU is not this process's. Runs alternate (fetch, sync, fetch, sync, …) and
the medians are reported, with this process's CPU per issue; the difference between the rows is
what syncing adds per issue.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec

from hub.clock import SystemClock
from hub.records import Account
from hub.trackers.records import Tracker, TrackerKind
from hub.trackers.sync import Syncer

REPO = "bench/repo"
REF = "env:GITHUB_TOKEN"  # a custody reference's name, not a secret


def _fakes() -> Any:
    """tests/integration/fakes/github.py, of a repository checkout (imported by name: it is
    test code, outside what is type-checked and shipped)."""
    return importlib.import_module("tests.integration.fakes.github")


def _token() -> str:
    return str(_fakes().TOKEN)


class SyncRow(msgspec.Struct, frozen=True, kw_only=True):
    mode: str  # "fetch only" / "sync into SQLite"
    issues: int
    requests: int
    seconds: float  # median wall time
    issues_per_s: float
    cpu_ms_per_issue: float  # this process's CPU (the fake runs elsewhere)
    every_run_s: tuple[float, ...]


class SyncBenchResult(msgspec.Struct, frozen=True, kw_only=True):
    issues: int
    comments_per_issue: int
    per_page: int
    runs: int
    rows: tuple[SyncRow, ...]
    stored_issues: int  # what the last sync left in the database (checked == issues)
    added_ms_per_issue: float  # sync minus fetch, wall time per issue


def serve_fake(issues: int, comments: int, port: int) -> None:
    """The GitHub fake with ``issues`` issues of ``comments`` comments each, on ``port``
    (``python -m server.sync_bench PORT ISSUES COMMENTS``; runs until killed)."""
    import uvicorn

    fake = _fakes().FakeGitHub()
    fake.add_repo(REPO)
    for n in range(1, issues + 1):
        labels = ("bug",) if n % 3 == 0 else ()
        fake.add_issue(
            REPO, f"Issue {n}: something to fix", f"Steps to reproduce {n}", labels=labels
        )
        for c in range(comments):
            fake.add_comment(REPO, n, f"Comment {c} on issue {n}")
    fake.requests = _NoLog()  # a long run need not keep them
    uvicorn.run(fake, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


class _NoLog(list):  # type: ignore[type-arg]
    def append(self, _item: object) -> None:
        return None


@contextlib.contextmanager
def _fake(issues: int, comments: int) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "server.sync_bench", str(port), str(issues), str(comments)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/user", headers={"Authorization": f"Bearer {_token()}"}, timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the GitHub fake did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


class _Clients:
    def __init__(self, url: str, per_page: int) -> None:
        self._url = url
        self._per_page = per_page

    async def client(self, tracker: Tracker) -> object:
        from server.trackers.github import GitHubClient

        return GitHubClient(self._url, _token(), token_ref=REF, per_page=self._per_page)


async def _fetch(url: str, per_page: int) -> tuple[int, int]:
    """Every page and every issue's comments, written nowhere: (issues, requests)."""
    from server.trackers.github import GitHubClient

    client = GitHubClient(url, _token(), token_ref=REF, per_page=per_page)
    issues = requests = 0
    page: str | None = None
    try:
        while True:
            answer = await client.issues_since(REPO, None, page=page)
            requests += 1
            for issue in answer.items:
                await client.comments(REPO, issue.number)
                requests += 1
                issues += 1
            page = answer.next_page
            if page is None:
                return issues, requests
    finally:
        await client.close()


async def _sync(url: str, per_page: int, database: Path) -> tuple[float, float, int, int]:
    """A full scan into a new SQLite file: (seconds, CPU seconds, issues written, stored)."""
    from server.db import open_storage
    from server.db.stores.trackers import SqlTrackerStorage

    storage = await open_storage(f"sqlite:///{database}")
    try:
        trackers = SqlTrackerStorage.beside(storage)
        now = datetime.now(UTC)
        await storage.accounts.add(Account(id="acct_bench", name="bench", created_at=now))
        tracker = Tracker(
            id="trk_bench",
            account_id="acct_bench",
            name="github",
            kind=TrackerKind.GITHUB,
            base_url=url,
            token_ref=REF,
            projects=(REPO,),
            poll_seconds=0,
            created_at=now,
            updated_at=now,
        )
        await trackers.trackers.add(tracker)
        syncer = Syncer(trackers, _Clients(url, per_page), SystemClock())  # type: ignore[arg-type]
        started, cpu = time.perf_counter(), time.process_time()
        report = await syncer.scan(tracker, full=True)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        if report.errors:
            raise RuntimeError(f"the sync failed: {report.errors}")
        stored = await trackers.issues.count("acct_bench", tracker.id)
        return seconds, cpu_s, report.issues, stored
    finally:
        await storage.close()


def run_sync_bench(
    *, issues: int, comments: int, per_page: int, runs: int, progress: Callable[[str], None]
) -> SyncBenchResult:
    root = Path(__file__).resolve().parents[1]
    if not (root / "tests" / "integration" / "fakes" / "github.py").is_file():
        raise RuntimeError("preloop bench sync runs from a repository checkout (its GitHub fake)")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    fetch_s: list[float] = []
    fetch_cpu: list[float] = []
    sync_s: list[float] = []
    sync_cpu: list[float] = []
    requests = stored = 0
    progress(f"seeding the GitHub fake with {issues} issues ({comments} comments each)...")
    with _fake(issues, comments) as url, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_fetch(url, per_page))  # warm-up: imports, connections, the fake's caches
        for run in range(1, runs + 1):
            started, cpu = time.perf_counter(), time.process_time()
            fetched, requests = asyncio.run(_fetch(url, per_page))
            fetch_s.append(time.perf_counter() - started)
            fetch_cpu.append(time.process_time() - cpu)
            seconds, cpu_s, written, stored = asyncio.run(
                _sync(url, per_page, Path(tmp) / f"sync-{run}.db")
            )
            sync_s.append(seconds)
            sync_cpu.append(cpu_s)
            if fetched != issues or written != issues or stored != issues:
                raise RuntimeError(f"expected {issues} issues: fetched {fetched}, synced {stored}")
            progress(f"run {run}/{runs}: fetch {fetch_s[-1]:.2f} s, sync {seconds:.2f} s")
    rows = (
        _row("fetch only", issues, requests, fetch_s, fetch_cpu),
        _row("sync into SQLite", issues, requests, sync_s, sync_cpu),
    )
    added = (rows[1].seconds - rows[0].seconds) / issues * 1000
    return SyncBenchResult(
        issues=issues,
        comments_per_issue=comments,
        per_page=per_page,
        runs=runs,
        rows=rows,
        stored_issues=stored,
        added_ms_per_issue=round(added, 3),
    )


def _row(mode: str, issues: int, requests: int, wall: list[float], cpu: list[float]) -> SyncRow:
    seconds = statistics.median(wall)
    return SyncRow(
        mode=mode,
        issues=issues,
        requests=requests,
        seconds=round(seconds, 3),
        issues_per_s=round(issues / seconds, 1),
        cpu_ms_per_issue=round(statistics.median(cpu) / issues * 1000, 3),
        every_run_s=tuple(round(s, 2) for s in wall),
    )


if __name__ == "__main__":
    serve_fake(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[1]))
