"""A stateful local fake of Jira Cloud's REST API v3, served on 127.0.0.1.

Seed it (``add_project``, ``add_user``, ``add_issue``, ``add_comment``, ``touch``), point the
adapter at it, assert on ``requests``. Jira's ways:

- Basic auth ``EMAIL:API_TOKEN`` (Cloud), or ``Authorization: Bearer PAT``; else 401.
- ``POST /rest/api/3/search/jql`` with ``jql``, ``fields``, ``maxResults`` (at most 100 here),
  ``nextPageToken``; answers ``issues``, ``nextPageToken`` (absent on the last page) and
  ``isLast``. The JQL it understands is what the adapter sends: ``project = KEY`` (quoted or
  not), optionally ``AND updated >= "yyyy/MM/dd HH:mm"`` (read in the calling user's time
  zone, as Jira does), ``ORDER BY updated ASC|DESC``; anything else is a 400 with Jira's "Error
  in the JQL Query". The old ``/rest/api/3/search`` answers **410 Gone**.
- ``GET /rest/api/3/project/{key}``, ``GET /rest/api/3/myself``, ``GET /rest/api/3/user/search``.
- issues: ``GET``/``PUT /issue/{key}``, ``POST /issue`` (descriptions and comments in the
  Atlassian Document Format), transitions ``GET``/``POST /issue/{key}/transitions`` (To Do, In
  Progress, Done), comments ``GET``/``POST /issue/{key}/comment``, ``GET``/``PUT .../comment/{id}``.
- Errors in Jira's envelope ``{"errorMessages": [...], "errors": {field: message}}``;
  ``limit()``: 429 with Retry-After.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.fakes.tracker_base import Answer, FakeTracker, Request

EMAIL = "bot@example.com"
TOKEN = "ATATT3xFfGF0-fake-jira-token-0123456789"
BOT_ACCOUNT = "712020:0b0a0c0d-bot"
STATUSES = {
    "To Do": {"id": "10000", "key": "new", "name": "To Do"},
    "In Progress": {"id": "10001", "key": "indeterminate", "name": "In Progress"},
    "Done": {"id": "10002", "key": "done", "name": "Done"},
}
TRANSITIONS = {"11": "To Do", "21": "In Progress", "31": "Done"}
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A "
    "full migration guideline is available at https://developer.atlassian.com/changelog/"
    "#CHANGE-2046"
)
_JQL = re.compile(
    r'^project\s*=\s*"?(?P<key>[A-Z][A-Z0-9_]*)"?'
    r'(?:\s+AND\s+updated\s*>=\s*"(?P<since>\d{4}/\d{2}/\d{2} \d{2}:\d{2})")?'
    r"(?:\s+ORDER\s+BY\s+updated\s+(?P<order>ASC|DESC))?\s*$",
    re.IGNORECASE,
)


def adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF document (the fake's own, independent of the adapter's)."""
    blocks = [b for b in text.split("\n\n") if b] if text else []
    content = []
    for block in blocks:
        inline: list[dict[str, Any]] = []
        for index, line in enumerate(block.split("\n")):
            if index:
                inline.append({"type": "hardBreak"})
            if line:
                inline.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": inline})
    return {"type": "doc", "version": 1, "content": content}


def _jira_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000%z")


