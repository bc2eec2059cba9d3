"""The loader reports every problem, each with its file, line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import PolicyError
from hub.policy import Action, JustificationMode, load_policy, load_policy_file
from tests.unit.policy.policy_helpers import located, policy, problems

MINIMAL = """
version: "1.0"
metadata:
  name: minimal
"""


def test_minimal_policy_loads_with_fail_closed_defaults() -> None:
    loaded = policy(MINIMAL)

    assert loaded.document.metadata.name == "minimal"
    assert loaded.document.defaults is None
    assert loaded.document.effective_defaults.unknown_tools is Action.DENY
    assert loaded.document.effective_defaults.action is Action.ALLOW
    assert len(loaded.digest) == 64


def test_yaml_syntax_error_has_line_and_column() -> None:
    found = problems(
        """
        version: "1.0"
        metadata:
          name: [unclosed
        tools: []
        """
    )

    assert len(found) == 1
    assert found[0].message.startswith("YAML syntax error")
    assert found[0].file == "policy.yaml"
    assert found[0].line == 4
    assert found[0].column is not None


def test_tab_indentation_is_a_syntax_error() -> None:
    found = problems('version: "1.0"\nmetadata:\n\tname: x\n')

    assert [p.line for p in found] == [3]
    assert "YAML syntax error" in found[0].message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_rejected_clearly(text: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(text, filename="empty.yaml")

    assert [p.message for p in caught.value.problems] == ["the policy file is empty"]
    assert caught.value.problems[0].file == "empty.yaml"


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "a list"), ("just text\n", "a single value")],
)
def test_top_level_must_be_a_mapping(text: str, kind: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(text)

    (problem,) = caught.value.problems
    assert problem.message.endswith(f"got {kind}")
    assert problem.line == 1


def test_duplicate_mapping_keys_are_rejected_at_the_second_key() -> None:
    found = problems(
        """
        version: "1.0"
        metadata:
          name: a
          name: b
        tools:
          - name: bash
            action: allow
            action: deny
        """
    )

    assert located(found) == [(4, "metadata.name"), (8, "tools[0].action")]
    assert found[0].message == "duplicate key 'name' (first defined on line 3)"


def test_merge_keys_are_rejected() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: &m
          name: a
        defaults:
          <<: {action: deny}
        """
    )

    assert located(found) == [(5, "defaults")]
    assert "merge keys" in found[0].message


def test_anchors_and_aliases_are_expanded() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: bash
            conditions: &rules
              - expression: "args.command == 'ls'"
                action: allow
            action: deny
          - name: sh
            conditions: *rules
            action: deny
        """
    )

    bash, sh = loaded.document.tools
    assert bash.conditions == sh.conditions


def test_unknown_keys_are_reported_everywhere_with_suggestions() -> None:
    found = problems(
        """
        version: "1.0"
        metadata:
          name: a
          descripton: typo
        approval_workflows:
          - name: wf
            timeout: 30
        tools:
          - name: bash
            conditions:
              - expresion: "true"
                action: allow
        color: blue
        """
    )

    assert located(found) == [
        (4, "metadata.descripton"),
        (7, "approval_workflows[0].timeout"),
        (11, "tools[0].conditions[0].expresion"),
        (13, "color"),
    ]
    assert found[0].message == "unknown key 'descripton' (did you mean 'description'?)"
    assert found[1].message == "unknown key 'timeout' (did you mean 'timeout_seconds'?)"
    assert found[3].message.startswith("unknown key 'color' (allowed: version, metadata")


def test_wrong_types_and_bad_values_name_the_exact_key() -> None:
    found = problems(
        """
        version: "1.0"
        metadata:
          name: a
          tags: security
        approval_workflows:
          - name: wf
            timeout_seconds: "ten"
            required_approvals: 0
            async_approval: maybe
            approvers: [alice]
            channels: [slack, pigeon]
        tools:
          - name: bash
            justification: sometimes
        """
    )

    assert located(found) == [
        (4, "metadata.tags"),
        (7, "approval_workflows[0].timeout_seconds"),
        (8, "approval_workflows[0].required_approvals"),
        (9, "approval_workflows[0].async_approval"),
        (10, "approval_workflows[0].approvers[0]"),
        (11, "approval_workflows[0].channels[1]"),
        (14, "tools[0].justification"),
    ]
    messages = [p.message for p in found]
    assert messages[0] == "expected a list, got a string"
    assert messages[1] == "expected an integer, got a string"
    assert messages[2] == "expected an integer >= 1"
    assert messages[3] == "expected true or false, got a string"
    assert "user:alice@example.com" in messages[4]
    assert messages[5] == (
        "invalid value 'pigeon': expected one of slack, mattermost, email, push, tui, websocket"
    )
    assert messages[6] == "invalid value 'sometimes': expected one of none, optional, required"


def test_bad_action_in_a_rule_is_located_precisely() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: bash
            conditions:
              - expression: "args.command == 'ls'"
                action: allow
              - expression: "args.command == 'rm'"
                action: permit
        """
    )

    assert located(found) == [(9, "tools[0].conditions[1].action")]
    assert found[0].message == (
        "invalid value 'permit': expected one of allow, deny, require_approval"
    )


