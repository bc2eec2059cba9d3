"""Policy-as-code answers: validation, apply and rollback, export, diff, versions, evaluate."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from hub.errors import Problem

# The values of hub.policy's Action and JustificationMode (kept in step by a test): hub.policy
# itself is not imported here, so a client decoding these answers never loads CEL.
ActionName = Literal["allow", "deny", "require_approval"]
JustificationName = Literal["none", "optional", "required"]


class PolicyValidation(msgspec.Struct, frozen=True, kw_only=True):
    """``valid``, and every problem found when it is not."""

    valid: bool
    name: str = ""
    tools: int = 0
    problems: list[Problem] = []


class PolicyApplied(msgspec.Struct, frozen=True, kw_only=True):
    """What an apply (or a dry run, or a rollback) did; ``diff`` is unified."""

    changed: bool
    dry_run: bool
    version: int | None  # the version now active (None: no policy yet, dry run on empty)
    previous_version: int | None
    diff: str


class PolicyExport(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    source: str  # canonical YAML


class PolicyDiff(msgspec.Struct, frozen=True, kw_only=True):
    changed: bool
    diff: str


class PolicyVersionSummary(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    name: str
    digest: str
    created_at: datetime
    created_by: str
    comment: str
    active: bool


class DecisionView(msgspec.Struct, frozen=True, kw_only=True):
    """The decision for a hypothetical call (``POST /api/v1/policies/evaluate``)."""

    action: ActionName
    rule: str
    rule_description: str = ""
    workflow: str | None = None
    message: str = ""
    explanation: str = ""
    justification_mode: JustificationName = "none"
    error: str | None = None
    policy_digest: str = ""
