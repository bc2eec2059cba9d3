"""Per-key tool allow-lists: glob matching over exposed names, and pattern validation."""

from __future__ import annotations

import pytest

from hub.allowlist import ALWAYS_ALLOWED, MAX_PATTERNS, check_patterns, key_allows, matches
from hub.auditing import Auditor
from hub.clock import FrozenClock
from hub.errors import ValidationError
from hub.identity import IdentityService
from hub.keys import Caller
from hub.memory import InMemoryStorage
from hub.records import Role
from hub.tool_calls import STATUS_TOOL


def caller(*tools: str) -> Caller:
    return Caller(key_id="k1", account_id="acct_1", role=Role.AGENT, tools=tools)


@pytest.mark.parametrize(
    ("patterns", "name", "expected"),
    [
        ((), "github__anything", True),  # no list: every tool
        (("github__*",), "github__create_issue", True),
        (("github__*",), "githubx__create_issue", False),
        (("github__*",), "gitlab__create_issue", False),
        (("db__query",), "db__query", True),
        (("db__query",), "db__query_all", False),
        (("db__query",), "DB__query", False),  # case-sensitive, like tool names
        (("*__read_*",), "files__read_file", True),
        (("*__read_*",), "files__write_file", False),
        (("db__quer?",), "db__query", True),
        (("db__quer?",), "db__quer", False),
        (("db__[ab]",), "db__a", False),  # brackets are literal, not a character class
        (("db__[ab]",), "db__[ab]", True),
        (("a.b__c",), "axb__c", False),  # a dot is a dot
        (("github__*", "db__query"), "db__query", True),
        (("github__*", "db__query"), "db__drop", False),
        (("*",), "anything__at_all", True),
    ],
)
def test_patterns_match_exposed_names(patterns: tuple[str, ...], name: str, expected: bool) -> None:
    assert expected == matches(patterns, name)


def test_the_status_tool_is_always_allowed() -> None:
    assert STATUS_TOOL in ALWAYS_ALLOWED
    assert key_allows(caller("db__query"), STATUS_TOOL)
    assert key_allows(caller("db__query"), "db__query")
    assert not key_allows(caller("db__query"), "db__drop")
    assert key_allows(caller(), "db__drop")


def test_check_patterns_keeps_order_and_drops_duplicates() -> None:
    assert ("github__*", "db__query") == check_patterns(["github__*", "db__query", "github__*"])
    assert () == check_patterns([])


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "non-empty"),
        ("github", "did you mean 'github__*'"),
        ("db__ query", "whitespace"),
        ("db__\x00", "control character"),
        ("x" * 201 + "__*", "longer than 200"),
    ],
)
def test_bad_patterns_are_refused_with_a_reason(pattern: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("*", r"\*")):
        check_patterns([pattern])


def test_too_many_patterns_are_refused() -> None:
    with pytest.raises(ValidationError, match=f"at most {MAX_PATTERNS}"):
        check_patterns([f"s{i}__*" for i in range(MAX_PATTERNS + 1)])


async def test_a_created_key_authenticates_with_its_allow_list() -> None:
    storage, clock = InMemoryStorage(), FrozenClock()
    auditor = Auditor(storage.audit, clock)
    identity = IdentityService(storage, clock, auditor)
    account = await identity.default_account()
    created = await identity.create_key(
        account.id, name="ci", role=Role.AGENT, actor="test", tools=["github__*", "db__query"]
    )
    plain = await identity.create_key(account.id, name="all", role=Role.AGENT, actor="test")

    assert ("github__*", "db__query") == created.key.tools
    assert ("github__*", "db__query") == (await identity.authenticate(created.secret)).tools
    assert () == (await identity.authenticate(plain.secret)).tools
    with pytest.raises(ValidationError, match="did you mean"):
        await identity.create_key(
            account.id, name="bad", role=Role.AGENT, actor="test", tools=["github"]
        )
    events = await auditor.export(account.id)
    assert [["github__*", "db__query"], None] == [e.data.get("tools") for e in events]
