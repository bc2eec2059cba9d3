"""``preloop bench search`` end to end with small runs: the indexing and latency rows on
SQLite and PostgreSQL (pgvector), every issue indexed, and its section of a Markdown file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli.bench import bench
from server.search_bench import BEGIN, END

KINDS = ["fulltext", "similarity", "similarity, filtered"]


def _run(*args: str) -> dict[str, object]:
    outcome = CliRunner().invoke(
        bench,
        ["search", "--issues", "200", "--queries", "5", "--json", *args],
        catch_exceptions=False,
    )
    assert outcome.exit_code == 0, outcome.output
    report: dict[str, object] = json.loads(outcome.stdout)
    return report


def test_bench_search_on_sqlite_indexes_every_issue_and_times_each_kind(tmp_path: Path) -> None:
    document = tmp_path / "performance.md"
    document.write_text("# Performance\n\n## Other\n\nkept\n", encoding="utf-8")

    report = _run("--no-postgres", "--write", str(document))

    indexing, latency = report["indexing"], report["latency"]
    assert isinstance(indexing, list)
    assert isinstance(latency, list)
    assert [("SQLite", "embed only"), ("SQLite", "embed + put")] == [
        (r["database"], r["mode"]) for r in indexing
    ]
    assert all(r["issues"] == 200 and r["issues_per_s"] > 0 for r in indexing)
    assert [
        ("SQLite", k, e) for k, e in zip(KINDS, ["fulltext", "exact", "exact"], strict=True)
    ] == [(r["database"], r["kind"], r["engine"]) for r in latency]
    for row in latency:
        assert row["queries"] == 5
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert 0 < row["hits_per_query"] <= 10
    assert "local:hashing-v1@512" == report["model"]
    written = document.read_text(encoding="utf-8")
    assert written.startswith("# Performance\n\n## Other\n\nkept\n")
    assert 1 == written.count(BEGIN) == written.count(END)
    assert "| SQLite | similarity | exact | 5 |" in written

    _run("--no-postgres", "--write", str(document))  # a second run replaces the section

    again = document.read_text(encoding="utf-8")
    assert 1 == again.count(BEGIN) == again.count("## Issue search")


@pytest.mark.postgres
def test_bench_search_on_postgres_answers_through_pgvector(pgvector_url: str) -> None:
    report = _run("--database-url", pgvector_url)

    latency = report["latency"]
    assert isinstance(latency, list)
    postgres = [(r["kind"], r["engine"]) for r in latency if r["database"] == "PostgreSQL"]
    assert list(zip(KINDS, ["fulltext", "pgvector-hnsw", "pgvector-hnsw"], strict=True)) == postgres
    assert "pgvector 0.8" in str(report["postgres"])


def test_bench_search_refuses_nothing_to_measure() -> None:
    outcome = CliRunner().invoke(bench, ["search", "--issues", "0"])

    assert outcome.exit_code != 0
    assert "must be positive" in outcome.output
