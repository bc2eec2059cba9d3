"""The benchmark's pure functions. Nothing here asserts on timing."""

from __future__ import annotations

from hub.policy import Action, generate_policy, load_policy, run_policy_bench
from hub.policy.bench import bench_call


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
        assert result.rules_per_tool == 5
        assert result.last_rule.count == result.unknown_tool.count == 15
        assert 0 < result.last_rule.p50_us <= result.last_rule.p99_us
        assert result.load_ms > 0
        assert 0 < result.distinct_expressions <= result.n_tools * result.rules_per_tool
    assert any("loading" in m for m in messages)
