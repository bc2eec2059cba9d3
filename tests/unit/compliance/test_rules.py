"""The rule scorer per metric, on crafted issues: an issue that passes every check of a metric,
and for each check a variant that fails exactly that one (so every check can fail)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub.compliance import rules
from hub.compliance.catalogue import packaged_catalogue
from hub.trackers.records import Issue
from tests.unit.compliance.support import issue

CATALOGUE = packaged_catalogue()

DOR_BODY = (
    "Users cannot reset their password because the reset link expires after one minute. "
    "The goal is a link valid for an hour so that people on slow mail still get in.\n\n"
    "## Acceptance criteria\n- [ ] the link works for 60 minutes\n- [ ] expired links say so"
)
DOR = issue("Password reset links expire too soon", DOR_BODY, ("bug",))

STORY = (
    "As an accountant, I want to export invoices as CSV so that I can reconcile them in my "
    "spreadsheet. The export covers one month of invoices, with date, number, customer and "
    "amount columns, and runs from the invoices page."
)
INVEST_BODY = f"{STORY}\n\n## Acceptance criteria\n- [ ] a CSV downloads\n- [ ] it has the columns"
INVEST = issue("Export invoices as CSV", INVEST_BODY, ("feature",))

RISK_BODY = (
    "Show the sum of the listed invoices in the table footer.\n"
    "Rollback plan: revert the commit.\n"
    "Tests: a unit test of the sum and a browser test of the footer."
)
RISK = issue("Show invoice totals in the footer", RISK_BODY)


def _with(base: Issue, **changes: object) -> Issue:
    import msgspec

    return msgspec.structs.replace(base, **changes)


Variant = Callable[[], Issue]
FAILS: dict[tuple[str, str], Variant] = {
    ("DoR", "title"): lambda: _with(DOR, title="fix"),
    ("DoR", "description"): lambda: _with(
        DOR, body="Because the link expires.\n- [ ] it lasts an hour"
    ),
    ("DoR", "acceptance_criteria"): lambda: _with(DOR, body=DOR_BODY.split("\n\n")[0]),
    ("DoR", "context"): lambda: _with(
        DOR,
        body="The reset link lasts one minute. Make it last sixty minutes for every account "
        "on the login page of the web app today.\n\n## Acceptance criteria\n- [ ] it works",
    ),
    ("DoR", "labelled"): lambda: _with(DOR, labels=()),
    ("INVEST", "independent"): lambda: _with(INVEST, body=INVEST_BODY + "\nBlocked by #12."),
    ("INVEST", "negotiable"): lambda: _with(
        INVEST, body=INVEST_BODY + "\nIt must be implemented exactly as specified."
    ),
    ("INVEST", "valuable"): lambda: _with(
        INVEST,
        body="Export one month of invoices to a CSV file with date, number, amount and "
        "currency columns, from the invoices page, using the existing report service and the "
        "standard download dialog of the app.\n\n## Acceptance criteria\n- [ ] a CSV downloads",
    ),
    ("INVEST", "estimable"): lambda: _with(
        INVEST, body="As an accountant I want CSV so that I reconcile.\n- [ ] a CSV downloads"
    ),
    ("INVEST", "small"): lambda: _with(INVEST, body=INVEST_BODY + " more" * 600),
    ("INVEST", "few_tasks"): lambda: _with(
        INVEST, body=INVEST_BODY + "".join(f"\n- [ ] part {n}" for n in range(10))
    ),
    ("INVEST", "testable"): lambda: _with(INVEST, body=STORY),
    ("Risk", "security"): lambda: _with(RISK, body=RISK_BODY + "\nIt reads the auth token."),
    ("Risk", "data"): lambda: _with(RISK, body=RISK_BODY + "\nIt adds a database column."),
    ("Risk", "breaking_change"): lambda: _with(
        RISK, body=RISK_BODY + "\nIt is a breaking change of the invoices API."
    ),
    ("Risk", "rollback"): lambda: _with(
        RISK, body=RISK_BODY.replace("Rollback plan: revert the commit.\n", "")
    ),
    ("Risk", "tests"): lambda: _with(RISK, body=RISK_BODY.rsplit("\n", 1)[0]),
}
IDEAL = {"DoR": DOR, "INVEST": INVEST, "Risk": RISK}


def test_every_check_of_the_catalogue_has_a_failing_variant() -> None:
    every = {(m.name, r.name) for m in CATALOGUE.metrics.values() for r in m.rules}
    assert every == set(FAILS)


@pytest.mark.parametrize("metric", ["DoR", "INVEST", "Risk"])
def test_the_ideal_issue_passes_every_check(metric: str) -> None:
    result = rules.estimate(CATALOGUE.metric(metric), IDEAL[metric])

    assert all(result["checks"].values()), result["checks"]
    assert 1.0 == result["compliance_factor"]
    assert result["reason"].endswith("it passes every check.")
    assert {"pass"} == {a["status"] for a in result["annotated_description"]}


@pytest.mark.parametrize(("metric", "check"), sorted(FAILS))
def test_each_check_fails_alone_on_its_variant(metric: str, check: str) -> None:
    chosen = CATALOGUE.metric(metric)
    rule = next(r for r in chosen.rules if r.name == check)

    result = rules.estimate(chosen, FAILS[metric, check]())

    assert {check} == {name for name, ok in result["checks"].items() if not ok}
    total = sum(r.weight for r in chosen.rules)
    assert round((total - rule.weight) / total, 2) == result["compliance_factor"]
    assert rule.reason in result["reason"]
    assert rule.suggestion in result["suggestion"]
    [note] = [a for a in result["annotated_description"] if a["status"] == "fail"]
    assert (check, f"{rule.reason}. {rule.suggestion}") == (note["label"], note["comment"])


def test_a_risky_signal_with_its_mitigation_passes() -> None:
    body = RISK_BODY + "\nIt reads the auth token; the security team reviews it (security review)."
    result = rules.estimate(CATALOGUE.metric("Risk"), _with(RISK, body=body))

    assert result["checks"]["security"]
    [note] = [a for a in result["annotated_description"] if a["label"] == "security"]
    assert "auth" == note["text"]  # the signal it found


def test_improve_adds_the_sections_of_the_failed_checks_and_keeps_the_body() -> None:
    vague = issue("fix", "It breaks.")

    result = rules.improve(CATALOGUE.metric("DoR"), vague)

    proposed = result["improved_description"]
    assert proposed.startswith("It breaks.\n\n## Description")
    assert "## Acceptance criteria\n- [ ]" in proposed
    assert "## Context" in proposed
    assert 5 == len(result["changes"])
    assert 0.0 == result["compliance_factor"]
    assert DOR_BODY == rules.improve(CATALOGUE.metric("DoR"), DOR)["improved_description"]


def test_the_same_issue_always_gets_the_same_answer() -> None:
    for metric, ideal in IDEAL.items():
        chosen = CATALOGUE.metric(metric)
        assert rules.estimate(chosen, ideal) == rules.estimate(chosen, ideal)
