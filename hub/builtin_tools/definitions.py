"""The MCP definitions of the 11 built-in tools: names and arguments as upstream Preloop has
them (so prompts written for it work unchanged), JSON Schemas with their required fields and
enums, a title and description each, and MCP annotations.

Annotations: ``readOnlyHint`` on the four that only read (get_issue, search,
estimate_compliance, get_pull_request). The others write to the tracker and say
``readOnlyHint: false, destructiveHint: false`` (none deletes anything: closing an issue can be
undone); ``idempotentHint`` where repeating the same call changes nothing more (update_issue,
update_comment, improve_compliance); ``openWorldHint`` on all (they read or write an external
tracker). ``improve_compliance`` only proposes a description, writing it is ``update_issue``'s
job; like upstream it is not marked read-only.

The snapshots in tests/unit/builtin_tools/toolsnaps/ hold each definition as served: a change
here fails that test until the snapshots are regenerated on purpose
(``PRELOOP_UPDATE_TOOLSNAPS=1``).
"""

from __future__ import annotations

from typing import Any

from hub.builtin_tools.names import (
    ADD_COMMENT,
    BUILTIN_TOOL_NAMES,
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

Schema = dict[str, Any]

_ISSUE_REF = (
    "The issue: its URL, its key (owner/repo#12 on GitHub, group/project#12 on GitLab, "
    "PROJ-12 on Jira) or Preloop's issue id."
)
_PR_REF = (
    "The pull or merge request: its URL, its key (owner/repo#7 on GitHub, group/project!7 on "
    "GitLab) or Preloop's issue id."
)
_PROJECT = (
    "The tracker's project: owner/repo (GitHub), group/project (GitLab) or the project key "
    "(Jira), as the connected tracker syncs it."
)
_REFRESH = {
    "type": "boolean",
    "default": False,
    "description": "Read live from the tracker (and update Preloop's index) instead of "
    "answering from the synced index.",
}


def _string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _strings(description: str) -> Schema:
    return {"type": "array", "items": {"type": "string"}, "description": description}


def _object(properties: dict[str, Schema], required: list[str]) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _annotations(title: str, *, read_only: bool, idempotent: bool = False) -> dict[str, Any]:
    if read_only:
        return {"title": title, "readOnlyHint": True, "openWorldHint": True}
    return {
        "title": title,
        "readOnlyHint": False,
        "destructiveHint": False,
        "idempotentHint": idempotent,
        "openWorldHint": True,
    }


def _tool(
    name: str,
    title: str,
    description: str,
    schema: Schema,
    *,
    read_only: bool,
    idempotent: bool = False,
) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "description": description,
        "inputSchema": schema,
        "annotations": _annotations(title, read_only=read_only, idempotent=idempotent),
    }


_METRIC = _string(
    "The compliance metric to check against: DoR (Definition of Ready), INVEST (independent, "
    "negotiable, valuable, estimable, small, testable) or Risk (1.0 is low risk: risky work "
    "named and mitigated).",
    enum=["DoR", "INVEST", "Risk"],
    default="DoR",
)
_ISSUES = {
    "type": "array",
    "items": {"type": "string"},
    "minItems": 1,
    "description": "The issues to check: URLs, keys (owner/repo#12, PROJ-12) or Preloop ids.",
}

