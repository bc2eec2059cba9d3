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
from urllib.parse import quote

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
from server.trackers._http import RetryPolicy, TrackerHttp, parse_time

PER_PAGE = 100
STREAMS = ("issues", "merge_requests")
STATES = {"opened": "open", "closed": "closed", "merged": "merged", "locked": "closed"}
EMOJI = {"+1": "thumbsup", "-1": "thumbsdown", "laugh": "laughing", "hooray": "tada"}
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
        row = await self._json("GET", _project(project), project, what="project")
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
        stream, number = _page_token(page, project)
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
            "GET", f"{_project(project)}/{stream}", project=project, params=params
        )
        mr = stream == "merge_requests"
        items = tuple(_issue(row, mr=mr) for row in response.json())
        following = response.headers.get("x-next-page", "").strip()
        if following:
            next_page: str | None = f"{stream}:{following}"
        elif stream == "issues":
            next_page = "merge_requests:1"
        else:
            next_page = None
        return IssuePage(items=items, next_page=next_page)

    async def get_issue(self, project: str, number: str) -> RemoteIssue:
        mr, iid = _number(number)
        row = await self._json("GET", _item(project, mr, iid), project, what=_what(mr, iid))
        return _issue(row, mr=mr)

    async def comments(self, project: str, number: str) -> Sequence[RemoteComment]:
        mr, iid = _number(number)
        url = f"{_item(project, mr, iid)}/discussions"
        found: list[RemoteComment] = []
        for discussion in await self._all(url, project, _what(mr, iid)):
            for note in discussion.get("notes") or []:
                if not note.get("system"):
                    found.append(_comment(note, discussion.get("id")))
        return sorted(found, key=lambda c: (c.created_at, int(c.external_id)))

    async def get_pull_request(
        self, project: str, number: str, *, include_comments: bool = True, include_diff: bool = True
    ) -> RemotePullRequest:
        iid = _mr_number(number)
        what = _what(True, iid)
        row = await self._json("GET", _item(project, True, iid), project, what=what)
        comments = await self.comments(project, f"!{iid}") if include_comments else ()
        diff = None
        if include_diff:
            diff = "".join(_unified(f) for f in await self._diffs(project, iid))
        return RemotePullRequest(
            pull_request=_issue(row, mr=True), comments=tuple(comments), diff=diff
        )

    # --- issue writes ----------------------------------------------------------------------
    async def create_issue(self, project: str, draft: IssueDraft) -> RemoteIssue:
        event = _event(draft.status, project) if draft.status else "reopen"
        body: dict[str, Any] = {"title": draft.title, "description": draft.description}
        if draft.labels:
            body["labels"] = ",".join(draft.labels)
        if draft.assignee:
            body["assignee_ids"] = [await self._user_id(project, draft.assignee)]
        if draft.issue_type:
            body["issue_type"] = draft.issue_type.lower()
        row = await self._json("POST", f"{_project(project)}/issues", project, json=body)
        issue = _issue(row, mr=False)
        if event == "close":
            return await self.update_issue(project, issue.number, IssueChanges(status="closed"))
        return issue

    async def update_issue(self, project: str, number: str, changes: IssueChanges) -> RemoteIssue:
        mr, iid = _number(number)
        body: dict[str, Any] = {}
        if changes.title is not None:
            body["title"] = changes.title
        if changes.description is not None:
            body["description"] = changes.description
        if changes.status is not None:
            body["state_event"] = _event(changes.status, project)
        if changes.labels is not None:
            body["labels"] = ",".join(changes.labels)
        if changes.assignee is not None:
            body["assignee_ids"] = (
                [await self._user_id(project, changes.assignee)] if changes.assignee else []
            )
        row = await self._json(
            "PUT", _item(project, mr, iid), project, what=_what(mr, iid), json=body
        )
        return _issue(row, mr=mr)

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
        mr, iid = _number(number)
        if path is not None and line is not None:
            mr = True
        item = _item(project, mr, iid)
        what = _what(mr, iid)
        if in_reply_to is not None:
            discussion = await self._discussion_of(project, mr, iid, in_reply_to)
            note = await self._json(
                "POST",
                f"{item}/discussions/{discussion}/notes",
                project,
                what=what,
                json={"body": body},
            )
            return _comment(note, discussion)
        if path is not None and line is not None:
            row = await self._json("GET", item, project, what=what)
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
            discussion = await self._json(
                "POST",
                f"{item}/discussions",
                project,
                what=what,
                json={"body": body, "position": position},
            )
            return _comment(discussion["notes"][0], discussion["id"])
        note = await self._json("POST", f"{item}/notes", project, what=what, json={"body": body})
        return _comment(note, None)

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
        mr, iid = _number(number)
        if comment_type == "review_comment" or resolved is not None:
            mr = True
        item = _item(project, mr, iid)
        what = _what(mr, iid)
        note: dict[str, Any] | None = None
        discussion = thread_id
        if body is not None:
            note = await self._json(
                "PUT", f"{item}/notes/{comment_id}", project, what=what, json={"body": body}
            )
        if resolved is not None:
            discussion = discussion or await self._discussion_of(project, mr, iid, comment_id)
            answer = await self._json(
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
            for comment in await self.comments(project, _num(mr, iid)):
                if comment.external_id == str(comment_id):
                    return comment
            raise TrackerError(
                f"GitLab at {self._http.host} found no comment {comment_id} on {what} in "
                f"project {project}",
                tracker="gitlab",
                project=project,
                status=404,
            )
        return _comment(note, discussion)

    # --- merge request writes --------------------------------------------------------------
    async def create_pull_request(self, project: str, draft: PullRequestDraft) -> RemoteIssue:
        title = draft.title
        if draft.draft and not _is_draft(title):
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
        row = await self._json("POST", f"{_project(project)}/merge_requests", project, json=body)
        return _issue(row, mr=True)

    async def update_pull_request(
        self, project: str, number: str, changes: PullRequestChanges
    ) -> RemoteIssue:
        iid = _mr_number(number)
        item = _item(project, True, iid)
        what = _what(True, iid)
        body: dict[str, Any] = {}
        title = changes.title
        if changes.draft is not None:
            if title is None:
                title = (await self._json("GET", item, project, what=what))["title"]
            bare = _undraft(title)
            title = DRAFT + bare if changes.draft else bare
        if title is not None:
            body["title"] = title
        if changes.description is not None:
            body["description"] = changes.description
        if changes.state is not None:
            body["state_event"] = _event(changes.state, project)
        if changes.labels is not None:
            body["labels"] = ",".join(changes.labels)
        if changes.assignees is not None:
            body["assignee_ids"] = [await self._user_id(project, u) for u in changes.assignees]
        if changes.reviewers is not None:
            body["reviewer_ids"] = [await self._user_id(project, u) for u in changes.reviewers]
        row = None
        if body:
            row = await self._json("PUT", item, project, what=what, json=body)
        await self._review(project, iid, changes)
        if changes.add_reaction:
            await self._json(
                "POST",
                f"{item}/award_emoji",
                project,
                what=what,
                json={"name": _emoji(changes.add_reaction)},
            )
        if changes.remove_reaction:
            await self._remove_emoji(project, item, what, _emoji(changes.remove_reaction))
        if row is None or changes.review_action or changes.review_comments:
            row = await self._json("GET", item, project, what=what)
        return _issue(row, mr=True)

    async def _review(self, project: str, iid: int, changes: PullRequestChanges) -> None:
        item, what = _item(project, True, iid), _what(True, iid)
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
            await self._json("POST", f"{item}/approve", project, what=what)
        elif action == "request_changes":
            try:
                await self._json("POST", f"{item}/unapprove", project, what=what)
            except TrackerError as exc:  # not approved by this user: nothing to take back
                if exc.status != 404:
                    raise
        if changes.review_body:
            await self._json(
                "POST", f"{item}/notes", project, what=what, json={"body": changes.review_body}
            )

    async def _remove_emoji(self, project: str, item: str, what: str, name: str) -> None:
        if self._login is None:
            self._login = str((await self._json("GET", "/user", project)).get("username", ""))
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
        item, what = _item(project, True, iid), _what(True, iid)
        try:
            return await self._all(f"{item}/diffs", project, what)
        except TrackerError as exc:
            if exc.status != 404:
                raise
        answer = await self._json("GET", f"{item}/changes", project, what=what)
        return list(answer.get("changes") or [])

    async def _user_id(self, project: str, username: str) -> int:
        name = username.removeprefix("@")
        if name.isdigit():
            return int(name)
        if name not in self._user_ids:
            rows = await self._json("GET", "/users", project, params={"username": name})
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
        url = f"{_item(project, mr, iid)}/discussions"
        for discussion in await self._all(url, project, _what(mr, iid)):
            if any(str(n.get("id")) == reference for n in discussion.get("notes") or []):
                return str(discussion["id"])
        raise TrackerError(
            f"GitLab at {self._http.host} found no discussion holding note {reference} on "
            f"{_what(mr, iid)} in project {project}",
            tracker="gitlab",
            project=project,
            status=404,
        )

    async def _json(
        self,
        method: str,
        url: str,
        project: str,
        *,
        what: str = "",
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        response = await self._http.request(
            method, url, project=project, what=what, json=json, params=params
        )
        return response.json() if response.content else {}

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


def _project(project: str) -> str:
    path = project.strip("/")
    if not path:
        raise TrackerError("GitLab: the project is empty", tracker="gitlab", status=422)
    return f"/projects/{quote(path, safe='')}"


def _number(number: str) -> tuple[bool, int]:
    """(is a merge request, iid) of ``12``, ``#12``, ``!12``, ``group/project!12``."""
    text = str(number).strip()
    mr = "!" in text
    tail = text.rsplit("!" if mr else "#", 1)[-1]
    if not tail.isdigit():
        raise TrackerError(
            f"GitLab: {number!r} is not an issue (12) or merge request (!12) number",
            tracker="gitlab",
            status=422,
        )
    return mr, int(tail)


def _mr_number(number: str) -> int:
    return _number(number)[1]


def _num(mr: bool, iid: int) -> str:
    return f"!{iid}" if mr else str(iid)


def _item(project: str, mr: bool, iid: int) -> str:
    return f"{_project(project)}/{'merge_requests' if mr else 'issues'}/{iid}"


def _what(mr: bool, iid: int) -> str:
    return f"merge request !{iid}" if mr else f"issue #{iid}"


def _page_token(page: str | None, project: str) -> tuple[str, int]:
    if page is None:
        return "issues", 1
    stream, _, number = page.partition(":")
    if stream not in STREAMS or not number.isdigit():
        raise TrackerError(
            f"GitLab: page token {page!r} is not one this adapter gave (project {project})",
            tracker="gitlab",
            project=project,
            status=422,
        )
    return stream, int(number)


def _event(status: str, project: str) -> str:
    state = status.strip().lower()
    if state in ("open", "opened", "reopen", "reopened"):
        return "reopen"
    if state in ("closed", "close", "done"):
        return "close"
    raise TrackerError(
        f"GitLab: status {status!r} is not open or closed (project {project})",
        tracker="gitlab",
        project=project,
        status=422,
    )


def _is_draft(title: str) -> bool:
    return title.lower().startswith(("draft:", "[draft]", "(draft)"))


def _undraft(title: str) -> str:
    for mark in ("draft:", "[draft]", "(draft)"):
        if title.lower().startswith(mark):
            return title[len(mark) :].lstrip()
    return title


def _emoji(name: str) -> str:
    return EMOJI.get(name, name)


def _unified(diff: dict[str, Any]) -> str:
    old, new = diff.get("old_path", ""), diff.get("new_path", "")
    head = f"diff --git a/{old} b/{new}\n"
    head += "--- /dev/null\n" if diff.get("new_file") else f"--- a/{old}\n"
    head += "+++ /dev/null\n" if diff.get("deleted_file") else f"+++ b/{new}\n"
    body = diff.get("diff") or ""
    return head + body + ("" if body.endswith("\n") or not body else "\n")


def _issue(row: dict[str, Any], *, mr: bool) -> RemoteIssue:
    iid = int(row["iid"])
    extra: dict[str, Any] = {}
    if mr:
        extra = {
            "source_branch": row.get("source_branch"),
            "target_branch": row.get("target_branch"),
            "draft": bool(row.get("draft") or row.get("work_in_progress")),
            "merged": row.get("state") == "merged",
            "reviewers": [r["username"] for r in row.get("reviewers") or []],
            "head_sha": (row.get("diff_refs") or {}).get("head_sha") or row.get("sha"),
        }
    return RemoteIssue(
        external_id=str(row["id"]),
        number=_num(mr, iid),
        kind=IssueKind.PULL_REQUEST if mr else IssueKind.ISSUE,
        title=row.get("title") or "",
        body=row.get("description") or "",
        state=STATES.get(row.get("state") or "", row.get("state") or "open"),
        labels=tuple(
            label if isinstance(label, str) else label.get("name", "")
            for label in row.get("labels") or []
        ),
        assignees=tuple(u["username"] for u in row.get("assignees") or []),
        author=(row.get("author") or {}).get("username", ""),
        url=row.get("web_url") or "",
        created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]),
        extra=extra,
    )


def _comment(note: dict[str, Any], discussion: str | None) -> RemoteComment:
    position = note.get("position") or {}
    diff = note.get("type") == "DiffNote"
    return RemoteComment(
        external_id=str(note["id"]),
        body=note.get("body") or "",
        author=(note.get("author") or {}).get("username", ""),
        created_at=parse_time(note["created_at"]),
        updated_at=parse_time(note["updated_at"]),
        kind="review_comment" if diff else "issue_comment",
        path=position.get("new_path") or position.get("old_path") if diff else None,
        line=position.get("new_line") or position.get("old_line") if diff else None,
        thread_id=discussion,
    )