class FakeJira(FakeTracker):
    name = "jira"

    def __init__(self, *, email: str = EMAIL, token: str = TOKEN, time_zone: str = "UTC") -> None:
        super().__init__()
        self.email = email
        self.token = token
        self.users: dict[str, dict[str, Any]] = {}
        self.projects: dict[str, dict[str, Any]] = {}
        self.issues: dict[str, dict[str, Any]] = {}  # key -> issue JSON (with "_comments")
        self._ids = 10000
        self.bot = self.add_user("Preloop Bot", EMAIL, account_id=BOT_ACCOUNT, time_zone=time_zone)

    # --- seeding ---------------------------------------------------------------------------
    def _id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def add_user(
        self,
        name: str,
        email: str = "",
        *,
        account_id: str | None = None,
        time_zone: str = "UTC",
    ) -> dict[str, Any]:
        account = account_id or f"5b10ac8d82e05b22cc7d{len(self.users):04d}"
        user = {
            "accountId": account,
            "accountType": "atlassian",
            "displayName": name,
            "emailAddress": email,
            "active": True,
            "timeZone": time_zone,
        }
        self.users[account] = user
        return user

    def add_project(self, key: str, name: str = "", description: str = "") -> dict[str, Any]:
        project = {
            "id": self._id(),
            "key": key,
            "name": name or key.title(),
            "description": description,
            "self": f"https://example.atlassian.net/rest/api/3/project/{key}",
            "_next": 1,
        }
        self.projects[key] = project
        return project

    def add_issue(
        self,
        project: str,
        summary: str,
        description: str = "",
        *,
        labels: tuple[str, ...] = (),
        assignee: str | None = None,
        priority: str = "Medium",
        status: str = "To Do",
        issue_type: str = "Task",
    ) -> dict[str, Any]:
        with self._lock:
            return self._new_issue(
                project,
                {
                    "summary": summary,
                    "description": adf(description) if description else None,
                    "labels": list(labels),
                    "assignee": self.users[assignee] if assignee else None,
                    "priority": {"name": priority},
                    "issuetype": {"name": issue_type},
                },
                status,
                reporter=self.bot,
            )

    def add_comment(self, key: str, text: str, *, author: str | None = None) -> dict[str, Any]:
        with self._lock:
            user = self.users[author] if author else self.bot
            return self._new_comment(key, adf(text), user)

    def touch(self, key: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            issue = self.issues[key]
            issue["fields"].update(fields)
            issue["fields"]["updated"] = _jira_time(self.tick())
            return issue

    def _now(self) -> datetime:
        return self.tick().astimezone(ZoneInfo("UTC"))

    # --- state changes ---------------------------------------------------------------------
    def _new_issue(
        self, key: str, fields: dict[str, Any], status: str, *, reporter: dict[str, Any]
    ) -> dict[str, Any]:
        project = self.projects[key]
        number = project["_next"]
        project["_next"] += 1
        issue_key = f"{key}-{number}"
        now = _jira_time(self._now())
        issue_id = self._id()
        issue = {
            "id": issue_id,
            "key": issue_key,
            "self": f"https://example.atlassian.net/rest/api/3/issue/{issue_id}",
            "fields": {
                "summary": fields["summary"],
                "description": fields.get("description"),
                "labels": list(fields.get("labels") or []),
                "assignee": fields.get("assignee"),
                "reporter": reporter,
                "priority": fields.get("priority") or {"name": "Medium"},
                "issuetype": fields.get("issuetype") or {"name": "Task"},
                "status": _status(status),
                "project": {"key": key, "id": project["id"]},
                "created": now,
                "updated": now,
            },
            "_comments": [],
        }
        self.issues[issue_key] = issue
        return issue

    def _new_comment(self, key: str, body: dict[str, Any], author: dict[str, Any]):
        now = _jira_time(self._now())
        comment_id = self._id()
        comment = {
            "id": comment_id,
            "self": f"https://example.atlassian.net/rest/api/3/issue/{key}/comment/{comment_id}",
            "author": author,
            "updateAuthor": author,
            "body": body,
            "created": now,
            "updated": now,
        }
        issue = self.issues[key]
        issue["_comments"].append(comment)
        issue["fields"]["updated"] = now
        return comment

    # --- HTTP ------------------------------------------------------------------------------
    def forbidden_answer(self) -> Answer:
        return _error(403, "You do not have permission to edit issues in this project.")

    def _caller(self, request: Request) -> dict[str, Any] | None:
        auth = request.headers.get("authorization", "")
        basic = base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        if auth in (f"Basic {basic}", f"Bearer {self.token}"):
            return self.bot
        return None

    def handle(self, request: Request) -> Answer:
        if self._caller(request) is None:
            return Answer(401, "Client must be authenticated to access this resource.")
        path = request.path.removeprefix("/rest/api/3")
        if path == request.path:
            return _error(404, "Not found")
        method = request.method
        if path == "/search":
            return Answer(410, {"errorMessages": [GONE], "errors": {}})
        if path == "/search/jql" and method in ("POST", "GET"):
            return self._search(request)
        if path == "/myself" and method == "GET":
            return Answer(200, self.bot)
        if path == "/user/search" and method == "GET":
            query = request.query.get("query", "").lower()
            found = [
                u
                for u in self.users.values()
                if query
                and (query in u["displayName"].lower() or query == u["emailAddress"].lower())
            ]
            return Answer(200, found)
        if path.startswith("/project/") and method == "GET":
            project = self.projects.get(path.removeprefix("/project/"))
            if project is None:
                key = path.removeprefix("/project/")
                return _error(404, f"No project could be found with key '{key}'.")
            return Answer(200, _public(project))
        if path == "/issue" and method == "POST":
            return self._create(request)
        match = re.fullmatch(r"/issue/(?P<key>[^/]+)(?P<rest>/.*)?", path)
        if match is None:
            return _error(404, "Not found")
        issue = self._issue(match["key"])
        if issue is None:
            return _error(404, "Issue does not exist or you do not have permission to see it.")
        return self._issue_route(request, issue, match["rest"] or "")

    def _issue(self, ident: str) -> dict[str, Any] | None:
        if ident in self.issues:
            return self.issues[ident]
        return next((i for i in self.issues.values() if i["id"] == ident), None)

    def _issue_route(self, request: Request, issue: dict[str, Any], rest: str) -> Answer:
        method = request.method
        if rest == "" and method == "GET":
            return Answer(200, _shown(issue, request.query.get("fields")))
        if rest == "" and method == "PUT":
            return self._update(request, issue)
        if rest == "/transitions" and method == "GET":
            return Answer(
                200,
                {
                    "transitions": [
                        {"id": tid, "name": name, "to": _status(name), "hasScreen": False}
                        for tid, name in TRANSITIONS.items()
                    ]
                },
            )
        if rest == "/transitions" and method == "POST":
            tid = ((request.body or {}).get("transition") or {}).get("id")
            if tid not in TRANSITIONS:
                return _error(400, "", errors={"transition": "Transition id is not valid."})
            issue["fields"]["status"] = _status(TRANSITIONS[tid])
            issue["fields"]["updated"] = _jira_time(self._now())
            return Answer(204)
        if rest == "/comment" and method == "GET":
            start = int(request.query.get("startAt", "0"))
            size = min(int(request.query.get("maxResults", "50")), 100)
            comments = issue["_comments"]
            return Answer(
                200,
                {
                    "startAt": start,
                    "maxResults": size,
                    "total": len(comments),
                    "comments": comments[start : start + size],
                },
            )
        if rest == "/comment" and method == "POST":
            body = (request.body or {}).get("body")
            if not isinstance(body, dict) or body.get("type") != "doc":
                return _error(400, "", errors={"comment": "Comment body can not be empty!"})
            return Answer(201, self._new_comment(issue["key"], body, self.bot))
        match = re.fullmatch(r"/comment/(\d+)", rest)
        if match and method == "GET":
            for comment in issue["_comments"]:
                if comment["id"] == match[1]:
                    return Answer(200, comment)
            return _error(404, "Can not find a comment for the id: " + match[1])
        if match and method == "PUT":
            for comment in issue["_comments"]:
                if comment["id"] == match[1]:
                    comment["body"] = (request.body or {}).get("body", comment["body"])
                    comment["updated"] = _jira_time(self._now())
                    return Answer(200, comment)
            return _error(404, "Can not find a comment for the id: " + match[1])
        return _error(404, "Not found")

    def _search(self, request: Request) -> Answer:
        body = request.body if request.method == "POST" else request.query
        body = body or {}
        parsed = _JQL.match(str(body.get("jql", "")).strip())
        if parsed is None:
            return _error(400, f"Error in the JQL Query: cannot parse {body.get('jql')!r}.")
        key = parsed["key"]
        if key not in self.projects:
            return _error(400, f"The value '{key}' does not exist for the field 'project'.")
        rows = [i for i in self.issues.values() if i["fields"]["project"]["key"] == key]
        if parsed["since"]:
            zone = ZoneInfo(self.bot["timeZone"])
            since = datetime.strptime(parsed["since"], "%Y/%m/%d %H:%M").replace(tzinfo=zone)
            rows = [r for r in rows if _parse(r["fields"]["updated"]) >= since]
        descending = (parsed["order"] or "DESC").upper() == "DESC"
        rows.sort(key=lambda r: (r["fields"]["updated"], int(r["id"])), reverse=descending)
        size = max(1, min(int(body.get("maxResults", 50)), 100))
        token = body.get("nextPageToken")
        start = int(base64.b64decode(token).decode().removeprefix("offset:")) if token else 0
        chunk = rows[start : start + size]
        fields = body.get("fields")
        answer: dict[str, Any] = {
            "issues": [
                _shown(i, ",".join(fields) if isinstance(fields, list) else fields) for i in chunk
            ],
            "isLast": start + size >= len(rows),
        }
        if not answer["isLast"]:
            answer["nextPageToken"] = base64.b64encode(f"offset:{start + size}".encode()).decode()
        return Answer(200, answer)

    def _fields(self, given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        fields: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name in ("summary", "description", "labels"):
            if name in given:
                fields[name] = given[name]
        if (
            "description" in fields
            and fields["description"] is not None
            and (
                not isinstance(fields["description"], dict)
                or fields["description"].get("type") != "doc"
            )
        ):
            errors["description"] = "Operation value must be an Atlassian Document."
        if "priority" in given:
            name = (given["priority"] or {}).get("name")
            if name not in PRIORITIES:
                errors["priority"] = f"Priority name '{name}' is not valid"
            fields["priority"] = {"name": name}
        if "assignee" in given:
            account = (given["assignee"] or {}).get("accountId")
            if account is not None and account not in self.users:
                errors["assignee"] = f"User '{account}' does not exist."
            fields["assignee"] = self.users.get(account) if account else None
        if "status" in given:
            errors["status"] = (
                "Field 'status' cannot be set. It is not on the appropriate screen, or unknown."
            )
        return fields, errors

    def _create(self, request: Request) -> Answer:
        given = (request.body or {}).get("fields") or {}
        key = (given.get("project") or {}).get("key")
        errors: dict[str, str] = {}
        if key not in self.projects:
            errors["project"] = "valid project is required"
        if not given.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        fields, problems = self._fields(given)
        errors |= problems
        issue_type = (given.get("issuetype") or {}).get("name")
        if issue_type not in ("Task", "Bug", "Story", "Epic"):
            errors["issuetype"] = "Specify a valid issue type"
        if errors:
            return _error(400, "", errors=errors)
        fields["issuetype"] = {"name": issue_type}
        issue = self._new_issue(key, fields, "To Do", reporter=self.bot)
        return Answer(201, {"id": issue["id"], "key": issue["key"], "self": issue["self"]})

    def _update(self, request: Request, issue: dict[str, Any]) -> Answer:
        fields, errors = self._fields((request.body or {}).get("fields") or {})
        if "summary" in fields and not fields["summary"]:
            errors["summary"] = "You must specify a summary of the issue."
        if errors:
            return _error(400, "", errors=errors)
        issue["fields"].update(fields)
        issue["fields"]["updated"] = _jira_time(self._now())
        return Answer(204)


def _status(name: str) -> dict[str, Any]:
    status = STATUSES[name]
    return {
        "id": status["id"],
        "name": name,
        "statusCategory": {"key": status["key"], "name": name},
    }


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _shown(issue: dict[str, Any], fields: str | None) -> dict[str, Any]:
    shown = _public(issue)
    if fields and fields not in ("*all", "*navigable"):
        wanted = {f.strip() for f in fields.split(",")}
        shown["fields"] = {k: v for k, v in issue["fields"].items() if k in wanted}
    return shown


def _error(status: int, message: str, *, errors: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"errorMessages": [message] if message else [], "errors": errors or {}})
