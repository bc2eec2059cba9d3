"""The Policies screen's working copy: the active policy as the hub's own model, edited locally.

The screen exports the active policy (canonical YAML), loads it with the hub's loader into a
:class:`~hub.policy.PolicyDocument`, and every edit (move a rule, switch it on or off, change
its condition) builds a new immutable document. :meth:`PolicyDraft.source` is the canonical
YAML of the working copy: what is validated, diffed and applied on the server, so the server
(not the dashboard) has the last word on what is valid. Nothing here does I/O.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from hub.policy import Rule, Tool, export_policy, load_policy


class RulePath(NamedTuple):
    tool: int  # index in document.tools
    rule: int  # index in that tool's conditions

    @property
    def key(self) -> str:
        """The problem key the server's validation reports for this rule."""
        return f"tools[{self.tool}].conditions[{self.rule}]"


class PolicyDraft:
    def __init__(self, source: str, version: int) -> None:
        self.version = version  # the applied version the draft started from
        self.document = load_policy(source, filename="<active policy>").document
        self.original = export_policy(self.document)

    @property
    def dirty(self) -> bool:
        return self.source() != self.original

    def source(self) -> str:
        return export_policy(self.document)

    def tool(self, index: int) -> Tool:
        return self.document.tools[index]

    def rule(self, at: RulePath) -> Rule:
        return self.document.tools[at.tool].conditions[at.rule]

    def move(self, at: RulePath, by: int) -> RulePath | None:
        """Move a rule up (``by=-1``) or down (``by=1``) within its tool; where it went, or
        ``None`` when it is already first or last."""
        rules = list(self.tool(at.tool).conditions)
        to = at.rule + by
        if not 0 <= to < len(rules):
            return None
        rules[at.rule], rules[to] = rules[to], rules[at.rule]
        self._set_rules(at.tool, rules)
        return RulePath(at.tool, to)

    def toggle(self, at: RulePath) -> bool:
        """Switch a rule on or off; whether it is now enabled."""
        rule = self.rule(at)
        self._replace_rule(at, msgspec.structs.replace(rule, enabled=not rule.enabled))
        return not rule.enabled

    def set_expression(self, at: RulePath, expression: str) -> None:
        """A blank expression removes the condition (the rule then always matches)."""
        text = expression.strip() or None
        self._replace_rule(at, msgspec.structs.replace(self.rule(at), expression=text))

    def _replace_rule(self, at: RulePath, rule: Rule) -> None:
        rules = list(self.tool(at.tool).conditions)
        rules[at.rule] = rule
        self._set_rules(at.tool, rules)

    def _set_rules(self, index: int, rules: list[Rule]) -> None:
        tools = list(self.document.tools)
        tools[index] = msgspec.structs.replace(tools[index], conditions=tuple(rules))
        self.document = msgspec.structs.replace(self.document, tools=tuple(tools))
