"""The offline scorer: a metric's rule set (hub/compliance/catalogue.yaml) applied to an issue,
deterministically. It answers upstream's JSON contract, like the model does:

    compliance_factor      the weighted share of the checks the issue passes, two places
    reason, suggestion     what failed and what to add (or that it passes every check)
    annotated_description  one note per check: {text, label, status: pass|fail, comment}
    checks                 {check name: passed}

``improve`` adds ``improved_description`` (the description plus the ``section`` of every failed
check that has one) and ``changes`` (the suggestions). The same issue, metric and catalogue
always get the same answer; nothing is asked of anyone.
"""

from __future__ import annotations

import re
from typing import Any

from hub.compliance.catalogue import (
    Absent,
    Check,
    IfMentioned,
    Labels,
    Matches,
    MaxCount,
    MaxWords,
    Metric,
    MinWords,
    TitleCheck,
    compiled,
)
from hub.trackers.records import Issue

ENGINE = "rules"
_WORD = re.compile(r"[^\W_]+")
_EXCERPT = 120


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _text(issue: Issue, where: str) -> str:
    if where == "title":
        return issue.title
    if where == "body":
        return issue.body
    return f"{issue.title}\n\n{issue.body}"


def passes(check: Check, issue: Issue) -> tuple[bool, str]:
    """Whether ``issue`` passes ``check``, and the text that shows it (an excerpt, or "")."""
    match check:
        case TitleCheck():
            words = _words(issue.title)
            vague = {v.lower() for v in check.vague}
            plain = len(words) >= check.min_words and not (
                len(words) <= check.min_words and words[0].lower() in vague
            )
            return plain, issue.title
        case MinWords():
            return len(_words(_text(issue, check.where))) >= check.min, ""
        case MaxWords():
            return len(_words(_text(issue, check.where))) <= check.max, ""
        case Labels():
            return len(issue.labels) >= check.min, ", ".join(issue.labels)
        case Matches():
            found = compiled(check.pattern).search(_text(issue, check.where))
            return found is not None, _excerpt(found)
        case Absent():
            found = compiled(check.pattern).search(_text(issue, check.where))
            return found is None, _excerpt(found)
        case MaxCount():
            count = len(compiled(check.pattern).findall(_text(issue, check.where)))
            return count <= check.max, ""
        case IfMentioned():
            text = _text(issue, check.where)
            signal = compiled(check.when).search(text)
            if signal is None:
                return True, ""
            return compiled(check.pattern).search(text) is not None, _excerpt(signal)


def _excerpt(found: re.Match[str] | None) -> str:
    return "" if found is None else found.group(0).strip()[:_EXCERPT]


def estimate(metric: Metric, issue: Issue) -> dict[str, Any]:
    """The contract for one issue under ``metric``'s rules, and which checks passed."""
    results = [(check, *passes(check, issue)) for check in metric.rules]
    failed = [check for check, ok, _ in results if not ok]
    total = sum(check.weight for check in metric.rules)
    passed = total - sum(check.weight for check in failed)
    if failed:
        reason = f"{metric.title}: " + "; ".join(c.reason for c in failed) + "."
        suggestion = " ".join(c.suggestion for c in failed)
    else:
        reason = f"{metric.title}: it passes every check."
        suggestion = f"None: it meets {metric.title}."
    return {
        "compliance_factor": round(passed / total, 2),
        "reason": reason,
        "suggestion": suggestion,
        "annotated_description": [
            {
                "text": shown,
                "label": check.name,
                "status": "pass" if ok else "fail",
                "comment": "" if ok else f"{check.reason}. {check.suggestion}",
            }
            for check, ok, shown in results
        ],
        "checks": {check.name: ok for check, ok, _ in results},
    }


def improve(metric: Metric, issue: Issue) -> dict[str, Any]:
    """``estimate`` and a proposed description adding the sections that are missing."""
    result = estimate(metric, issue)
    failed = [c for c in metric.rules if not result["checks"][c.name]]
    sections = [c.section for c in failed if c.section]
    body = issue.body.rstrip()
    result["improved_description"] = "\n\n".join(([body] if body else []) + sections)
    result["changes"] = [c.suggestion for c in failed]
    return result
