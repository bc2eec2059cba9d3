"""GitLab's REST API v4 (gitlab.com or self-managed at any base URL, also under a path prefix
such as ``https://host/gitlab``) as a ``TrackerClient``.

- Auth: ``PRIVATE-TOKEN: TOKEN`` (a personal, group or project access token).
- Projects by their URL-encoded full path (``group%2Fsub%2Fproject``).
- Sync: issues, then merge requests, each ``updated_after=…&order_by=updated_at&sort=asc``,
  ``per_page`` and ``page``; the page token carries the stream and its page
  (``issues:3``, ``merge_requests:1``), so one token resumes either.
- Numbers: issues and merge requests count separately (issue #12 and merge request !12 are
  different things), so a merge request's ``number`` is ``!12`` and an issue's ``12``; every
  method also takes ``!12`` to mean the merge request (decision 0086). The pull-request
  methods take ``12`` or ``!12``.
- States: opened → open, closed, merged (locked → closed). Comments are notes (system notes
  left out); diff comments and replies are discussions, ``resolved`` resolves a discussion.
- Reviews: approve / unapprove; ``request_changes`` unapproves and leaves the review body as a
  note. Draft is the title's ``Draft:`` prefix. Reactions are award emoji (GitHub's names
  ``+1``, ``-1``, ``laugh``, ``hooray`` map to GitLab's).
- GitLab issues have no priority: ``priority`` is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from hub.errors import TrackerError
from hub.trackers.records import (
    IssueChanges,
    IssueDraft,
    IssuePage,
    ProjectInfo,
    PullRequestChanges,
    PullRequestDraft,
    RemoteComment,
    RemoteIssue,
    RemotePullRequest,
    TrackerKind,
)
from server.trackers import _gitlab_wire as wire
from server.trackers._http import RetryPolicy, TrackerHttp

PER_PAGE = 100
DRAFT = "Draft: "
MR_OPTIONS = (
    "squash",
    "remove_source_branch",
    "allow_collaboration",
    "milestone_id",
    "target_project_id",
    "merge_after",
)


def api_root(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/api/v4") else f"{base}/api/v4"


class GitLabClient:
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
            kind=TrackerKind.GITLAB,
            base_url=api_root(base_url),
            auth_headers={"PRIVATE-TOKEN": token},
            token_ref=token_ref,
            secrets=(token,),
            timeout=timeout,
            retry=retry or RetryPolicy(),
            transport=transport,
        )
        self._per_page = per_page
        self._user_ids: dict[str, int] = {}
        self._login: str | None = None

    @property
    def kind(self) -> TrackerKind:
        return TrackerKind.GITLAB

    async def close(self) -> None:
        await self._http.close()

    # --- reads -----------------------------------------------------------------------------
    async def test_connection(self, project: str) -> ProjectInfo:
        row = await self._http.json("GET", wire.project_path(project), project, what="project")
        return ProjectInfo(
            project=row.get("path_with_namespace") or project,
            name=row.get("name") or project,
            url=row.get("web_url") or "",
            description=row.get("description") or "",
            default_branch=row.get("default_branch"),
        )

    async def issues_since(
        self,
        project: str,
        since: datetime | None,
        *,
        page: str | None = None,
        etag: str | None = None,
    ) -> IssuePage:
        stream, number = wire.parse_page(page, project)
        params: dict[str, Any] = {
            "order_by": "updated_at",
            "sort": "asc",
            "per_page": self._per_page,
            "page": number,
            "state": "all",
        }
        if since is not None:
            params["updated_after"] = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
        response = await self._http.request(
            "GET",
            f"{wire.project_path(project)}/{stream}",
            project=project,
            what="project",
            params=params,
        )
        mr = stream == "merge_requests"
        items = tuple(wire.issue_of(row, mr=mr) for row in response.json())
        following = response.headers.get("x-next-page", "").strip()
        if following:
            next_page: str | None = f"{stream}:{following}"
        elif stream == "issues":
            next_page = "merge_requests:1"
        else:
            next_page = None
        return IssuePage(items=items, next_page=next_page)

    async def get_issue(self, project: str, number: str) -> RemoteIssue:
        mr, iid = wire.parse_number(number)
        row = await self._http.json(
            "GET", wire.item_path(project, mr, iid), project, what=wire.describe(mr, iid)
        )
        return wire.issue_of(row, mr=mr)

    async def comments(self, project: str, number: str) -> Sequence[RemoteComment]:
        mr, iid = wire.parse_number(number)
        url = f"{wire.item_path(project, mr, iid)}/discussions"
        found: list[RemoteComment] = []
        for discussion in await self._all(url, project, wire.describe(mr, iid)):
            for note in discussion.get("notes") or []:
                if not note.get("system"):
                    found.append(wire.comment_of(note, discussion.get("id")))
        return sorted(found, key=lambda c: (c.created_at, int(c.external_id)))

    async def get_pull_request(
        self, project: str, number: str, *, include_comments: bool = True, include_diff: bool = True
    ) -> RemotePullRequest:
        iid = wire.mr_iid(number)
        what = wire.describe(True, iid)
        row = await self._http.json("GET", wire.item_path(project, True, iid), project, what=what)
        comments = await self.comments(project, f"!{iid}") if include_comments else ()
        diff = None
        if include_diff:
            diff = "".join(wire.unified_diff(f) for f in await self._diffs(project, iid))
        return RemotePullRequest(
            pull_request=wire.issue_of(row, mr=True), comments=tuple(comments), diff=diff
        )

    # --- issue writes ----------------------------------------------------------------------
    async def create_issue(self, project: str, draft: IssueDraft) -> RemoteIssue:
        event = wire.state_event(draft.status, project) if draft.status else "reopen"
        body: dict[str, Any] = {"title": draft.title, "description": draft.description}
        if draft.labels:
            body["labels"] = ",".join(draft.labels)
        if draft.assignee:
            body["assignee_ids"] = [await self._user_id(project, draft.assignee)]
        if draft.issue_type:
            body["issue_type"] = draft.issue_type.lower()
        row = await self._http.json(
            "POST", f"{wire.project_path(project)}/issues", project, json=body
        )
        issue = wire.issue_of(row, mr=False)
        if event == "close":
            return await self.update_issue(project, issue.number, IssueChanges(status="closed"))
        return issue

    async def update_issue(self, project: str, number: str, changes: IssueChanges) -> RemoteIssue:
        mr, iid = wire.parse_number(number)
        body: dict[str, Any] = {}
        if changes.title is not None:
            body["title"] = changes.title
        if changes.description is not None:
            body["description"] = changes.description
        if changes.status is not None:
            body["state_event"] = wire.state_event(changes.status, project)
        if changes.labels is not None:
            body["labels"] = ",".join(changes.labels)
        if changes.assignee is not None:
            body["assignee_ids"] = (
                [await self._user_id(project, changes.assignee)] if changes.assignee else []
            )
        row = await self._http.json(
            "PUT", wire.item_path(project, mr, iid), project, what=wire.describe(mr, iid), json=body
        )
        return wire.issue_of(row, mr=mr)

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
        mr, iid = wire.parse_number(number)
        if path is not None and line is not None:
            mr = True
        item = wire.item_path(project, mr, iid)
        what = wire.describe(mr, iid)
        if in_reply_to is not None:
            discussion = await self._discussion_of(project, mr, iid, in_reply_to)
            note = await self._http.json(
                "POST",
                f"{item}/discussions/{discussion}/notes",
                project,
                what=what,
                json={"body": body},
            )
            return wire.comment_of(note, discussion)
        if path is not None and line is not None:
            row = await self._http.json("GET", item, project, what=what)
            refs = row.get("diff_refs") or {}
            position: dict[str, Any] = {
                "position_type": "text",
                "base_sha": refs.get("base_sha"),
                "start_sha": refs.get("start_sha"),
                "head_sha": refs.get("head_sha"),
                "old_path": path,
                "new_path": path,
            }
            position["old_line" if side.upper() == "LEFT" else "new_line"] = line
            discussion = await self._http.json(
                "POST",
                f"{item}/discussions",
                project,
                what=what,
                json={"body": body, "position": position},
            )
            return wire.comment_of(discussion["notes"][0], discussion["id"])
        note = await self._http.json(
            "POST", f"{item}/notes", project, what=what, json={"body": body}
        )
        return wire.comment_of(note, None)

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
        mr, iid = wire.parse_number(number)
        if comment_type == "review_comment" or resolved is not None:
            mr = True
        item = wire.item_path(project, mr, iid)
        what = wire.describe(mr, iid)
        note: dict[str, Any] | None = None
        discussion = thread_id
        if body is not None:
            note = await self._http.json(
                "PUT", f"{item}/notes/{comment_id}", project, what=what, json={"body": body}
            )
        if resolved is not None:
            discussion = discussion or await self._discussion_of(project, mr, iid, comment_id)
            answer = await self._http.json(
                "PUT",
                f"{item}/discussions/{discussion}",
                project,
                what=what,
                params={"resolved": "true" if resolved else "false"},
            )
            for candidate in answer.get("notes") or []:
                if str(candidate.get("id")) == str(comment_id):
                    note = candidate
        if note is None:
            for comment in await self.comments(project, wire.number_text(mr, iid)):
                if comment.external_id == str(comment_id):
                    return comment
            raise TrackerError(
                f"GitLab at {self._http.host} found no comment {comment_id} on {what} in "
                f"project {project}",
                tracker="gitlab",
                project=project,
                status=404,
            )
        return wire.comment_of(note, discussion)

    # --- merge request writes --------------------------------------------------------------
    async def create_pull_request(self, project: str, draft: PullRequestDraft) -> RemoteIssue:
        title = draft.title
        if draft.draft and not wire.is_draft(title):
            title = DRAFT + title
        body: dict[str, Any] = {
            "title": title,
            "source_branch": draft.source_branch,
            "target_branch": draft.target_branch,
            "description": draft.description,
        }
        if draft.labels:
            body["labels"] = ",".join(draft.labels)
        if draft.assignees:
            body["assignee_ids"] = [await self._user_id(project, u) for u in draft.assignees]
        if draft.reviewers:
            body["reviewer_ids"] = [await self._user_id(project, u) for u in draft.reviewers]
        if draft.milestone is not None and draft.milestone.isdigit():
            body["milestone_id"] = int(draft.milestone)
        for name in MR_OPTIONS:
            if name in draft.extra_options:
                body[name] = draft.extra_options[name]
        row = await self._http.json(
            "POST", f"{wire.project_path(project)}/merge_requests", project, json=body
        )
        return wire.issue_of(row, mr=True)

    async def update_pull_request(
        self, project: str, number: str, changes: PullRequestChanges
    ) -> RemoteIssue:
        iid = wire.mr_iid(number)
        item = wire.item_path(project, True, iid)
        what = wire.describe(True, iid)
        body: dict[str, Any] = {}
        title = changes.title
        if changes.draft is not None:
            if title is None:
                title = (await self._http.json("GET", item, project, what=what))["title"]
            bare = wire.undraft(title)
            title = DRAFT + bare if changes.draft else bare
        if title is not None:
            body["title"] = title
        if changes.description is not None:
            body["description"] = changes.description
        if changes.state is not None:
            body["state_event"] = wire.state_event(changes.state, project)
        if changes.labels is not None:
            body["labels"] = ",".join(changes.labels)
        if changes.assignees is not None:
            body["assignee_ids"] = [await self._user_id(project, u) for u in changes.assignees]
        if changes.reviewers is not None:
            body["reviewer_ids"] = [await self._user_id(project, u) for u in changes.reviewers]
        row = None
        if body:
            row = await self._http.json("PUT", item, project, what=what, json=body)
        await self._review(project, iid, changes)
        if changes.add_reaction:
            await self._http.json(
                "POST",
                f"{item}/award_emoji",
                project,
                what=what,
                json={"name": wire.emoji_name(changes.add_reaction)},
            )
        if changes.remove_reaction:
            await self._remove_emoji(project, item, what, wire.emoji_name(changes.remove_reaction))
        if row is None or changes.review_action or changes.review_comments:
            row = await self._http.json("GET", item, project, what=what)
        return wire.issue_of(row, mr=True)

    async def _review(self, project: str, iid: int, changes: PullRequestChanges) -> None:
        item, what = wire.item_path(project, True, iid), wire.describe(True, iid)
        action = (changes.review_action or "").lower()
        if action not in ("", "approve", "request_changes", "comment"):
            raise TrackerError(
                f"GitLab at {self._http.host}: review_action {changes.review_action!r} is not "
                "one of approve, request_changes, comment",
                tracker="gitlab",
                project=project,
                status=422,
            )
        for comment in changes.review_comments:
            await self.add_comment(
                project,
                f"!{iid}",
                comment.body,
                path=comment.path,
                line=comment.line,
                side=comment.side,
            )
        if action == "approve":
            await self._http.json("POST", f"{item}/approve", project, what=what)
        elif action == "request_changes":
            try:
                await self._http.json("POST", f"{item}/unapprove", project, what=what)
            except TrackerError as exc:  # not approved by this user: nothing to take back
                if exc.status != 404:
                    raise
        if changes.review_body:
            await self._http.json(
                "POST", f"{item}/notes", project, what=what, json={"body": changes.review_body}
            )

    async def _remove_emoji(self, project: str, item: str, what: str, name: str) -> None:
        if self._login is None:
            self._login = str((await self._http.json("GET", "/user", project)).get("username", ""))
        for award in await self._all(f"{item}/award_emoji", project, what):
            if award.get("name") == name and (award.get("user") or {}).get("username") == (
                self._login
            ):
                await self._http.request(
                    "DELETE", f"{item}/award_emoji/{award['id']}", project=project, what=what
                )

    # --- helpers ---------------------------------------------------------------------------
    async def _diffs(self, project: str, iid: int) -> list[dict[str, Any]]:
        """The merge request's file diffs: ``/diffs`` (GitLab 15.7 and later), else the older
        ``/changes``."""
        item, what = wire.item_path(project, True, iid), wire.describe(True, iid)
        try:
            return await self._all(f"{item}/diffs", project, what)
        except TrackerError as exc:
            if exc.status != 404:
                raise
        answer = await self._http.json("GET", f"{item}/changes", project, what=what)
        return list(answer.get("changes") or [])

    async def _user_id(self, project: str, username: str) -> int:
        name = username.removeprefix("@")
        if name.isdigit():
            return int(name)
        if name not in self._user_ids:
            rows = await self._http.json("GET", "/users", project, params={"username": name})
            if not rows:
                raise TrackerError(
                    f"GitLab at {self._http.host} has no user {name!r} (project {project}); "
                    "give an existing username",
                    tracker="gitlab",
                    project=project,
                    status=404,
                )
            self._user_ids[name] = int(rows[0]["id"])
        return self._user_ids[name]

    async def _discussion_of(self, project: str, mr: bool, iid: int, reference: str) -> str:
        """The discussion id a reply goes to: ``reference`` is one, or a note in one."""
        if not reference.isdigit():
            return reference
        url = f"{wire.item_path(project, mr, iid)}/discussions"
        for discussion in await self._all(url, project, wire.describe(mr, iid)):
            if any(str(n.get("id")) == reference for n in discussion.get("notes") or []):
                return str(discussion["id"])
        raise TrackerError(
            f"GitLab at {self._http.host} found no discussion holding note {reference} on "
            f"{wire.describe(mr, iid)} in project {project}",
            tracker="gitlab",
            project=project,
            status=404,
        )

    async def _all(self, url: str, project: str, what: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        page = "1"
        while page:
            response = await self._http.request(
                "GET",
                url,
                project=project,
                what=what,
                params={"per_page": PER_PAGE, "page": page},
            )
            rows += response.json()
            page = response.headers.get("x-next-page", "").strip()
        return rows
