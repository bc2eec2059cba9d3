"""``preloop bench sync`` end to end with one small run: both rows, the same requests, every
issue stored."""

from __future__ import annotations

import json

from click.testing import CliRunner

from server.cli.bench import bench


def test_bench_sync_fetches_and_syncs_the_same_pages() -> None:
    outcome = CliRunner().invoke(
        bench,
        ["sync", "--issues", "12", "--per-page", "5", "--runs", "1", "--json"],
        catch_exceptions=False,
    )

    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    rows = {r["mode"]: r for r in report["rows"]}
    assert ["fetch only", "sync into SQLite"] == list(rows)
    assert 12 == report["stored_issues"]
    assert 15 == rows["fetch only"]["requests"]  # 3 pages and 12 issues' comments
    for row in rows.values():
        assert row["issues_per_s"] > 0


def test_bench_sync_refuses_a_page_size_github_does_not_serve() -> None:
    outcome = CliRunner().invoke(bench, ["sync", "--per-page", "101"])

    assert outcome.exit_code != 0
    assert "--per-page 1 to 100" in outcome.output
