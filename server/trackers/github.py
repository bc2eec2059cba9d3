"""GitHub's REST API (api.github.com, and GitHub Enterprise Server at ``https://HOST/api/v3``)
as a ``TrackerClient``.

- Auth: ``Authorization: Bearer TOKEN`` (a fine-grained or classic personal access token, or
  an installation token), ``X-GitHub-Api-Version: 2022-11-28``.
- Sync: ``GET /repos/{o}/{r}/issues?state=all&since=…&sort=updated&direction=asc&per_page=100``;
  the page token is the ``Link`` header's ``next`` URL (same host only); the first page is
  sent with ``If-None-Match`` and a 304 answers ``not_modified``. Rows with a
  ``pull_request`` key are pull requests.
- Ids: a pull request's ``external_id`` is its *issue* id (what the issue list answers), so a
  pull request synced from the list and one answered by ``get_pull_request`` are one record.
- Not over REST (GraphQL only): resolving a review thread and toggling a pull request's draft
  state raise ``TrackerError``. GitHub has no issue priority: ``priority`` is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from hub.errors import TrackerError
from hub.trackers.records import (
    IssueChanges,
    IssueDraft,
    IssueKind,
    IssuePage,
    ProjectInfo,
    PullRequestChanges,
    PullRequestDraft,
    RemoteComment,
    RemoteIssue,
    RemotePullRequest,
    TrackerKind,
)
from server.trackers import _github_wire as wire
from server.trackers._http import RetryPolicy, TrackerHttp

API_VERSION = "2022-11-28"
PER_PAGE = 100
REVIEW_EVENTS = {"approve": "APPROVE", "request_changes": "REQUEST_CHANGES", "comment": "COMMENT"}


def api_root(base_url: str) -> str:
    """The REST root for a base URL: ``https://github.com`` means ``https://api.github.com``;
    anything else is taken as given (GitHub Enterprise Server: ``https://HOST/api/v3``)."""
    base = base_url.rstrip("/")
    if urlsplit(base).netloc == "github.com":
        return "https://api.github.com"
    return base


class GitHubClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        token_ref: str,
        retry: RetryPolicy | None = None,
        timeout: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
        per_page: int = PER_PAGE,
    ) -> None:
        self._http = TrackerHttp(
            kind=TrackerKind.GITHUB,
            base_url=api_root(base_url),
            auth_headers={"Authorization": f"Bearer {token}"},
            token_ref=token_ref,
            secrets=(token,),
            timeout=timeout,
            retry=retry or RetryPolicy(),
            transport=transport,
            extra_headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
        )
        self._per_page = per_page
        self._kinds: dict[tuple[str, str], IssueKind] = {}  # what the lists told us
        self._login: str | None = None

    @property
    def kind(self) -> TrackerKind:
        return TrackerKind.GITHUB

    async def close(self) -> None:
        await self._http.close()

    # --- reads -----------------------------------------------------------------------------
    async def test_connection(self, project: str) -> ProjectInfo:
        repo = await self._http.json("GET", wire.repo_path(project), project, what="repository")
        return ProjectInfo(
            project=repo.get("full_name") or project,
            name=repo.get("name") or project,
            url=repo.get("html_url") or "",
            description=repo.get("description") or "",
            default_branch=repo.get("default_branch"),
        )

    async def issues_since(
        self,
        project: str,
        since: datetime | None,
        *,
        page: str | None = None,
        etag: str | None = None,
    ) -> IssuePage:
        if page is not None:
            response = await self._http.request("GET", page, project=project)
        else:
            params: dict[str, Any] = {
                "state": "all",
                "sort": "updated",
                "direction": "asc",
                "per_page": self._per_page,
            }
            if since is not None:
                params["since"] = wire.iso(since)
            headers = {"If-None-Match": etag} if etag else None
            response = await self._http.request(
                "GET",
                f"{wire.repo_path(project)}/issues",
                project=project,
                what="repository",
                params=params,
                headers=headers,
            )
        if response.status_code == 304:
            return IssuePage(not_modified=True, etag=etag)
        items = tuple(self._remember(project, wire.issue_of(row)) for row in response.json())
        return IssuePage(
            items=items,
            next_page=response.links.get("next", {}).get("url"),
            etag=response.headers.get("etag") if page is None else None,
        )

    async def get_issue(self, project: str, number: str) -> RemoteIssue:
        row = await self._http.json(
            "GET",
            f"{wire.repo_path(project)}/issues/{wire.number_of(number)}",
            project,
            what=f"issue #{number}",
        )
        return self._remember(project, wire.issue_of(row))

    async def comments(self, project: str, number: str) -> Sequence[RemoteComment]:
        kind = self._kinds.get((project, number))
        if kind is None:
            kind = (await self.get_issue(project, number)).kind
        rows = await self._all(
            f"{wire.repo_path(project)}/issues/{wire.number_of(number)}/comments", project, number
        )
        found = [wire.comment_of(row) for row in rows]
        if kind is IssueKind.PULL_REQUEST:
            reviews = await self._all(
                f"{wire.repo_path(project)}/pulls/{wire.number_of(number)}/comments",
                project,
                number,
            )
            found += [wire.review_comment_of(row) for row in reviews]
        return sorted(found, key=lambda c: (c.created_at, c.external_id))

    async def get_pull_request(
        self, project: str, number: str, *, include_comments: bool = True, include_diff: bool = True
    ) -> RemotePullRequest:
        issue = await self._pull_issue(project, number)
        comments = await self.comments(project, number) if include_comments else ()
        diff = None
        if include_diff:
            response = await self._http.request(
                "GET",
                f"{wire.repo_path(project)}/pulls/{wire.number_of(number)}",
                project=project,
                what=f"pull request #{number}",
                headers={"Accept": "application/vnd.github.diff"},
            )
            diff = response.text
        return RemotePullRequest(pull_request=issue, comments=tuple(comments), diff=diff)

    # --- issue writes ----------------------------------------------------------------------
    async def create_issue(self, project: str, draft: IssueDraft) -> RemoteIssue:
        state = wire.state_of(draft.status, project) if draft.status else "open"
        body: dict[str, Any] = {"title": draft.title, "body": draft.description}
        if draft.labels:
            body["labels"] = list(draft.labels)
        if draft.assignee:
            body["assignees"] = [draft.assignee]
        row = await self._http.json("POST", f"{wire.repo_path(project)}/issues", project, json=body)
        issue = self._remember(project, wire.issue_of(row))
        if state != "open":
            return await self.update_issue(project, issue.number, IssueChanges(status=state))
        return issue

    async def update_issue(self, project: str, number: str, changes: IssueChanges) -> RemoteIssue:
        body = wire.issue_patch(changes, project)
        row = await self._http.json(
            "PATCH",
            f"{wire.repo_path(project)}/issues/{wire.number_of(number)}",
            project,
            what=f"issue #{number}",
            json=body,
        )
        return self._remember(project, wire.issue_of(row))

    async def add_comment(
        self,
        project: str,
        number: str,
        body: str,
        *,
        path: str | None = None,
        line: int | None = None,
        side: str = "RIGHT",
        in_reply_to: str | None = None,
    ) -> RemoteComment:
        n = wire.number_of(number)
        if in_reply_to is not None:
            row = await self._http.json(
                "POST",
                f"{wire.repo_path(project)}/pulls/{n}/comments",
                project,
                what=f"pull request #{number}",
                json={"body": body, "in_reply_to": int(in_reply_to)},
            )
            return wire.review_comment_of(row)
        if path is not None and line is not None:
            pull = await self._http.json(
                "GET",
                f"{wire.repo_path(project)}/pulls/{n}",
                project,
                what=f"pull request #{number}",
            )
            row = await self._http.json(
                "POST",
                f"{wire.repo_path(project)}/pulls/{n}/comments",
                project,
                what=f"pull request #{number}",
                json={
                    "body": body,
                    "commit_id": pull["head"]["sha"],
                    "path": path,
                    "line": line,
                    "side": side.upper(),
                },
            )
            return wire.review_comment_of(row)
        row = await self._http.json(
            "POST",
            f"{wire.repo_path(project)}/issues/{n}/comments",
            project,
            what=f"issue #{number}",
            json={"body": body},
        )
        return wire.comment_of(row)

    async def update_comment(
        self,
        project: str,
        number: str,
        comment_id: str,
        *,
        body: str | None = None,
        resolved: bool | None = None,
        thread_id: str | None = None,
        comment_type: str = "issue_comment",
    ) -> RemoteComment:
        if resolved is not None:
            raise TrackerError(
                f"GitHub at {self._http.host} cannot resolve review threads over its REST API "
                f"(project {project}); resolve the thread on GitHub",
                tracker="github",
                project=project,
            )
        review = comment_type == "review_comment"
        where = "pulls" if review else "issues"
        row = await self._http.json(
            "GET" if body is None else "PATCH",
            f"{wire.repo_path(project)}/{where}/comments/{wire.number_of(comment_id)}",
            project,
            what=f"comment {comment_id}",
            json=None if body is None else {"body": body},
        )
        return wire.review_comment_of(row) if review else wire.comment_of(row)

    # --- pull request writes ---------------------------------------------------------------
    async def create_pull_request(self, project: str, draft: PullRequestDraft) -> RemoteIssue:
        body: dict[str, Any] = {
            "title": draft.title,
            "head": draft.source_branch,
            "base": draft.target_branch,
            "body": draft.description,
            "draft": draft.draft,
        }
        for name in ("maintainer_can_modify", "head_repo"):
            if name in draft.extra_options:
                body[name] = draft.extra_options[name]
        row = await self._http.json("POST", f"{wire.repo_path(project)}/pulls", project, json=body)
        number = str(row["number"])
        patch: dict[str, Any] = {}
        if draft.labels:
            patch["labels"] = list(draft.labels)
        if draft.assignees:
            patch["assignees"] = list(draft.assignees)
        if draft.milestone is not None and draft.milestone.isdigit():
            patch["milestone"] = int(draft.milestone)
        if patch:
            await self._http.json(
                "PATCH", f"{wire.repo_path(project)}/issues/{number}", project, json=patch
            )
        if draft.reviewers:
            await self._request_reviewers(project, number, draft.reviewers)
        return await self._pull_issue(project, number)

    async def update_pull_request(
        self, project: str, number: str, changes: PullRequestChanges
    ) -> RemoteIssue:
        n = wire.number_of(number)
        if changes.draft is not None:
            raise TrackerError(
                f"GitHub at {self._http.host} cannot change a pull request's draft state over "
                f"its REST API (project {project}, #{number}); change it on GitHub",
                tracker="github",
                project=project,
            )
        what = f"pull request #{number}"
        pull: dict[str, Any] = {}
        if changes.title is not None:
            pull["title"] = changes.title
        if changes.description is not None:
            pull["body"] = changes.description
        if changes.state is not None:
            pull["state"] = wire.state_of(changes.state, project)
        if pull:
            await self._http.json(
                "PATCH", f"{wire.repo_path(project)}/pulls/{n}", project, what=what, json=pull
            )
        issue: dict[str, Any] = {}
        if changes.labels is not None:
            issue["labels"] = list(changes.labels)
        if changes.assignees is not None:
            issue["assignees"] = list(changes.assignees)
        if issue:
            await self._http.json(
                "PATCH", f"{wire.repo_path(project)}/issues/{n}", project, what=what, json=issue
            )
        if changes.reviewers:
            await self._request_reviewers(project, number, changes.reviewers)
        if changes.review_action is not None or changes.review_comments:
            await self._review(project, number, changes)
        if changes.add_reaction:
            await self._http.json(
                "POST",
                f"{wire.repo_path(project)}/issues/{n}/reactions",
                project,
                what=what,
                json={"content": changes.add_reaction},
            )
        if changes.remove_reaction:
            await self._remove_reaction(project, n, changes.remove_reaction)
        return await self._pull_issue(project, number)

    async def _review(self, project: str, number: str, changes: PullRequestChanges) -> None:
        action = (changes.review_action or "comment").lower()
        event = REVIEW_EVENTS.get(action)
        if event is None:
            raise TrackerError(
                f"GitHub at {self._http.host}: review_action {changes.review_action!r} is not "
                "one of approve, request_changes, comment",
                tracker="github",
                project=project,
                status=422,
            )
        body: dict[str, Any] = {"event": event}
        if changes.review_body:
            body["body"] = changes.review_body
        if changes.review_comments:
            body["comments"] = [
                {"path": c.path, "line": c.line, "side": c.side.upper(), "body": c.body}
                for c in changes.review_comments
            ]
        await self._http.json(
            "POST",
            f"{wire.repo_path(project)}/pulls/{wire.number_of(number)}/reviews",
            project,
            what=f"pull request #{number}",
            json=body,
        )

    async def _request_reviewers(self, project: str, number: str, reviewers: Sequence[str]) -> None:
        await self._http.json(
            "POST",
            f"{wire.repo_path(project)}/pulls/{wire.number_of(number)}/requested_reviewers",
            project,
            what=f"pull request #{number}",
            json={"reviewers": list(reviewers)},
        )

    async def _remove_reaction(self, project: str, n: int, content: str) -> None:
        if self._login is None:
            self._login = str((await self._http.json("GET", "/user", project)).get("login", ""))
        rows = await self._http.json(
            "GET",
            f"{wire.repo_path(project)}/issues/{n}/reactions",
            project,
            params={"content": content},
        )
        for row in rows:
            if row.get("content") == content and (row.get("user") or {}).get("login") == (
                self._login
            ):
                await self._http.request(
                    "DELETE",
                    f"{wire.repo_path(project)}/issues/{n}/reactions/{row['id']}",
                    project=project,
                )

    async def _pull_issue(self, project: str, number: str) -> RemoteIssue:
        """The pull request as an issue (its issue id, labels, assignees) with the pull
        request's own fields in ``extra``."""
        n = wire.number_of(number)
        what = f"pull request #{number}"
        pull = await self._http.json(
            "GET", f"{wire.repo_path(project)}/pulls/{n}", project, what=what
        )
        row = await self._http.json(
            "GET", f"{wire.repo_path(project)}/issues/{n}", project, what=what
        )
        issue = wire.issue_of(row)
        state = "merged" if pull.get("merged") else issue.state
        extra = {
            "source_branch": (pull.get("head") or {}).get("ref"),
            "target_branch": (pull.get("base") or {}).get("ref"),
            "head_sha": (pull.get("head") or {}).get("sha"),
            "draft": bool(pull.get("draft")),
            "merged": bool(pull.get("merged")),
            "mergeable": pull.get("mergeable"),
            "reviewers": [r["login"] for r in pull.get("requested_reviewers") or []],
        }
        return self._remember(
            project,
            RemoteIssue(
                **{
                    **wire.fields_of(issue),
                    "kind": IssueKind.PULL_REQUEST,
                    "state": state,
                    "extra": extra,
                }
            ),
        )

    # --- HTTP helpers ----------------------------------------------------------------------
    async def _all(self, url: str, project: str, number: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        next_url: str | None = url
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        while next_url is not None:
            response = await self._http.request(
                "GET", next_url, project=project, what=f"#{number}", params=params
            )
            rows += response.json()
            next_url, params = response.links.get("next", {}).get("url"), None
        return rows

    def _remember(self, project: str, issue: RemoteIssue) -> RemoteIssue:
        self._kinds[(project, issue.number)] = issue.kind
        return issue
