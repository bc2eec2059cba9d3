"""``preloop bench gateway`` end to end with a tiny run: both paths, both modes, every proxied
request in the ledger, the targets judged."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from server.cli.bench import bench
from tests.integration.mcp.support import REPO


def test_bench_gateway_reports_both_paths_and_the_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(
        REPO
    )  # `-m server` and `-m server.model_gateway.fake_provider` from the checkout
    outcome = CliRunner().invoke(
        bench,
        ["gateway", "--requests", "12", "--concurrency", "1,3", "--json"],
        catch_exceptions=False,
    )
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    rows = {(r["mode"], r["concurrency"], r["path"]): r for r in report["rows"]}
    assert len(rows) == 12  # direct, proxied, captured (capture full) per mode and concurrency
    for (_, _, path), row in rows.items():
        assert row["requests"] == 12
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert row["requests_per_s"] > 0
        assert (row["preloop_cpu_ms_per_request"] is None) == (path == "direct")
    assert report["ledger_rows"] == report["proxied_requests"] > 0
    assert report["captured_checked"] == report["captured_found"] > 0
    assert report["cold_start_s"] > 0
    assert report["restart_s"] > 0
    assert report["idle_rss_mb"] > 10
    names = [t["name"] for t in report["targets"]]
    assert names == [
        "overhead p50, c=1",
        "overhead p99, c=1",
        "capture full vs off p50, c=1",
        "cold start, new data dir",
        "restart",
        "idle RSS",
    ]  # no concurrency-10 row was measured, so no req/s target