DEFINITIONS: tuple[dict[str, Any], ...] = (
    _tool(
        GET_ISSUE,
        "Get an issue",
        "Preloop: an issue (or pull/merge request) with its comments, from the synced index "
        "of the connected trackers (refresh: true reads it live).",
        _object({"issue": _string(_ISSUE_REF), "refresh": _REFRESH}, ["issue"]),
        read_only=True,
    ),
    _tool(
        CREATE_ISSUE,
        "Create an issue",
        "Preloop: create an issue in the tracker of a project; it is indexed at once. It first "
        "looks for synced issues of the project that the new one may duplicate: when there "
        "are some it creates nothing and answers them (created: false); call again with "
        "force: true to create it anyway.",
        _object(
            {
                "project": _string(_PROJECT),
                "title": _string("The issue's title."),
                "description": _string("The issue's description (Markdown)."),
                "labels": _strings("Labels to set."),
                "assignee": _string("Who to assign (the tracker's user name or account id)."),
                "priority": _string("The priority (Jira's priority name; a label elsewhere)."),
                "status": _string("The initial status, where the tracker allows one."),
                "force": {
                    "type": "boolean",
                    "default": False,
                    "description": "Create the issue even when synced issues of the project "
                    "look like duplicates of it (skips the duplicate check).",
                },
            },
            ["project", "title", "description"],
        ),
        read_only=False,
    ),
    _tool(
        UPDATE_ISSUE,
        "Update an issue",
        "Preloop: change an issue's title, description, status, priority, assignee or labels "
        "in its tracker; fields left out stay as they are.",
        _object(
            {
                "issue": _string(_ISSUE_REF),
                "title": _string("The new title."),
                "description": _string("The new description (Markdown)."),
                "status": _string("open or closed (GitHub, GitLab), a status name (Jira)."),
                "priority": _string("The new priority."),
                "assignee": _string("Who to assign."),
                "labels": _strings("The labels the issue should have (replaces them)."),
            },
            ["issue"],
        ),
        read_only=False,
        idempotent=True,
    ),
    _tool(
        SEARCH,
        "Search issues",
        "Preloop: search the synced issues and pull/merge requests of the connected trackers "
        "by words (fulltext), by meaning (similarity: embeddings) or both fused (hybrid, the "
        "default). The answer names the search type, engine and embedding model, scores each "
        "result, and says how many issues are not embedded yet (pending).",
        _object(
            {
                "query": _string("What to look for: words, or a sentence describing the issue."),
                "project": _string(_PROJECT),
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100,
                    "default": 10,
                    "description": "How many results at most.",
                },
                "search_type": _string(
                    "fulltext: issues containing the query's words; similarity: issues "
                    "nearest the query's meaning; hybrid: both, fused by rank (the default "
                    "when the query has words).",
                    enum=["fulltext", "similarity", "hybrid"],
                    default="hybrid",
                ),
            },
            ["query"],
        ),
        read_only=True,
    ),
    _tool(
        ESTIMATE_COMPLIANCE,
        "Estimate compliance",
        "Preloop: how well issues meet a compliance metric (Definition of Ready, INVEST or "
        "Risk): a factor from 0 to 1, the reason, a suggestion and an annotated description "
        "for each. Scored by a model through Preloop's gateway when one is configured, else "
        "by rules; each answer names its engine.",
        _object({"issues": _ISSUES, "compliance_metric": _METRIC}, ["issues"]),
        read_only=True,
    ),
    _tool(
        IMPROVE_COMPLIANCE,
        "Improve compliance",
        "Preloop: for each issue, what it lacks to meet a compliance metric (Definition of "
        "Ready, INVEST or Risk) and a proposed description that adds it. Nothing is written: "
        "apply a proposal with update_issue.",
        _object({"issues": _ISSUES, "compliance_metric": _METRIC}, ["issues"]),
        read_only=False,
        idempotent=True,
    ),
    _tool(
        ADD_COMMENT,
        "Add a comment",
        "Preloop: comment on an issue or pull/merge request; with path and line, a review "
        "comment on that line of the diff.",
        _object(
            {
                "target": _string(_ISSUE_REF),
                "comment": _string("The comment (Markdown)."),
                "path": _string("A review comment: the file's path in the diff."),
                "line": {"type": "integer", "minimum": 1, "description": "The line in the diff."},
                "side": _string(
                    "The side of the diff the line is on.", enum=["LEFT", "RIGHT"], default="RIGHT"
                ),
                "in_reply_to": _string("The id of the comment (or thread) this one answers."),
            },
            ["target", "comment"],
        ),
        read_only=False,
    ),
    _tool(
        UPDATE_COMMENT,
        "Update a comment",
        "Preloop: edit a comment, or resolve a review thread (GitHub and GitLab).",
        _object(
            {
                "target": _string(_ISSUE_REF),
                "comment_id": _string("The tracker's id of the comment."),
                "body": _string("The new text."),
                "resolved": {
                    "type": "boolean",
                    "description": "Resolve (true) or reopen (false) the review thread.",
                },
                "thread_id": _string("The review thread (GitLab discussion id)."),
                "comment_type": _string(
                    "Which kind of comment it is.",
                    enum=["review_comment", "issue_comment"],
                    default="issue_comment",
                ),
            },
            ["target", "comment_id"],
        ),
        read_only=False,
        idempotent=True,
    ),
    _tool(
        GET_PULL_REQUEST,
        "Get a pull request",
        "Preloop: a pull request (GitHub) or merge request (GitLab) with its comments and "
        "diff. Without the diff and without refresh it answers from the synced index; the "
        "diff is read live.",
        _object(
            {
                "pull_request": _string(_PR_REF),
                "include_comments": {
                    "type": "boolean",
                    "default": True,
                    "description": "Include conversation and review comments.",
                },
                "include_diff": {
                    "type": "boolean",
                    "default": True,
                    "description": "Include the unified diff (read live).",
                },
                "refresh": _REFRESH,
            },
            ["pull_request"],
        ),
        read_only=True,
    ),
    _tool(
        UPDATE_PULL_REQUEST,
        "Update a pull request",
        "Preloop: change a pull/merge request (title, description, state, labels, assignees, "
        "reviewers, draft), review it (approve, request changes, comment) or react to it.",
        _object(
            {
                "pull_request": _string(_PR_REF),
                "title": _string("The new title."),
                "description": _string("The new description (Markdown)."),
                "state": _string("Open or close it.", enum=["open", "closed"]),
                "labels": _strings("The labels it should have (replaces them)."),
                "assignees": _strings("Who it should be assigned to (replaces them)."),
                "reviewers": _strings("Reviewers to request."),
                "draft": {"type": "boolean", "description": "Mark as draft (or ready)."},
                "review_action": _string(
                    "Submit a review.", enum=["approve", "request_changes", "comment"]
                ),
                "review_body": _string("The review's text."),
                "review_comments": {
                    "type": "array",
                    "description": "Line comments of the review.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "path": _string("The file's path in the diff."),
                            "line": {"type": "integer", "minimum": 1},
                            "body": _string("The comment."),
                            "side": _string(
                                "The side of the diff.", enum=["LEFT", "RIGHT"], default="RIGHT"
                            ),
                        },
                        "required": ["path", "line", "body"],
                        "additionalProperties": False,
                    },
                },
                "add_reaction": _string("An emoji reaction to add (e.g. +1, rocket)."),
                "remove_reaction": _string("An emoji reaction to remove."),
            },
            ["pull_request"],
        ),
        read_only=False,
    ),
    _tool(
        CREATE_PULL_REQUEST,
        "Create a pull request",
        "Preloop: open a pull request (GitHub) or merge request (GitLab) from source_branch "
        "into target_branch; it is indexed at once.",
        _object(
            {
                "project": _string(_PROJECT),
                "title": _string("The title."),
                "source_branch": _string("The branch with the changes."),
                "target_branch": _string("The branch to merge into."),
                "description": _string("The description (Markdown)."),
                "draft": {"type": "boolean", "default": False, "description": "Open as draft."},
                "assignees": _strings("Who to assign."),
                "reviewers": _strings("Reviewers to request."),
                "labels": _strings("Labels to set."),
                "milestone": _string("The milestone (its title or id)."),
                "extra_options": {
                    "type": "object",
                    "description": "Tracker-specific options (GitLab: squash, "
                    "remove_source_branch, ...).",
                },
            },
            ["project", "title", "source_branch", "target_branch"],
        ),
        read_only=False,
    ),
)

BY_NAME: dict[str, dict[str, Any]] = {d["name"]: d for d in DEFINITIONS}
if tuple(BY_NAME) != BUILTIN_TOOL_NAMES:  # one definition per name, in upstream's order
    raise RuntimeError("the built-in tools' definitions and names differ")
