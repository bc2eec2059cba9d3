"""``preloop bench start`` end to end with one run: both starts measured, in order."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from server.cli.bench import bench
from tests.integration.mcp.support import REPO


def test_bench_start_reports_a_new_and_a_restarted_data_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)  # `-m server` from the checkout
    outcome = CliRunner().invoke(bench, ["start", "--runs", "1", "--json"], catch_exceptions=False)

    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    assert ["new", "restart"] == [r["data_dir"] for r in report["runs"]]
    for run in report["runs"]:
        assert 0 < run["healthz_s"] <= run["api_s"]  # the REST answer can only come after
        assert run["healthz_cpu_s"] > 0
        assert run["mcp_s"] > 0
        assert 10 < run["idle_rss_mb"] <= run["mcp_rss_mb"] + 1  # the MCP SDK loads on use