def test_missing_required_keys() -> None:
    found = problems(
        """
        version: "1.0"
        metadata:
          description: no name
        tools:
          - conditions:
              - expression: "true"
        """
    )

    assert located(found) == [
        (2, "metadata"),
        (5, "tools[0]"),
        (6, "tools[0].conditions[0]"),
    ]
    assert [p.message for p in found] == [
        "missing required key 'name'",
        "missing required key 'name'",
        "missing required key 'action'",
    ]


def test_missing_top_level_keys() -> None:
    found = problems("tools: []\n")

    assert sorted(p.message for p in found) == [
        "missing required key 'metadata'",
        "missing required key 'version'",
    ]


def test_unquoted_version_gets_a_hint() -> None:
    found = problems(
        """
        version: 1.0
        metadata: {name: a}
        """
    )

    assert located(found) == [(1, "version")]
    assert found[0].message == 'the version must be a string: write version: "1.0"'


def test_unsupported_version() -> None:
    found = problems(
        """
        version: "2.0"
        metadata: {name: a}
        """
    )

    assert located(found) == [(1, "version")]
    assert found[0].message == "unsupported policy version '2.0' (supported: \"1.0\")"


def test_one_bad_tool_does_not_hide_another() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: one
            action: nope
          - name: two
            conditions: "not a list"
          - name: three
            action: allow
          - name: four
            server: 7
        """
    )

    assert located(found) == [
        (5, "tools[0].action"),
        (7, "tools[1].conditions"),
        (11, "tools[3].server"),
    ]


def test_duplicate_names() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        mcp_servers:
          - {name: gh, transport: streamable-http, url: "https://example.com/mcp"}
          - {name: gh, transport: sse, url: "https://example.com/sse"}
        approval_workflows:
          - name: wf
          - name: wf
        tools:
          - name: bash
          - name: bash
          - name: bash
            server: gh
          - name: bash
            server: gh
        """
    )

    assert located(found) == [
        (5, "mcp_servers[1].name"),
        (8, "approval_workflows[1].name"),
        (11, "tools[1].name"),
        (14, "tools[3].name"),
    ]
    assert found[2].message == "duplicate tool 'bash' without a server (also tools[0])"
    assert found[3].message == "duplicate tool 'bash' on server 'gh' (also tools[2])"


def test_duplicate_rule_ids() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: a
            conditions:
              - {id: same, expression: "true", action: allow}
          - name: b
            conditions:
              - {id: same, expression: "false", action: deny}
        """
    )

    assert located(found) == [(9, "tools[1].conditions[0].id")]
    assert found[0].message == "duplicate rule id 'same' (also tools[0].conditions[0])"


def test_dangling_workflow_and_server_references() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        defaults:
          approval_workflow: nightly
        mcp_servers:
          - {name: gh, transport: stdio, command: github-mcp}
        approval_workflows:
          - name: wf
        tools:
          - name: bash
            server: gitlab
            approval_workflow: ghost
            conditions:
              - expression: "true"
                action: require_approval
                approval_workflow: phantom
        """
    )

    assert located(found) == [
        (4, "defaults.approval_workflow"),
        (11, "tools[0].server"),
        (12, "tools[0].approval_workflow"),
        (16, "tools[0].conditions[0].approval_workflow"),
    ]
    assert found[0].message == "unknown approval workflow 'nightly' (approval_workflows: wf)"
    assert found[1].message == "unknown server 'gitlab' (mcp_servers: gh)"


