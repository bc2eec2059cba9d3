"""Every policy shipped in policies/ loads, sets defaults.unknown_tools explicitly, and passes
its own cases file (policies/<name>.cases.yaml, at least eight meaningful cases)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hub.policy import load_cases_file, load_policy_file, run_cases

POLICIES = Path(__file__).resolve().parents[3] / "policies"
FILES = sorted(p for p in POLICIES.glob("*.yaml") if not p.name.endswith(".cases.yaml"))


def test_the_folder_has_the_expected_policies() -> None:
    names = {p.stem for p in FILES}

    assert {
        "production-safeguards",
        "default-deny",
        "coding-agent",
        "database",
        "tracker-agent",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_policy_passes_its_cases(path: Path) -> None:
    cases_path = path.with_name(f"{path.stem}.cases.yaml")
    assert cases_path.exists(), f"{path.name} has no cases file {cases_path.name}"

    policy = load_policy_file(path)
    cases = load_cases_file(cases_path)
    report = run_cases(policy, cases)

    assert len(cases) >= 8
    assert report.passed, "\n" + report.render_table()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_policy_sets_unknown_tools_explicitly(path: Path) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))

    assert "unknown_tools" in (raw.get("defaults") or {}), path.name


def test_every_cases_file_belongs_to_a_policy() -> None:
    orphans = [
        p.name
        for p in POLICIES.glob("*.cases.yaml")
        if not p.with_name(p.name.replace(".cases.yaml", ".yaml")).exists()
    ]

    assert orphans == []


def test_production_safeguards_contains_the_spec_example_unchanged() -> None:
    raw = yaml.safe_load((POLICIES / "production-safeguards.yaml").read_text(encoding="utf-8"))

    assert raw["version"] == "1.0"
    assert raw["metadata"] == {
        "name": "Production Safeguards",
        "description": "Require approval before deploying to production",
        "tags": ["security", "production"],
    }
    assert raw["approval_workflows"] == [
        {
            "name": "deploy-approval",
            "timeout_seconds": 600,
            "required_approvals": 1,
            "async_approval": True,
        }
    ]
    assert raw["tools"] == [
        {
            "name": "bash",
            "source": "mcp",
            "approval_workflow": "deploy-approval",
            "justification": "required",
            "conditions": [
                {
                    "expression": (
                        "args.command.contains('deploy') && args.command.contains('production')"
                    ),
                    "action": "require_approval",
                    "description": "Production deployments require approval",
                }
            ],
        }
    ]
