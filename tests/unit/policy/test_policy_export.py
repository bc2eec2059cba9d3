"""Canonical export round-trips exactly; diffs compare canonical forms."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.builtin_tools.names import BUILTIN_TOOL_NAMES
from hub.errors import PolicyError
from hub.policy import (
    Action,
    ApprovalWorkflow,
    Channel,
    Defaults,
    Escalation,
    JustificationMode,
    McpServerSpec,
    Metadata,
    OnError,
    OnTimeout,
    PolicyDocument,
    Rule,
    Tool,
    ToolSource,
    Transport,
    diff_policies,
    export_policy,
    load_policy,
    policy_digest,
)
from tests.properties import examples

SPEC_EXAMPLE = textwrap.dedent(
    """\
    version: "1.0"
    metadata:
      name: "Production Safeguards"
      description: "Require approval before deploying to production"
      tags: [security, production]
    approval_workflows:
      - name: "deploy-approval"
        timeout_seconds: 600
        required_approvals: 1
        async_approval: true
    tools:
      - name: "bash"
        source: mcp
        approval_workflow: "deploy-approval"
        justification: required
        conditions:
          - expression: "args.command.contains('deploy') && args.command.contains('production')"
            action: require_approval
            description: "Production deployments require approval"
    """
)

SPEC_CANONICAL = textwrap.dedent(
    """\
    version: "1.0"
    metadata:
      name: Production Safeguards
      description: Require approval before deploying to production
      tags:
        - security
        - production
    approval_workflows:
      - name: deploy-approval
        async_approval: true
    tools:
      - name: bash
        approval_workflow: deploy-approval
        justification: required
        conditions:
          - expression: args.command.contains('deploy') && args.command.contains('production')
            action: require_approval
            description: Production deployments require approval
    """
)


def test_spec_example_canonical_form() -> None:
    loaded = load_policy(SPEC_EXAMPLE)

    assert export_policy(loaded.document) == SPEC_CANONICAL
    assert loaded.digest == policy_digest(SPEC_CANONICAL)


def test_defaults_are_omitted_but_non_defaults_and_fallback_decisions_kept() -> None:
    document = PolicyDocument(
        version="1.0",
        metadata=Metadata(name="m"),
        defaults=Defaults(),
        tools=(Tool(name="search", source=ToolSource.BUILTIN, action=Action.DENY),),
    )

    assert export_policy(document) == (
        'version: "1.0"\nmetadata:\n  name: m\ndefaults:\n  action: allow\n'
        "  unknown_tools: deny\n  on_error: deny\ntools:\n"
        "  - name: search\n    source: builtin\n    action: deny\n"
    )


def test_env_and_headers_are_sorted_and_references_kept_literal() -> None:
    document = PolicyDocument(
        version="1.0",
        metadata=Metadata(name="m"),
        mcp_servers=(
            McpServerSpec(
                name="gh",
                transport=Transport.STDIO,
                command="github-mcp",
                env={"Z": "${Z}", "A": "1"},
            ),
        ),
    )

    text = export_policy(document)

    assert '    env:\n      A: "1"\n      Z: ${Z}\n' in text
    assert load_policy(text).document == document


def test_multi_line_strings_become_blocks() -> None:
    document = PolicyDocument(
        version="1.0",
        metadata=Metadata(name="m", description="line one\nline two\n"),
        tools=(
            Tool(
                name="t",
                conditions=(Rule(expression="args.a == 1 ||\n  args.b == 2", action=Action.DENY),),
            ),
        ),
    )

    text = export_policy(document)

    assert "  description: |\n    line one\n    line two\n" in text
    assert "      - expression: |-\n          args.a == 1 ||\n            args.b == 2\n" in text
    assert load_policy(text).document == document


@pytest.mark.parametrize(
    "value",
    [
        "yes",
        "null",
        "~",
        "1.0",
        "0x1f",
        "2026-01-01",
        "- item",
        "key: value",
        "# comment",
        "@handle",
        "!tag",
        "&anchor",
        "*alias",
        " leading",
        "trailing ",
        "tab\there",
        "quote's",
        '"double"',
        "back\\slash",
        "line\u2028separator",
        "nel\x85",
        "bom\ufeff",
        "del\x7f",
        "ends with colon:",
        "---",
        "...",
        "=",
        "<<",
        "",
        "ünïcødé ✓",
        "a\n\nb",
        "\nleading newline",
        "two trailing\n\n",
        "trailing space on a line \nnext",
    ],
)
def test_awkward_strings_round_trip(value: str) -> None:
    document = PolicyDocument(
        version="1.0",
        metadata=Metadata(name="m", description=value, tags=(value or "x",)),
    )

    text = export_policy(document)

    assert load_policy(text).document == document
    assert export_policy(load_policy(text).document) == text


# -- property: any valid document round-trips --------------------------------------------------

_TEXT = st.text(max_size=30)
_NAME = st.text(
    alphabet=st.characters(exclude_characters="/#", codec="utf-8"),
    min_size=1,
    max_size=12,
)
_EXPRESSIONS = [
    "args.command.contains('deploy') && args.command.contains('production')",
    "has(args.limit) ? args.limit > 10 : false",
    "args.env in ['prod', 'staging']",
    "args.sql.matches(r'(?i)^\\s*drop\\b')",
    "principal.labels['team'] == 'payments'",
    "context.time.getHours() >= 18 ||\n  context.time.getHours() < 8",
    "size(justification) > 0",
    "tool.server == 'gh'",
]


@st.composite
def documents(draw: st.DrawFn) -> PolicyDocument:
    workflow_names = draw(st.lists(_NAME, unique=True, max_size=3))
    workflows = tuple(draw(_workflow(name)) for name in workflow_names)
    server_names = draw(st.lists(_NAME, unique=True, max_size=3))
    servers = tuple(draw(_server(name)) for name in server_names)
    default_workflow = draw(st.sampled_from(workflow_names)) if workflow_names else None
    approvals = default_workflow is not None
    actions = list(Action) if approvals else [Action.ALLOW, Action.DENY]
    defaults = draw(
        st.none()
        | st.builds(
            Defaults,
            action=st.sampled_from(actions),
            unknown_tools=st.sampled_from(actions),
            approval_workflow=st.just(default_workflow),
            on_error=st.sampled_from(list(OnError) if approvals else [OnError.DENY]),
        )
    )
    if defaults is None:
        actions = [Action.ALLOW, Action.DENY]
    keys = draw(
        st.lists(
            st.tuples(_NAME, st.sampled_from([None, *server_names]) if servers else st.none()),
            unique=True,
            max_size=4,
        )
    )
    # Built-in entries name one of the built-in tools and no server (docs/decisions/0089).
    builtins = draw(st.lists(st.sampled_from(BUILTIN_TOOL_NAMES), unique=True, max_size=2))
    sourced = [(n, s, "mcp") for n, s in keys] + [(n, None, "builtin") for n in builtins]
    rule_numbers = iter(range(1000))
    tools = []
    for name, server, source in sourced:
        count = draw(st.integers(0, 3))
        rules = []
        for position in range(count):
            last = position == count - 1
            expression = draw(st.sampled_from(_EXPRESSIONS) | (st.none() if last else st.nothing()))
            rules.append(
                Rule(
                    id=f"rule-{next(rule_numbers)}" if draw(st.booleans()) else None,
                    expression=expression,
                    action=draw(st.sampled_from(actions)),
                    description=draw(_TEXT),
                    message=draw(st.none() | _TEXT),
                    approval_workflow=draw(st.none() | st.sampled_from(workflow_names))
                    if workflow_names
                    else None,
                )
            )
        tools.append(
            Tool(
                name=name,
                description=draw(_TEXT),
                source=ToolSource(source),
                server=server,
                approval_workflow=None,
                justification=draw(st.sampled_from(list(JustificationMode))),
                conditions=tuple(rules),
                action=draw(st.none() | st.sampled_from(actions)),
            )
        )
    return PolicyDocument(
        version="1.0",
        metadata=Metadata(
            name=draw(_NAME), description=draw(_TEXT), tags=tuple(draw(st.lists(_TEXT, max_size=3)))
        ),
        defaults=defaults,
        mcp_servers=servers,
        approval_workflows=workflows,
        tools=tuple(tools),
    )


def _workflow(name: str) -> st.SearchStrategy[ApprovalWorkflow]:
    @st.composite
    def build(draw: st.DrawFn) -> ApprovalWorkflow:
        timeout = draw(st.integers(2, 10_000))
        approvers = tuple(
            draw(
                st.lists(
                    st.sampled_from(["user:ann@example.com", "team:oncall", "role:approver"]),
                    unique=True,
                    max_size=3,
                )
            )
        )
        return ApprovalWorkflow(
            name=name,
            description=draw(_TEXT),
            timeout_seconds=timeout,
            required_approvals=draw(
                st.integers(1, 1 if approvers == ("user:ann@example.com",) else 3)
            ),
            async_approval=draw(st.booleans()),
            approvers=approvers,
            channels=tuple(draw(st.lists(st.sampled_from(list(Channel)), unique=True))),
            escalation=draw(
                st.none()
                | st.builds(
                    Escalation,
                    after_seconds=st.integers(1, timeout - 1),
                    approvers=st.just(("team:oncall",)),
                )
            ),
            on_timeout=draw(st.sampled_from(list(OnTimeout))),
        )

    return build()


def _server(name: str) -> st.SearchStrategy[McpServerSpec]:
    stdio = st.builds(
        McpServerSpec,
        name=st.just(name),
        transport=st.just(Transport.STDIO),
        command=_NAME,
        args=st.lists(_TEXT, max_size=3).map(tuple),
        env=st.dictionaries(_NAME, _TEXT, max_size=3),
    )
    remote = st.builds(
        McpServerSpec,
        name=st.just(name),
        transport=st.sampled_from([Transport.STREAMABLE_HTTP, Transport.SSE]),
        url=_TEXT.map(lambda tail: f"https://example.com/{tail}"),
        headers=st.dictionaries(_NAME, _TEXT, max_size=2),
    )
    return stdio | remote


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_any_document_round_trips_through_its_canonical_export(document: PolicyDocument) -> None:
    text = export_policy(document)
    loaded = load_policy(text, filename="exported.yaml")

    assert loaded.document == document
    assert export_policy(loaded.document) == text
    assert loaded.digest == policy_digest(text)


# -- diff ------------------------------------------------------------------------------------


def test_diff_of_identical_policies_is_empty_even_when_formatting_differs() -> None:
    reformatted = "# a comment\n" + SPEC_EXAMPLE.replace('"bash"', "bash").replace(
        "  tags: [security, production]", "  tags:\n    - security\n    - production"
    )

    assert diff_policies(SPEC_EXAMPLE, reformatted) == ""
    assert diff_policies(SPEC_EXAMPLE, SPEC_EXAMPLE) == ""


def test_diff_shows_what_changed() -> None:
    changed = SPEC_EXAMPLE.replace("timeout_seconds: 600", "timeout_seconds: 300")

    diff = diff_policies(SPEC_EXAMPLE, changed, old_name="v1", new_name="v2")

    assert diff.startswith("--- v1\n+++ v2\n@@")
    assert "\n+    timeout_seconds: 300\n" in diff
    assert [line for line in diff.splitlines() if line.startswith(("-", "+"))] == [
        "--- v1",
        "+++ v2",
        "+    timeout_seconds: 300",
    ]


def test_diff_against_no_policy_adds_everything() -> None:
    diff = diff_policies(None, SPEC_EXAMPLE, old_name="(none)", new_name="new.yaml")

    added = [line[1:] for line in diff.splitlines()[3:]]
    assert added == SPEC_CANONICAL.splitlines()


def test_diff_of_an_invalid_policy_raises() -> None:
    with pytest.raises(PolicyError):
        diff_policies(SPEC_EXAMPLE, "version: 1\n")


def _roundtrip(data: dict[str, Any]) -> PolicyDocument:
    return load_policy(export_policy(PolicyDocument(**data))).document


def test_empty_defaults_survive_the_round_trip() -> None:
    document = _roundtrip(
        {"version": "1.0", "metadata": Metadata(name="m"), "defaults": Defaults()}
    )

    assert document.defaults == Defaults()
