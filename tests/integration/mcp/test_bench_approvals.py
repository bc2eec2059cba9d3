"""``preloop bench approvals`` end to end with a tiny run: both setups, both channels."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from server.cli.bench import bench
from tests.integration.mcp.support import REPO


def test_bench_approvals_reports_both_setups_and_channels(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    monkeypatch.chdir(REPO)  # the upstream runs `-m tests.servers...` from the repo root
    outcome = CliRunner().invoke(
        bench,
        ["approvals", "--rounds", "3", "--postgres-url", postgres_url, "--json"],
        catch_exceptions=False,
    )
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    rows = {(r["setup"], r["database"], r["channel"]): r for r in report["results"]}
    assert set(rows) == {
        ("one process", "sqlite", "rest"),
        ("one process", "sqlite", "slack"),
        ("two replicas", "postgresql", "rest"),
        ("two replicas", "postgresql", "slack"),
    }
    for row in rows.values():
        assert row["rounds"] == 3
        assert 0 < row["decide_p50_ms"] <= row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
