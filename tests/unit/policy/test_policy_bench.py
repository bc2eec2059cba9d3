"""The benchmark's pure functions. Nothing here asserts on timing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hub.policy import ENGINES, Action, generate_policy, load_policy, run_policy_bench
from hub.policy.bench import bench_call
from server.cli.main import cli


def test_generated_policy_loads_and_its_bench_calls_reach_the_last_rule() -> None:
    text = generate_policy(25, rules_per_tool=4, seed=3)
    loaded = load_policy(text)

    assert len(loaded.document.tools) == 25
    assert all(len(tool.conditions) == 4 for tool in loaded.document.tools)
    for index in (0, 1, 24):
        decision = loaded.decide(bench_call(index))
        assert decision.action is Action.ALLOW
        assert decision.rule.endswith(f"tool_{index:05d}#4")


def test_generation_is_deterministic_per_seed() -> None:
    assert generate_policy(10, seed=1) == generate_policy(10, seed=1)
    assert generate_policy(10, seed=1) != generate_policy(10, seed=2)


def test_run_policy_bench_reports_each_size() -> None:
    messages: list[str] = []

    results = run_policy_bench(sizes=(3, 20), decisions=15, progress=messages.append)

    assert [r.n_tools for r in results] == [3, 20]
    for result in results:
        assert result.engine == "cel-python"
        assert result.rules_per_tool == 5
        assert result.last_rule.count == result.unknown_tool.count == 15
        assert 0 < result.last_rule.p50_us <= result.last_rule.p99_us
        assert result.load_ms > 0
        assert 0 < result.distinct_expressions <= result.n_tools * result.rules_per_tool
    assert any("loading" in m for m in messages)


def test_run_policy_bench_measures_each_engine_per_size() -> None:
    engines = sorted(ENGINES)

    results = run_policy_bench(sizes=(4, 6), decisions=10, engine=engines)

    assert [(r.n_tools, r.engine) for r in results] == [(n, e) for n in (4, 6) for e in engines]
    for result in results:
        assert result.last_rule.count == result.unknown_tool.count == 10
    for size in (4, 6):  # the same policy for every engine
        assert (
            len({(r.distinct_expressions, r.yaml_bytes) for r in results if r.n_tools == size}) == 1
        )


def test_run_policy_bench_refuses_an_unknown_engine() -> None:
    with pytest.raises(
        ValueError, match="unknown CEL engine 'cel-go'; available: auto, cel-python"
    ):
        run_policy_bench(sizes=(3,), decisions=5, engine=["cel-python", "cel-go"])


def test_bench_command_compares_all_engines_by_default() -> None:
    result = CliRunner().invoke(
        cli, ["bench", "policy", "--sizes", "3", "--decisions", "5"], catch_exceptions=False
    )

    assert result.exit_code == 0
    header = next(line for line in result.stdout.splitlines() if line.startswith("TOOLS"))
    assert "ENGINE" in header
    assert "P50 VS CEL-PYTHON" in header
    lines = result.stdout.splitlines()
    for label in ("  cel-rust (default)  ", "  cel-python (reference)  "):
        assert sum(label in line for line in lines) == 2  # last rule, unknown tool
    assert "5-rule tool, last rule, default engine (cel-rust): p50 " in result.stdout
    assert "load average (1, 5, 15 min): " in result.stdout


def test_bench_command_measures_10_to_10000_tools_by_default() -> None:
    from server.cli.bench import policy_bench

    sizes = next(p for p in policy_bench.params if p.name == "sizes")

    assert "10,100,1000,10000" == sizes.default


def test_bench_measures_without_quick_checks_when_asked() -> None:
    results = run_policy_bench(sizes=(3,), decisions=5, engine="cel-rust", prechecks=False)

    assert [False] == [r.prechecks for r in results]


def test_bench_command_runs_the_engines_it_is_given_and_prints_json() -> None:
    result = CliRunner().invoke(
        cli,
        ["bench", "policy", "--sizes", "2", "--decisions", "3", "--engine", "cel-python", "--json"],
        catch_exceptions=False,
    )

    assert result.exit_code == 0
    rows = json.loads(result.stdout)["results"]
    assert [(row["engine"], row["n_tools"]) for row in rows] == [("cel-python", 2)]


def test_bench_command_refuses_an_unknown_engine() -> None:
    result = CliRunner().invoke(cli, ["bench", "policy", "--sizes", "2", "--engine", "nope"])

    assert result.exit_code == 2
    assert "unknown engine 'nope'; available: cel-python" in result.stderr
