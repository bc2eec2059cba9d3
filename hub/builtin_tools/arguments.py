"""Each built-in tool's arguments, decoded into a frozen Struct; bad ones are refused with a
message naming the argument (``decode``). The shapes mirror definitions.py, whose JSON Schemas
agents see; a test checks the two agree on every name and required field."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from hub.builtin_tools.names import (
    ADD_COMMENT,
    CREATE_ISSUE,
    CREATE_PULL_REQUEST,
    ESTIMATE_COMPLIANCE,
    GET_ISSUE,
    GET_PULL_REQUEST,
    IMPROVE_COMPLIANCE,
    SEARCH,
    UPDATE_COMMENT,
    UPDATE_ISSUE,
    UPDATE_PULL_REQUEST,
)
from hub.builtin_tools.results import BuiltinToolError

Text = Annotated[str, msgspec.Meta(min_length=1)]
Side = Literal["LEFT", "RIGHT"]


class _Args(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class GetIssue(_Args, frozen=True, kw_only=True):
    issue: Text
    refresh: bool = False


class CreateIssue(_Args, frozen=True, kw_only=True):
    project: Text
    title: Text
    description: str
    labels: tuple[str, ...] = ()
    assignee: str | None = None
    priority: str | None = None
    status: str | None = None
    force: bool = False  # create even when possible duplicates exist (decision 0106)


class UpdateIssue(_Args, frozen=True, kw_only=True):
    issue: Text
    title: Text | None = None
    description: str | None = None
    status: Text | None = None
    priority: str | None = None
    assignee: str | None = None
    labels: tuple[str, ...] | None = None


class Search(_Args, frozen=True, kw_only=True):
    query: Text
    project: Text | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    # None: hybrid when the query has words, else fulltext (docs/decisions/0101)
    search_type: Literal["fulltext", "similarity", "hybrid"] | None = None


class Compliance(_Args, frozen=True, kw_only=True):
    issues: Annotated[tuple[Text, ...], msgspec.Meta(min_length=1, max_length=50)]
    compliance_metric: Literal["DoR", "INVEST", "Risk"] = "DoR"


class AddComment(_Args, frozen=True, kw_only=True):
    target: Text
    comment: Text
    path: Text | None = None
    line: Annotated[int, msgspec.Meta(ge=1)] | None = None
    side: Side = "RIGHT"
    in_reply_to: Text | None = None


class UpdateComment(_Args, frozen=True, kw_only=True):
    target: Text
    comment_id: Text
    body: str | None = None
    resolved: bool | None = None
    thread_id: Text | None = None
    comment_type: Literal["review_comment", "issue_comment"] = "issue_comment"


class GetPullRequest(_Args, frozen=True, kw_only=True):
    pull_request: Text
    include_comments: bool = True
    include_diff: bool = True
    refresh: bool = False


class ReviewLine(_Args, frozen=True, kw_only=True):
    path: Text
    line: Annotated[int, msgspec.Meta(ge=1)]
    body: Text
    side: Side = "RIGHT"


class UpdatePullRequest(_Args, frozen=True, kw_only=True):
    pull_request: Text
    title: Text | None = None
    description: str | None = None
    state: Literal["open", "closed"] | None = None
    labels: tuple[str, ...] | None = None
    assignees: tuple[str, ...] | None = None
    reviewers: tuple[str, ...] | None = None
    draft: bool | None = None
    review_action: Literal["approve", "request_changes", "comment"] | None = None
    review_body: str | None = None
    review_comments: tuple[ReviewLine, ...] = ()
    add_reaction: Text | None = None
    remove_reaction: Text | None = None


class CreatePullRequest(_Args, frozen=True, kw_only=True):
    project: Text
    title: Text
    source_branch: Text
    target_branch: Text
    description: str = ""
    draft: bool = False
    assignees: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    milestone: str | None = None
    extra_options: dict[str, Any] = {}


ARGUMENTS: dict[str, type[_Args]] = {
    GET_ISSUE: GetIssue,
    CREATE_ISSUE: CreateIssue,
    UPDATE_ISSUE: UpdateIssue,
    SEARCH: Search,
    ESTIMATE_COMPLIANCE: Compliance,
    IMPROVE_COMPLIANCE: Compliance,
    ADD_COMMENT: AddComment,
    UPDATE_COMMENT: UpdateComment,
    GET_PULL_REQUEST: GetPullRequest,
    UPDATE_PULL_REQUEST: UpdatePullRequest,
    CREATE_PULL_REQUEST: CreatePullRequest,
}

A = TypeVar("A", bound=_Args)


class BuiltinArgumentsError(BuiltinToolError):
    """A built-in tool's arguments do not fit its schema; ``message`` names the argument."""

    title = "Bad arguments"


_AT = re.compile(r"^(?P<what>.*) - at `\$\.(?P<where>[^`]+)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`")


def decode(tool: str, arguments: dict[str, Any]) -> _Args:
    """``arguments`` as ``tool``'s Struct; ``BuiltinArgumentsError`` naming what is wrong."""
    kind = ARGUMENTS[tool]
    try:
        return msgspec.convert(arguments, kind)
    except msgspec.ValidationError as exc:
        raise BuiltinArgumentsError(_explained(str(exc), kind)) from exc


def _explained(message: str, kind: type[_Args]) -> str:
    where = ""
    found = _AT.match(message)
    if found is not None:
        message, where = found["what"], found["where"]
    if (missing := _MISSING.match(message)) is not None:
        name = f"{where}.{missing['name']}" if where else missing["name"]
        return f"the argument {name!r} is required"
    if (unknown := _UNKNOWN.match(message)) is not None:
        name = f"{where}.{unknown['name']}" if where else unknown["name"]
        known = ", ".join(kind.__struct_fields__)
        return f"unknown argument {name!r} (its arguments: {known})"
    if where:
        return f"the argument {where!r}: {message}"
    return message
