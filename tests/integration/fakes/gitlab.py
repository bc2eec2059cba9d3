"""A stateful local fake of GitLab's REST API v4, served on 127.0.0.1, under an optional path
prefix (a self-managed GitLab at ``https://host/gitlab``).

Seed it (``add_user``, ``add_project``, ``add_issue``, ``add_merge_request``, ``add_note``,
``merge``, ``touch``), point the adapter at it, assert on ``requests``. GitLab's ways:

- ``PRIVATE-TOKEN`` (or ``Authorization: Bearer``); else 401 ``{"message": "401 Unauthorized"}``.
- projects by numeric id or URL-encoded full path (``group%2Fsub%2Fproject``); ``GET /users?
  username=``, ``GET /user``.
- ``GET /projects/:id/issues`` and ``/merge_requests`` with ``updated_after`` (on or after),
  ``order_by=updated_at``, ``sort``, ``per_page`` (max 100), ``page``; ``X-Page``,
  ``X-Next-Page`` (empty on the last page), ``X-Total``, ``X-Total-Pages`` and ``Link``.
- issues and merge requests: ``GET``/``POST``/``PUT`` (``state_event`` close / reopen,
  ``labels`` comma-separated, ``assignee_ids``, ``reviewer_ids``); states opened, closed,
  merged; notes ``GET``/``POST``/``PUT``; merge request discussions (diff notes with a
  ``position``, replies, ``resolved``), ``approve``/``unapprove``, ``diffs`` and ``changes``,
  ``award_emoji``.
- 404 ``{"message": "404 Project Not Found"}`` and the like; 400 ``{"message": {"title":
  ["can't be blank"]}}``; 409 for a second open merge request of a branch; ``limit()``: 429
  with Retry-After and ``RateLimit-*`` headers.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from tests.integration.fakes.tracker_base import (
    Answer,
    FakeTracker,
    RateLimit,
    Request,
    iso,
    parse_iso,
)

TOKEN = "glpat-fake0123456789abcdef"
LOGIN = "preloop-bot"


class FakeGitLab(FakeTracker):
    name = "gitlab"

    def __init__(self, *, prefix: str = "", token: str = TOKEN) -> None:
        super().__init__()
        self.prefix = prefix.rstrip("/")
        self.token = token
        self.users: dict[str, dict[str, Any]] = {}
        self.projects: dict[str, dict[str, Any]] = {}
        self.legacy = False  # True: an older GitLab without ``/diffs`` (only ``/changes``)
        self._ids = 5000
        self.add_user(LOGIN)

    # --- seeding ---------------------------------------------------------------------------
    def _id(self) -> int:
        self._ids += 1
        return self._ids

    def add_user(self, username: str) -> dict[str, Any]:
        user = {"id": self._id(), "username": username, "name": username.title(), "state": "active"}
        self.users[username] = user
        return user

    def _user(self, username: str) -> dict[str, Any]:
        return self.users.get(username) or self.add_user(username)

    def add_project(self, path: str, *, description: str = "") -> dict[str, Any]:
        project = {
            "id": self._id(),
            "name": path.rsplit("/", 1)[-1],
            "path_with_namespace": path,
            "description": description,
            "default_branch": "main",
            "web_url": f"https://gitlab.example.com/{path}",
        }
        self.projects[path] = {
            "project": project,
            "issues": {},
            "mrs": {},
            "discussions": {},  # ("Issue"|"MergeRequest", iid) -> [discussion]
            "approvals": {},  # iid -> [username]
            "emoji": {},  # iid -> [award]
            "next": {"Issue": 1, "MergeRequest": 1},
        }
        return project

    def add_issue(
        self,
        path: str,
        title: str,
        description: str = "",
        *,
        labels: tuple[str, ...] = (),
        assignees: tuple[str, ...] = (),
        state: str = "opened",
        author: str = "alice",
    ) -> dict[str, Any]:
        with self._lock:
            return self._new("Issue", path, title, description, labels, assignees, state, author)

    def add_merge_request(
        self,
        path: str,
        title: str,
        description: str = "",
        *,
        source: str = "feature",
        target: str = "main",
        author: str = "alice",
    ) -> dict[str, Any]:
        with self._lock:
            return self._new_mr(path, title, description, source, target, (), (), (), author)

    def add_note(
        self, path: str, iid: int, body: str, *, mr: bool = False, author: str = "alice"
    ) -> dict[str, Any]:
        with self._lock:
            kind = "MergeRequest" if mr else "Issue"
            return self._new_discussion(path, kind, iid, body, author)["notes"][0]

    def merge(self, path: str, iid: int) -> dict[str, Any]:
        return self.touch(path, iid, mr=True, state="merged")

    def touch(self, path: str, iid: int, *, mr: bool = False, **fields: Any) -> dict[str, Any]:
        with self._lock:
            row = self.projects[path]["mrs" if mr else "issues"][iid]
            row.update(fields)
            row["updated_at"] = iso(self.tick())
            return row

    def issue(self, path: str, iid: int) -> dict[str, Any]:
        return self.projects[path]["issues"][iid]

    def merge_request(self, path: str, iid: int) -> dict[str, Any]:
        return self.projects[path]["mrs"][iid]

    def discussions_of(self, path: str, iid: int, *, mr: bool = True) -> list[dict[str, Any]]:
        kind = "MergeRequest" if mr else "Issue"
        return self.projects[path]["discussions"].get((kind, iid), [])

    def approvals_of(self, path: str, iid: int) -> list[str]:
        return list(self.projects[path]["approvals"].get(iid, []))

    def emoji_of(self, path: str, iid: int) -> list[str]:
        return [a["name"] for a in self.projects[path]["emoji"].get(iid, [])]

    # --- state changes ---------------------------------------------------------------------
    def _new(
        self,
        kind: str,
        path: str,
        title: str,
        description: str,
        labels: Any,
        assignees: Any,
        state: str,
        author: str,
    ) -> dict[str, Any]:
        data = self.projects[path]
        iid = data["next"][kind]
        data["next"][kind] += 1
        now = iso(self.tick())
        part = "issues" if kind == "Issue" else "merge_requests"
        row = {
            "id": self._id(),
            "iid": iid,
            "project_id": data["project"]["id"],
            "title": title,
            "description": description or None,
            "state": state,
            "labels": list(labels),
            "assignees": [self._user(u) for u in assignees],
            "author": self._user(author),
            "web_url": f"https://gitlab.example.com/{path}/-/{part}/{iid}",
            "created_at": now,
            "updated_at": now,
            "closed_at": now if state == "closed" else None,
            "user_notes_count": 0,
        }
        data["issues" if kind == "Issue" else "mrs"][iid] = row
        return row

    def _new_mr(
        self,
        path: str,
        title: str,
        description: str,
        source: str,
        target: str,
        labels: Any,
        assignees: Any,
        reviewers: Any,
        author: str,
    ) -> dict[str, Any]:
        row = self._new(
            "MergeRequest", path, title, description, labels, assignees, "opened", author
        )
        head = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - a fake commit id
        base = hashlib.sha1(target.encode()).hexdigest()  # noqa: S324 - a fake commit id
        row.update(
            {
                "source_branch": source,
                "target_branch": target,
                "draft": title.startswith(("Draft:", "[Draft]", "(Draft)")),
                "merged_at": None,
                "reviewers": [self._user(u) for u in reviewers],
                "sha": head,
                "diff_refs": {"base_sha": base, "head_sha": head, "start_sha": base},
                "_diffs": [
                    {
                        "old_path": "README.md",
                        "new_path": "README.md",
                        "new_file": False,
                        "deleted_file": False,
                        "renamed_file": False,
                        "diff": f"@@ -1 +1 @@\n-old\n+{title}\n",
                    }
                ],
            }
        )
        return row

    def _new_discussion(
        self,
        path: str,
        kind: str,
        iid: int,
        body: str,
        author: str,
        position: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        discussion = {
            "id": hashlib.sha1(f"{path}{kind}{iid}{self._ids}".encode()).hexdigest(),  # noqa: S324 - an id
            "individual_note": position is None,
            "notes": [],
        }
        self.projects[path]["discussions"].setdefault((kind, iid), []).append(discussion)
        self._new_note(path, kind, iid, discussion, body, author, position)
        return discussion

    def _new_note(
        self,
        path: str,
        kind: str,
        iid: int,
        discussion: dict[str, Any],
        body: str,
        author: str,
        position: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = iso(self.tick())
        diff = position is not None or (
            discussion["notes"] and discussion["notes"][0]["type"] == "DiffNote"
        )
        note = {
            "id": self._id(),
            "type": "DiffNote"
            if diff
            else (None if discussion["individual_note"] else "DiscussionNote"),
            "body": body,
            "author": self._user(author),
            "created_at": now,
            "updated_at": now,
            "system": False,
            "noteable_type": kind,
            "noteable_iid": iid,
            "resolvable": bool(diff),
            "resolved": False,
        }
        if position is not None:
            note["position"] = position
        elif diff:
            note["position"] = discussion["notes"][0]["position"]
        discussion["notes"].append(note)
        row = self.projects[path]["issues" if kind == "Issue" else "mrs"][iid]
        row["user_notes_count"] += 1
        row["updated_at"] = now
        return note

    # --- HTTP ------------------------------------------------------------------------------
    def rate_limit_answer(self, limit: RateLimit) -> Answer:
        reset = int(time.time()) + limit.retry_after
        return Answer(
            429,
            "Retry later\n",
            {
                "retry-after": str(limit.retry_after),
                "ratelimit-limit": "600",
                "ratelimit-remaining": "0",
                "ratelimit-reset": str(reset),
            },
        )

    def handle(self, request: Request) -> Answer:
        given = request.headers.get("private-token") or request.headers.get(
            "authorization", ""
        ).removeprefix("Bearer ")
        if given != self.token:
            return Answer(401, {"message": "401 Unauthorized"})
        segments = request.segments()
        prefix = [p for p in self.prefix.split("/") if p] + ["api", "v4"]
        if segments[: len(prefix)] != prefix:
            return Answer(404, {"error": "404 Not Found"})
        rest = segments[len(prefix) :]
        if rest == ["user"]:
            return Answer(200, self.users[LOGIN])
        if rest == ["users"]:
            name = request.query.get("username", "")
            return Answer(200, [self.users[name]] if name in self.users else [])
        if len(rest) < 2 or rest[0] != "projects":
            return Answer(404, {"error": "404 Not Found"})
        data = self._project(rest[1])
        if data is None:
            return Answer(404, {"message": "404 Project Not Found"})
        return self._route(request, data, rest[2:])

    def _project(self, ident: str) -> dict[str, Any] | None:
        if ident.isdigit():
            for data in self.projects.values():
                if data["project"]["id"] == int(ident):
                    return data
            return None
        return self.projects.get(ident)

    def _route(self, request: Request, data: dict[str, Any], rest: list[str]) -> Answer:
        method = request.method
        if not rest:
            return Answer(200, data["project"]) if method == "GET" else _no_route()
        collection = {"issues": "Issue", "merge_requests": "MergeRequest"}.get(rest[0])
        if collection is None:
            return _no_route()
        if len(rest) == 1:
            if method == "GET":
                return self._list(request, data, collection)
            if method == "POST":
                return self._create(request, data, collection)
            return _no_route()
        if not rest[1].isdigit():
            return _no_route()
        rows = data["issues" if collection == "Issue" else "mrs"]
        row = rows.get(int(rest[1]))
        if row is None:
            return Answer(404, {"message": f"404 {_label(collection)} Not Found"})
        sub = rest[2:]
        handler = self._sub_routes().get((method, len(sub), sub[0] if sub else ""))
        if handler is None:
            return _no_route()
        return handler(request, data, collection, row, sub)

    def _sub_routes(self) -> dict[tuple[str, int, str], Callable[..., Answer]]:
        return {
            ("GET", 0, ""): lambda r, d, c, row, s: Answer(200, _public(row)),
            ("PUT", 0, ""): self._update,
            ("GET", 1, "notes"): self._list_notes,
            ("POST", 1, "notes"): self._post_note,
            ("PUT", 2, "notes"): self._put_note,
            ("GET", 1, "discussions"): self._list_discussions,
            ("POST", 1, "discussions"): self._post_discussion,
            ("POST", 3, "discussions"): self._reply,
            ("PUT", 2, "discussions"): self._resolve,
            ("PUT", 4, "discussions"): self._put_discussion_note,
            ("POST", 1, "approve"): self._approve,
            ("POST", 1, "unapprove"): self._unapprove,
            ("GET", 1, "diffs"): self._diffs,
            ("GET", 1, "changes"): self._changes,
            ("GET", 1, "award_emoji"): self._list_emoji,
            ("POST", 1, "award_emoji"): self._post_emoji,
            ("DELETE", 2, "award_emoji"): self._delete_emoji,
        }

    def _list(self, request: Request, data: dict[str, Any], kind: str) -> Answer:
        q = request.query
        rows = list(data["issues" if kind == "Issue" else "mrs"].values())
        state = q.get("state", "all")
        if state != "all":
            rows = [r for r in rows if r["state"] == state]
        if "updated_after" in q:
            after = parse_iso(q["updated_after"])
            rows = [r for r in rows if parse_iso(r["updated_at"]) >= after]
        key = "updated_at" if q.get("order_by") == "updated_at" else "created_at"
        rows.sort(key=lambda r: (r[key], r["iid"]), reverse=q.get("sort", "desc") == "desc")
        return _paged(request, [_public(r) for r in rows])

    def _create(self, request: Request, data: dict[str, Any], kind: str) -> Answer:
        body = request.body or {}
        path = data["project"]["path_with_namespace"]
        if not body.get("title"):
            return Answer(400, {"message": {"title": ["can't be blank"]}})
        labels = _labels(body.get("labels"))
        assignees = self._usernames(body.get("assignee_ids"))
        if kind == "Issue":
            row = self._new(
                kind,
                path,
                body["title"],
                body.get("description", ""),
                labels,
                assignees,
                "opened",
                LOGIN,
            )
            return Answer(201, _public(row))
        for name in ("source_branch", "target_branch"):
            if not body.get(name):
                return Answer(400, {"error": f"{name} is missing"})
        for mr in data["mrs"].values():
            if mr["state"] == "opened" and mr["source_branch"] == body["source_branch"]:
                return Answer(
                    409,
                    {
                        "message": [
                            "Another open merge request already exists for this source "
                            f"branch: !{mr['iid']}"
                        ]
                    },
                )
        row = self._new_mr(
            path,
            body["title"],
            body.get("description", ""),
            body["source_branch"],
            body["target_branch"],
            labels,
            assignees,
            self._usernames(body.get("reviewer_ids")),
            LOGIN,
        )
        for name in ("squash", "remove_source_branch", "milestone_id"):
            if name in body:
                row[name] = body[name]
        return Answer(201, _public(row))

    def _usernames(self, ids: Any) -> list[str]:
        by_id = {u["id"]: name for name, u in self.users.items()}
        return [by_id[int(i)] for i in ids or [] if int(i) in by_id]

    def _update(self, request: Request, data, kind, row, sub) -> Answer:
        body = request.body or {}
        if "title" in body and not body["title"]:
            return Answer(400, {"message": {"title": ["can't be blank"]}})
        event = body.get("state_event")
        if event not in (None, "close", "reopen"):
            return Answer(400, {"error": "state_event does not have a valid value"})
        now = iso(self.tick())
        for name in ("title", "description"):
            if name in body:
                row[name] = body[name]
        if kind == "MergeRequest" and "title" in body:
            row["draft"] = body["title"].startswith(("Draft:", "[Draft]", "(Draft)"))
        if event == "close":
            row["state"], row["closed_at"] = "closed", now
        elif event == "reopen":
            row["state"], row["closed_at"] = "opened", None
        if "labels" in body:
            row["labels"] = _labels(body["labels"])
        if "assignee_ids" in body:
            row["assignees"] = [self.users[u] for u in self._usernames(body["assignee_ids"])]
        if "reviewer_ids" in body:
            row["reviewers"] = [self.users[u] for u in self._usernames(body["reviewer_ids"])]
        row["updated_at"] = now
        return Answer(200, _public(row))

    # notes and discussions
    def _notes(self, data, kind, row) -> list[dict[str, Any]]:
        found = data["discussions"].get((kind, row["iid"]), [])
        return [note for d in found for note in d["notes"]]

    def _list_notes(self, request: Request, data, kind, row, sub) -> Answer:
        notes = sorted(self._notes(data, kind, row), key=lambda n: n["created_at"])
        return _paged(request, notes)

    def _post_note(self, request: Request, data, kind, row, sub) -> Answer:
        body = (request.body or {}).get("body")
        if not body:
            return Answer(400, {"error": "body is missing"})
        path = data["project"]["path_with_namespace"]
        discussion = self._new_discussion(path, kind, row["iid"], body, LOGIN)
        return Answer(201, discussion["notes"][0])

    def _put_note(self, request: Request, data, kind, row, sub) -> Answer:
        for note in self._notes(data, kind, row):
            if str(note["id"]) == sub[1]:
                note["body"] = (request.body or {}).get("body", note["body"])
                note["updated_at"] = iso(self.tick())
                return Answer(200, note)
        return Answer(404, {"message": "404 Note Not Found"})

    def _list_discussions(self, request: Request, data, kind, row, sub) -> Answer:
        return _paged(request, list(data["discussions"].get((kind, row["iid"]), [])))

    def _post_discussion(self, request: Request, data, kind, row, sub) -> Answer:
        body = request.body or {}
        if not body.get("body"):
            return Answer(400, {"error": "body is missing"})
        position = body.get("position")
        if position is not None:
            refs = row.get("diff_refs") or {}
            if position.get("head_sha") != refs.get("head_sha") or not position.get("new_path"):
                return Answer(400, {"message": {"position": ["is invalid"]}})
        path = data["project"]["path_with_namespace"]
        discussion = self._new_discussion(path, kind, row["iid"], body["body"], LOGIN, position)
        return Answer(201, discussion)

    def _discussion(self, data, kind, row, ident: str) -> dict[str, Any] | None:
        for discussion in data["discussions"].get((kind, row["iid"]), []):
            if discussion["id"] == ident:
                return discussion
        return None

    def _reply(self, request: Request, data, kind, row, sub) -> Answer:
        discussion = self._discussion(data, kind, row, sub[1])
        if discussion is None or sub[2] != "notes":
            return Answer(404, {"message": "404 Discussion Not Found"})
        body = (request.body or {}).get("body")
        if not body:
            return Answer(400, {"error": "body is missing"})
        discussion["individual_note"] = False
        path = data["project"]["path_with_namespace"]
        return Answer(201, self._new_note(path, kind, row["iid"], discussion, body, LOGIN))

    def _resolve(self, request: Request, data, kind, row, sub) -> Answer:
        discussion = self._discussion(data, kind, row, sub[1])
        if discussion is None:
            return Answer(404, {"message": "404 Discussion Not Found"})
        wanted = str((request.body or {}).get("resolved", request.query.get("resolved")))
        if not any(n["resolvable"] for n in discussion["notes"]):
            return Answer(400, {"message": "Discussion is not resolvable"})
        for note in discussion["notes"]:
            note["resolved"] = wanted.lower() == "true"
        return Answer(200, discussion)

    def _put_discussion_note(self, request: Request, data, kind, row, sub) -> Answer:
        discussion = self._discussion(data, kind, row, sub[1])
        if discussion is None:
            return Answer(404, {"message": "404 Discussion Not Found"})
        for note in discussion["notes"]:
            if str(note["id"]) == sub[3]:
                body = request.body or {}
                if "body" in body:
                    note["body"] = body["body"]
                    note["updated_at"] = iso(self.tick())
                if "resolved" in body:
                    note["resolved"] = bool(body["resolved"])
                return Answer(200, note)
        return Answer(404, {"message": "404 Note Not Found"})

    # merge request extras
    def _approve(self, request: Request, data, kind, row, sub) -> Answer:
        if kind != "MergeRequest":
            return _no_route()
        approvals = data["approvals"].setdefault(row["iid"], [])
        if LOGIN in approvals:
            return Answer(401, {"message": "401 Unauthorized"})  # GitLab's answer, really
        approvals.append(LOGIN)
        return Answer(201, {"approved": True, "approved_by": [{"user": self.users[LOGIN]}]})

    def _unapprove(self, request: Request, data, kind, row, sub) -> Answer:
        approvals = data["approvals"].get(row["iid"], [])
        if LOGIN not in approvals:
            return Answer(404, {"message": "404 Not Found"})
        approvals.remove(LOGIN)
        return Answer(201, {"approved": False})

    def _diffs(self, request: Request, data, kind, row, sub) -> Answer:
        if self.legacy:
            return _no_route()
        return _paged(request, list(row.get("_diffs", [])))

    def _changes(self, request: Request, data, kind, row, sub) -> Answer:
        return Answer(200, {**_public(row), "changes": row.get("_diffs", [])})

    def _list_emoji(self, request: Request, data, kind, row, sub) -> Answer:
        return _paged(request, list(data["emoji"].get(row["iid"], [])))

    def _post_emoji(self, request: Request, data, kind, row, sub) -> Answer:
        name = (request.body or {}).get("name")
        if not name:
            return Answer(400, {"error": "name is missing"})
        awards = data["emoji"].setdefault(row["iid"], [])
        if any(a["name"] == name and a["user"]["username"] == LOGIN for a in awards):
            return Answer(404, {"message": "404 Award Emoji Name has already been taken"})
        award = {"id": self._id(), "name": name, "user": self.users[LOGIN]}
        awards.append(award)
        return Answer(201, award)

    def _delete_emoji(self, request: Request, data, kind, row, sub) -> Answer:
        awards = data["emoji"].get(row["iid"], [])
        data["emoji"][row["iid"]] = [a for a in awards if str(a["id"]) != sub[1]]
        return Answer(204)


def _label(kind: str) -> str:
    return "Issue" if kind == "Issue" else "Merge Request"


def _labels(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _no_route() -> Answer:
    return Answer(404, {"error": "404 Not Found"})


def _paged(request: Request, rows: list[dict[str, Any]]) -> Answer:
    per_page = max(1, min(int(request.query.get("per_page", "20")), 100))
    page = int(request.query.get("page", "1"))
    pages = max(1, -(-len(rows) // per_page))
    headers = {
        "x-page": str(page),
        "x-per-page": str(per_page),
        "x-total": str(len(rows)),
        "x-total-pages": str(pages),
        "x-next-page": str(page + 1) if page < pages else "",
        "x-prev-page": str(page - 1) if page > 1 else "",
    }
    if page < pages:
        query = urlencode({**request.query, "page": str(page + 1)})
        headers["link"] = f'<{request.base_url}{request.raw_path}?{query}>; rel="next"'
    return Answer(200, rows[(page - 1) * per_page : page * per_page], headers)