def test_a_server_is_only_checked_when_servers_are_declared() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - {name: bash, server: anywhere, action: allow}
        """
    )

    assert loaded.document.tools[0].server == "anywhere"


def test_a_broken_workflow_is_not_also_reported_as_unknown() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        approval_workflows:
          - name: wf
            timeout_seconds: -1
        tools:
          - name: bash
            approval_workflow: wf
            action: require_approval
        """
    )

    assert located(found) == [(5, "approval_workflows[0].timeout_seconds")]


def test_require_approval_without_any_workflow_is_a_load_error() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        approval_workflows:
          - name: wf
        defaults:
          unknown_tools: require_approval
        tools:
          - name: bash
            conditions:
              - expression: "true"
                action: require_approval
          - name: sh
            action: require_approval
          - name: zsh
            approval_workflow: wf
            action: require_approval
        """
    )

    assert located(found) == [
        (6, "defaults.unknown_tools"),
        (11, "tools[0].conditions[0].action"),
        (13, "tools[1].action"),
    ]
    assert "no approval workflow applies" in found[1].message


def test_defaults_action_require_approval_needs_a_workflow_per_tool() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        defaults:
          action: require_approval
        tools:
          - name: bash
        """
    )

    assert located(found) == [(6, "tools[0]")]


def test_on_error_require_approval_needs_a_workflow_for_rules_with_expressions() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        defaults:
          on_error: require_approval
        tools:
          - name: bash
            conditions:
              - expression: "args.x == 1"
                action: allow
        """
    )

    assert located(found) == [(4, "defaults.on_error")]
    assert found[0].message.endswith("none applies to: bash#1")


def test_rules_after_an_unconditional_rule_are_unreachable() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: bash
            conditions:
              - action: deny
              - expression: "true"
                action: allow
        """
    )

    assert located(found) == [(7, "tools[0].conditions[1]")]
    assert "can never match" in found[0].message


def test_transport_fields_must_fit_the_transport() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        mcp_servers:
          - name: local
            transport: stdio
            url: "http://localhost:1/mcp"
          - name: remote
            transport: streamable-http
            command: npx
          - name: events
            transport: sse
            url: "ftp://example.com"
          - name: bad
            transport: carrier-pigeon
        """
    )

    assert located(found) == [
        (4, "mcp_servers[0]"),
        (6, "mcp_servers[0].url"),
        (7, "mcp_servers[1]"),
        (9, "mcp_servers[1].command"),
        (12, "mcp_servers[2].url"),
        (14, "mcp_servers[3].transport"),
    ]
    assert [p.message for p in found[:4]] == [
        "a stdio server needs 'command'",
        "'url' does not apply to a stdio server",
        "a streamable-http server needs 'url'",
        "'command' applies only to stdio servers",
    ]


def test_invalid_variable_reference_in_a_server() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        mcp_servers:
          - name: gh
            transport: stdio
            command: github-mcp
            env:
              TOKEN: "${not-a-name}"
        """
    )

    assert located(found) == [(7, "mcp_servers[0].env")]
    assert "'${not-a-name}' in env.TOKEN" in found[0].message


def test_server_references_stay_literal_after_loading() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: a}
        mcp_servers:
          - name: gh
            transport: stdio
            command: github-mcp
            env: {GITHUB_TOKEN: "${GITHUB_TOKEN}"}
        """
    )

    assert loaded.document.mcp_servers[0].env == {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}


def test_cel_syntax_error_names_tool_rule_column_and_line() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: bash
            conditions:
              - expression: "args.command == 'ls'"
                action: allow
              - expression: "args.command.contains("
                action: deny
        """
    )

    assert located(found) == [(8, "tools[0].conditions[1].expression")]
    assert found[0].message == (
        "CEL syntax error at column 22: unexpected end of expression (tool 'bash', rule 2)"
    )
    assert found[0].render().startswith("policy.yaml:8: tools[0].conditions[1].expression: CEL")


