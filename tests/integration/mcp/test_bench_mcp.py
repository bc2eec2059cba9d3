"""``preloop bench mcp`` end to end with a tiny run: both paths measured, numbers positive."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from server.cli.bench import bench
from tests.integration.mcp.support import REPO


def test_bench_mcp_reports_direct_and_proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the upstream runs `-m tests.servers...` from the repo root
    outcome = CliRunner().invoke(
        # 40 calls a row: CPU time is read in clock ticks (10 ms), and the upstream spends about
        # 1 ms a call, so ten calls could read as no CPU at all.
        bench,
        ["mcp", "--calls", "40", "--concurrency", "1,3", "--json"],
        catch_exceptions=False,
    )
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    assert "load average" in report["machine"]  # the machine's load, beside the numbers
    rows = {(r["concurrency"], r["path"]): r for r in report["results"]}
    assert set(rows) == {(1, "direct"), (1, "proxied"), (3, "direct"), (3, "proxied")}
    for row in rows.values():
        assert row["calls"] == 40
        assert row["p50_ms"] > 0
        assert row["p99_ms"] >= row["p50_ms"]
        assert row["calls_per_s"] > 0
    assert all(rows[(c, "proxied")]["server_cpu_ms_per_call"] > 0 for c in (1, 3))
    assert all(rows[(c, "direct")]["server_cpu_ms_per_call"] is None for c in (1, 3))
    assert all(row["upstream_cpu_ms_per_call"] > 0 for row in rows.values())
