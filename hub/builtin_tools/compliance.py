"""A deterministic, rule-based Definition-of-Ready check: what ``estimate_compliance`` and
``improve_compliance`` answer until the model-based engine arrives (issue 16). Every answer
says ``"engine": "rules"``.

Upstream's JSON contract per issue: ``compliance_factor`` (0..1), ``reason``, ``suggestion``,
``annotated_description``. The factor is the share of the checks below an issue passes,
rounded to two places; the same issue always gets the same answer.

    title            a title of at least three words that says what (not "fix", "bug")
    description      a description of at least 20 words
    acceptance       acceptance criteria: a heading or line naming them, a checklist
                     (``- [ ]``), or Given/When/Then
    context          why it matters: a "why", "because", "so that", "context", "background",
                     "problem", "goal", "user story" or "as a ..., I want"
    labelled         at least one label (the issue is triaged)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.trackers.records import Issue

ENGINE = "rules"
METRIC = "DoR"
_VAGUE_TITLES = frozenset({"fix", "bug", "issue", "todo", "update", "change", "problem", "wip"})
_ACCEPTANCE = re.compile(
    r"acceptance criteria|definition of done|^\s*[-*]\s*\[[ xX]\]|\bgiven\b.*\bwhen\b.*\bthen\b",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_CONTEXT = re.compile(
    r"\b(why|because|so that|context|background|problem|goal|motivation|user story)\b"
    r"|\bas an? \w+.*\bi want\b",
    re.IGNORECASE | re.DOTALL,
)
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passes: Callable[[Issue], bool]
    missing: str  # what the reason says when it fails
    suggestion: str  # what to add
    template: str  # the section improve_compliance proposes


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _title(issue: Issue) -> bool:
    words = _words(issue.title)
    return len(words) >= 3 and not (len(words) <= 3 and words[0].lower() in _VAGUE_TITLES)


CHECKS: tuple[Check, ...] = (
    Check(
        "title",
        _title,
        "the title does not say what is wanted (fewer than three words, or vague)",
        "Write a title of a few words that names the change or the problem.",
        "",
    ),
    Check(
        "description",
        lambda i: len(_words(i.body)) >= 20,
        "the description is missing or shorter than 20 words",
        "Describe the work: what should change, where, and what is out of scope.",
        "## Description\n_What should change, where, and what is out of scope._",
    ),
    Check(
        "acceptance_criteria",
        lambda i: _ACCEPTANCE.search(i.body) is not None,
        "there are no acceptance criteria",
        "Add acceptance criteria as a checklist (- [ ] ...) or Given/When/Then.",
        "## Acceptance criteria\n- [ ] _A testable condition that says the work is done._",
    ),
    Check(
        "context",
        lambda i: _CONTEXT.search(i.body) is not None,
        "it does not say why the work matters",
        "Say why it is needed: the problem, the goal or the user it serves.",
        "## Context\n_Why this is needed: the problem, the goal or the user it serves._",
    ),
    Check(
        "labelled",
        lambda i: bool(i.labels),
        "it has no labels (not triaged)",
        "Label it (type, area or priority) so it can be planned.",
        "",
    ),
)


def estimate(issue: Issue) -> dict[str, Any]:
    """Upstream's contract for one issue, and which checks passed."""
    failed = [c for c in CHECKS if not c.passes(issue)]
    factor = round((len(CHECKS) - len(failed)) / len(CHECKS), 2)
    if failed:
        reason = "Not ready: " + "; ".join(c.missing for c in failed) + "."
        suggestion = " ".join(c.suggestion for c in failed)
    else:
        reason = "Ready: it meets every Definition-of-Ready check."
        suggestion = "None: it meets the Definition of Ready."
    return {
        "compliance_factor": factor,
        "reason": reason,
        "suggestion": suggestion,
        "annotated_description": _annotated(issue, failed),
        "checks": {c.name: c not in failed for c in CHECKS},
    }


def improve(issue: Issue) -> dict[str, Any]:
    """``estimate`` and a proposed description adding the sections that are missing."""
    result = estimate(issue)
    failed = [c for c in CHECKS if not result["checks"][c.name]]
    sections = [c.template for c in failed if c.template]
    body = issue.body.rstrip()
    proposed = "\n\n".join(([body] if body else []) + sections)
    result["improved_description"] = proposed
    result["changes"] = [c.suggestion for c in failed]
    return result


def _annotated(issue: Issue, failed: list[Check]) -> str:
    """The description with a note per failed check, as upstream annotates it."""
    notes = [f"<!-- DoR: {c.missing}. {c.suggestion} -->" for c in failed]
    return "\n".join([issue.body.rstrip(), *notes]) if notes else issue.body
