"""Jira Cloud's REST API v3 as a ``TrackerClient``.

- Auth: Basic ``EMAIL:API_TOKEN`` when the tracker has a ``username`` (Jira Cloud), else
  ``Authorization: Bearer TOKEN`` (a Data Center personal access token).
- Sync: ``POST /rest/api/3/search/jql`` with ``project = "KEY" AND updated >= "yyyy/MM/dd
  HH:mm" ORDER BY updated ASC``, the fields shown, ``maxResults`` and ``nextPageToken`` (the
  page token). JQL times are minutes in the *calling user's* time zone: the cursor is turned
  into that zone (``GET /myself``) and floored to its minute, so nothing is missed (issues of
  that minute come again; writing them again is harmless). The old ``/rest/api/3/search`` is
  never called (Atlassian removed it: 410).
- Ids: ``project`` is the key (``PROJ``), ``number`` the issue key (``PROJ-12``),
  ``external_id`` the issue id. ``state`` is the status name; ``priority`` its name;
  ``assignees`` the assignee's accountId (its display name in ``extra``).
- Writes: descriptions and comments go as the Atlassian Document Format (server/trackers/
  adf.py); a status change is the transition leading to that status (or named so; ``open``
  and ``closed`` pick the first transition into the To Do / Done category); priority by
  name; assignee by accountId (an e-mail or display name is looked up with ``/user/search``).
- Jira has no pull requests and no diff lines: those methods raise ``TrackerError``. Replies
  (``in_reply_to``) are posted as plain comments; comments cannot be resolved.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
from server.trackers._http import RetryPolicy, TrackerHttp, parse_time
from server.trackers.adf import to_adf, to_text

PER_PAGE = 100
FIELDS = (
    "summary",
    "description",
    "status",
    "labels",
    "assignee",
    "reporter",
    "priority",
    "issuetype",
    "created",
    "updated",
)
CATEGORIES = {"open": "new", "opened": "new", "reopen": "new", "closed": "done", "done": "done"}


def api_root(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/rest/api/3") else f"{base}/rest/api/3"


class JiraClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        token_ref: str,
        username: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
        per_page: int = PER_PAGE,
    ) -> None:
        if username:
            basic = base64.b64encode(f"{username}:{token}".encode()).decode()
            auth = f"Basic {basic}"
            secrets: tuple[str, ...] = (token, basic)
        else:
            auth, secrets = f"Bearer {token}", (token,)
        self._site = base_url.rstrip("/").removesuffix("/rest/api/3")
        self._http = TrackerHttp(
            kind=TrackerKind.JIRA,
            base_url=api_root(base_url),
            auth_headers={"Authorization": auth},
            token_ref=token_ref,
            secrets=secrets,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            transport=transport,
            extra_headers={"Accept": "application/json"},
        )
        self._per_page = per_page
        self._zone: ZoneInfo | None = None
        self._accounts: dict[str, str] = {}

    @property
    def kind(self) -> TrackerKind:
        return TrackerKind.JIRA

    async def close(self) -> None:
        await self._http.close()

    # --- reads -----------------------------------------------------------------------------
    async def test_connection(self, project: str) -> ProjectInfo:
        row = await self._http.json("GET", f"/project/{_key(project)}", project, what="project")
        description = row.get("description") or ""
        return ProjectInfo(
            project=row.get("key") or project,
            name=row.get("name") or project,
            url=f"{self._site}/browse/{row.get('key') or project}",
            description=to_text(description) if isinstance(description, dict) else description,
        )

    async def issues_since(
        self,
        project: str,
        since: datetime | None,
        *,
        page: str | None = None,
        etag: str | None = None,
    ) -> IssuePage:
        jql = f'project = "{_key(project)}"'
        if since is not None:
            zone = await self._user_zone(project)
            jql += f' AND updated >= "{since.astimezone(zone).strftime("%Y/%m/%d %H:%M")}"'
        jql += " ORDER BY updated ASC"
        body: dict[str, Any] = {"jql": jql, "fields": list(FIELDS), "maxResults": self._per_page}
        if page is not None:
            body["nextPageToken"] = page
        answer = await self._http.json("POST", "/search/jql", project, json=body)
        items = tuple(self._issue(row) for row in answer.get("issues") or [])
        token = answer.get("nextPageToken")
        return IssuePage(items=items, next_page=None if answer.get("isLast", not token) else token)

    async def get_issue(self, project: str, number: str) -> RemoteIssue:
        row = await self._http.json(
            "GET",
            f"/issue/{_issue_key(number, project)}",
            project,
            what=f"issue {number}",
            params={"fields": ",".join(FIELDS)},
        )
        return self._issue(row)

    async def comments(self, project: str, number: str) -> Sequence[RemoteComment]:
        key = _issue_key(number, project)
        found: list[RemoteComment] = []
        start = 0
        while True:
            answer = await self._http.json(
                "GET",
                f"/issue/{key}/comment",
                project,
                what=f"issue {number}",
                params={"startAt": start, "maxResults": PER_PAGE, "orderBy": "created"},
            )
            rows = answer.get("comments") or []
            found += [self._comment(key, row) for row in rows]
            start += len(rows)
            if not rows or start >= int(answer.get("total", 0)):
                return found

    # --- writes ----------------------------------------------------------------------------
    async def create_issue(self, project: str, draft: IssueDraft) -> RemoteIssue:
        fields: dict[str, Any] = {
            "project": {"key": _key(project)},
            "summary": draft.title,
            "issuetype": {"name": draft.issue_type or "Task"},
        }
        if draft.description:
            fields["description"] = to_adf(draft.description)
        if draft.labels:
            fields["labels"] = list(draft.labels)
        if draft.priority:
            fields["priority"] = {"name": draft.priority}
        if draft.assignee:
            fields["assignee"] = {"accountId": await self._account(project, draft.assignee)}
        created = await self._http.json("POST", "/issue", project, json={"fields": fields})
        key = str(created["key"])
        if draft.status:
            await self._transition(project, key, draft.status)
        return await self.get_issue(project, key)

    async def update_issue(self, project: str, number: str, changes: IssueChanges) -> RemoteIssue:
        key = _issue_key(number, project)
        fields: dict[str, Any] = {}
        if changes.title is not None:
            fields["summary"] = changes.title
        if changes.description is not None:
            fields["description"] = to_adf(changes.description) if changes.description else None
        if changes.labels is not None:
            fields["labels"] = list(changes.labels)
        if changes.priority is not None:
            fields["priority"] = {"name": changes.priority}
        if changes.assignee is not None:
            fields["assignee"] = (
                {"accountId": await self._account(project, changes.assignee)}
                if changes.assignee
                else None
            )
        if fields:
            await self._http.json(
                "PUT", f"/issue/{key}", project, what=f"issue {number}", json={"fields": fields}
            )
        if changes.status is not None:
            await self._transition(project, key, changes.status)
        return await self.get_issue(project, key)

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
        key = _issue_key(number, project)
        if path is not None or line is not None:
            self._no_pull_requests(project, "comment on a diff line")
        row = await self._http.json(
            "POST",
            f"/issue/{key}/comment",
            project,
            what=f"issue {number}",
            json={"body": to_adf(body)},
        )
        return self._comment(key, row)

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
        key = _issue_key(number, project)
        if resolved is not None:
            raise TrackerError(
                f"Jira at {self._http.host}: comments cannot be resolved (issue {key})",
                tracker="jira",
                project=project,
                status=422,
            )
        row = await self._http.json(
            "GET" if body is None else "PUT",
            f"/issue/{key}/comment/{comment_id}",
            project,
            what=f"comment {comment_id} of issue {number}",
            json=None if body is None else {"body": to_adf(body)},
        )
        return self._comment(key, row)

    async def get_pull_request(
        self, project: str, number: str, *, include_comments: bool = True, include_diff: bool = True
    ) -> RemotePullRequest:
        self._no_pull_requests(project, "read a pull request")

    async def create_pull_request(self, project: str, draft: PullRequestDraft) -> RemoteIssue:
        self._no_pull_requests(project, "create a pull request")

    async def update_pull_request(
        self, project: str, number: str, changes: PullRequestChanges
    ) -> RemoteIssue:
        self._no_pull_requests(project, "update a pull request")

    # --- helpers ---------------------------------------------------------------------------
    def _no_pull_requests(self, project: str, doing: str) -> NoReturn:
        raise TrackerError(
            f"Jira at {self._http.host} has no pull requests: cannot {doing} in project "
            f"{project}; use the GitHub or GitLab tracker that holds the code",
            tracker="jira",
            project=project,
            status=422,
        )

    async def _transition(self, project: str, key: str, status: str) -> None:
        answer = await self._http.json(
            "GET", f"/issue/{key}/transitions", project, what=f"issue {key}"
        )
        transitions = answer.get("transitions") or []
        wanted = status.strip().lower()
        chosen = next(
            (
                t
                for t in transitions
                if wanted in (str(t.get("name", "")).lower(), _to(t, "name").lower())
            ),
            None,
        )
        if chosen is None and wanted in CATEGORIES:
            category = CATEGORIES[wanted]
            chosen = next(
                (
                    t
                    for t in transitions
                    if ((t.get("to") or {}).get("statusCategory") or {}).get("key") == category
                ),
                None,
            )
        if chosen is None:
            names = ", ".join(sorted({_to(t, "name") for t in transitions if _to(t, "name")}))
            raise TrackerError(
                f"Jira at {self._http.host}: issue {key} in project {project} cannot move to "
                f"status {status!r}; its workflow allows: {names or 'no transition'}",
                tracker="jira",
                project=project,
                status=422,
            )
        await self._http.request(
            "POST",
            f"/issue/{key}/transitions",
            project=project,
            what=f"issue {key}",
            json={"transition": {"id": chosen["id"]}},
        )

    async def _account(self, project: str, who: str) -> str:
        """An accountId: given as one, or found by e-mail or display name."""
        if "@" not in who and " " not in who:
            return who
        if who not in self._accounts:
            rows = await self._http.json("GET", "/user/search", project, params={"query": who})
            match = next(
                (
                    r
                    for r in rows
                    if who.lower()
                    in (str(r.get("emailAddress", "")).lower(), str(r.get("displayName")).lower())
                ),
                None,
            )
            if match is None:
                raise TrackerError(
                    f"Jira at {self._http.host} has no user {who!r} (project {project}); give "
                    "their accountId, e-mail or display name",
                    tracker="jira",
                    project=project,
                    status=404,
                )
            self._accounts[who] = str(match["accountId"])
        return self._accounts[who]

    async def _user_zone(self, project: str) -> ZoneInfo:
        if self._zone is None:
            me = await self._http.json("GET", "/myself", project)
            try:
                self._zone = ZoneInfo(str(me.get("timeZone") or "UTC"))
            except (ZoneInfoNotFoundError, ValueError):
                self._zone = ZoneInfo("UTC")
        return self._zone

    def _issue(self, row: dict[str, Any]) -> RemoteIssue:
        fields = row.get("fields") or {}
        status = fields.get("status") or {}
        assignee = fields.get("assignee") or {}
        return RemoteIssue(
            external_id=str(row["id"]),
            number=str(row["key"]),
            title=fields.get("summary") or "",
            body=to_text(fields.get("description")),
            state=status.get("name") or "",
            labels=tuple(fields.get("labels") or ()),
            assignees=(assignee["accountId"],) if assignee.get("accountId") else (),
            priority=(fields.get("priority") or {}).get("name"),
            author=(fields.get("reporter") or {}).get("displayName", ""),
            url=f"{self._site}/browse/{row['key']}",
            created_at=parse_time(fields["created"]) if fields.get("created") else _epoch(),
            updated_at=parse_time(fields["updated"]) if fields.get("updated") else _epoch(),
            extra={
                "issue_type": (fields.get("issuetype") or {}).get("name"),
                "status_category": (status.get("statusCategory") or {}).get("key"),
                "assignee_name": assignee.get("displayName"),
            },
        )

    def _comment(self, key: str, row: dict[str, Any]) -> RemoteComment:
        return RemoteComment(
            external_id=str(row["id"]),
            body=to_text(row.get("body")),
            author=(row.get("author") or {}).get("displayName", ""),
            created_at=parse_time(row["created"]),
            updated_at=parse_time(row["updated"]),
            url=f"{self._site}/browse/{key}?focusedCommentId={row['id']}",
        )


def _to(transition: dict[str, Any], name: str) -> str:
    return str((transition.get("to") or {}).get(name) or "")


def _key(project: str) -> str:
    key = project.strip().upper()
    if not key or not key.replace("_", "").isalnum():
        raise TrackerError(
            f"Jira: project {project!r} is not a project key (such as PROJ)",
            tracker="jira",
            project=project,
            status=422,
        )
    return key


def _issue_key(number: str, project: str) -> str:
    text = str(number).strip().upper()
    if text.isdigit():
        return f"{_key(project)}-{text}"
    head, _, tail = text.rpartition("-")
    if not head or not tail.isdigit():
        raise TrackerError(
            f"Jira: {number!r} is not an issue key (such as {_key(project)}-12)",
            tracker="jira",
            project=project,
            status=422,
        )
    return text


def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC)