def test_cel_error_in_a_block_scalar_points_at_the_expression_line() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: bash
            conditions:
              - expression: |
                  args.command == 'ls' ||
                  arg.command == 'pwd'
                action: allow
        """
    )

    assert located(found) == [(8, "tools[0].conditions[0].expression")]
    assert found[0].message.startswith("unknown variable 'arg' at column 1 (did you mean 'args'?)")


def test_cel_unknown_function_and_bad_regex_are_load_errors() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: bash
            conditions:
              - expression: "args.command.lowerAscii() == 'ls'"
                action: allow
              - expression: "args.command.matches('(unclosed')"
                action: deny
              - expression: "args.command.matches('(?=lookahead)')"
                action: deny
        """
    )

    assert located(found) == [
        (6, "tools[0].conditions[0].expression"),
        (8, "tools[0].conditions[1].expression"),
        (10, "tools[0].conditions[2].expression"),
    ]
    assert found[0].message.startswith("unknown function 'lowerAscii' at column 14")
    assert found[1].message.startswith("invalid regular expression at column 22: missing )")
    assert "invalid perl operator" in found[2].message


def test_every_kind_of_problem_is_reported_at_once_in_file_order() -> None:
    found = problems(
        """
        version: "1.0"
        metadata:
          name: a
          owner: me
        approval_workflows:
          - name: wf
            channels: [fax]
        tools:
          - name: bash
            conditions:
              - expression: "args.command.contains("
                action: allow
              - expression: "true"
                action: maybe
          - name: sh
            conditions:
              - expression: "args.x == 1"
                action: require_approval
                approval_workflow: ghost
        """
    )

    assert located(found) == [
        (4, "metadata.owner"),
        (7, "approval_workflows[0].channels[0]"),
        (11, "tools[0].conditions[0].expression"),
        (14, "tools[0].conditions[1].action"),
        (19, "tools[1].conditions[0].approval_workflow"),
    ]
    assert all(p.file == "policy.yaml" for p in found)
    assert str(PolicyError(found)).startswith("5 problems in policy:")


def test_a_shared_expression_compiled_once_still_reports_each_use() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: a
            conditions: [{expression: "1 +", action: allow}]
          - name: b
            conditions: [{expression: "1 +", action: allow}]
        """
    )

    assert located(found) == [
        (5, "tools[0].conditions[0].expression"),
        (7, "tools[1].conditions[0].expression"),
    ]


def test_spec_fields_load_into_the_model() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata:
          name: "Production Safeguards"
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
              - expression: "args.command.contains('deploy')"
                action: require_approval
                description: "Deploys need approval"
        """
    )

    (workflow,) = loaded.document.approval_workflows
    (tool,) = loaded.document.tools
    assert (workflow.timeout_seconds, workflow.required_approvals, workflow.async_approval) == (
        600,
        1,
        True,
    )
    assert tool.justification is JustificationMode.REQUIRED
    assert tool.conditions[0].action is Action.REQUIRE_APPROVAL
    assert loaded.document.metadata.tags == ("security", "production")


def test_load_policy_file_reads_utf8_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text('version: "1.0"\nmetadata: {name: "Café"}\nbogus: 1\n', encoding="utf-8")

    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)

    assert caught.value.problems[0].file == str(path)
    assert caught.value.problems[0].line == 3


def test_load_policy_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_file(tmp_path / "missing.yaml")

    assert caught.value.problems[0].message.startswith("cannot read policy file")


def test_unsupported_yaml_tags_are_problems() -> None:
    found = problems(
        """
        version: "1.0"
        metadata:
          name: !!python/object:os.system echo
        """
    )

    assert located(found) == [(3, "metadata.name")]
    assert found[0].message.startswith("unsupported YAML value")
