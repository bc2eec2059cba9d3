"""A stateful local fake of GitHub's REST API (api.github.com, or GitHub Enterprise Server under
``/api/v3``), enough for the tracker adapter's every call, served on 127.0.0.1.

Seed it (``add_repo``, ``add_issue``, ``add_pull``, ``add_comment``, ``add_review_comment``,
``touch``), point the adapter at it, assert on ``requests``. It speaks GitHub's JSON shapes:

- ``Authorization: Bearer TOKEN`` (or ``token TOKEN``); else 401 ``Bad credentials``.
- ``GET /repos/{o}/{r}``, ``GET /user``.
- ``GET /repos/{o}/{r}/issues`` with ``state``, ``since`` (updated at or after), ``sort=updated``,
  ``direction``, ``per_page`` (max 100), ``page``; a ``Link`` header with ``next``/``last``; an
  ``ETag`` (a hash of the page), and 304 when ``If-None-Match`` carries it. Pull requests are in
  the list with a ``pull_request`` key, as on GitHub.
- issues: ``GET``/``PATCH /issues/{n}``, ``POST /issues`` (422 without a title), comments
  ``GET``/``POST /issues/{n}/comments``, ``GET``/``PATCH /issues/comments/{id}``, reactions
  ``GET``/``POST /issues/{n}/reactions``, ``DELETE /issues/{n}/reactions/{id}``.
- pulls: ``GET /pulls/{n}`` (the diff with ``Accept: application/vnd.github.diff``), ``POST
  /pulls``, ``PATCH /pulls/{n}``, review comments ``GET``/``POST /pulls/{n}/comments`` (with
  ``in_reply_to``), ``GET``/``PATCH /pulls/comments/{id}``, ``POST /pulls/{n}/requested_reviewers``,
  ``POST /pulls/{n}/reviews`` (``event`` APPROVE / REQUEST_CHANGES / COMMENT, ``comments``).
- 404 ``Not Found`` for an unknown repository, issue or route; ``limit()`` switches on
  rate-limit answers: 429 with Retry-After, or GitHub's 403s (``style="primary"``:
  ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset``; ``style="secondary"``: Retry-After
  and "secondary rate limit").
"""

from __future__ import annotations

import hashlib
import json
import re
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

TOKEN = "ghp_fake0123456789abcdefghijklmnopqrstu"
LOGIN = "preloop-bot"
DOCS = "https://docs.github.com/rest"
NOT_FOUND = {"message": "Not Found", "documentation_url": DOCS, "status": "404"}


class FakeGitHub(FakeTracker):
    name = "github"

    def __init__(self, *, prefix: str = "", token: str = TOKEN) -> None:
        """``prefix``: ``/api/v3`` to play GitHub Enterprise Server."""
        super().__init__()
        self.prefix = prefix.rstrip("/")
        self.token = token
        self.repos: dict[str, dict[str, Any]] = {}
        self._ids = 1000

    # --- seeding ---------------------------------------------------------------------------
    def _id(self) -> int:
        self._ids += 1
        return self._ids

    def add_repo(self, full_name: str, *, description: str = "", default_branch: str = "main"):
        owner, name = full_name.split("/")
        self.repos[full_name] = {
            "repo": {
                "id": self._id(),
                "name": name,
                "full_name": full_name,
                "owner": {"login": owner},
                "description": description,
                "default_branch": default_branch,
                "html_url": f"https://github.com/{full_name}",
                "private": False,
            },
            "issues": {},  # number -> issue JSON (pull requests too, with "pull_request")
            "pulls": {},  # number -> the pull request's own fields
            "comments": {},  # id -> issue comment JSON (with "_number")
            "review_comments": {},  # id -> review comment JSON (with "_number")
            "reactions": {},  # number -> [reaction JSON]
            "reviews": {},  # number -> [review JSON]
            "next": 1,
        }
        return self.repos[full_name]["repo"]

    def add_issue(
        self,
        repo: str,
        title: str,
        body: str = "",
        *,
        labels: tuple[str, ...] = (),
        assignees: tuple[str, ...] = (),
        state: str = "open",
        author: str = "octocat",
    ) -> dict[str, Any]:
        with self._lock:
            return self._new_issue(repo, title, body, labels, assignees, state, author)

    def add_pull(
        self,
        repo: str,
        title: str,
        body: str = "",
        *,
        head: str = "feature",
        base: str = "main",
        draft: bool = False,
        diff: str = "",
        author: str = "octocat",
    ) -> dict[str, Any]:
        with self._lock:
            return self._new_pull(repo, title, body, head, base, draft, diff, author)

    def add_comment(self, repo: str, number: int, body: str, author: str = "octocat"):
        with self._lock:
            return self._new_comment(repo, number, body, author)

    def add_review_comment(
        self, repo: str, number: int, body: str, *, path: str, line: int, author: str = "octocat"
    ) -> dict[str, Any]:
        with self._lock:
            return self._new_review_comment(repo, number, body, path, line, "RIGHT", None, author)

    def touch(self, repo: str, number: int, **fields: Any) -> dict[str, Any]:
        """Change fields of an issue (or none) and move its ``updated_at`` to the clock's next
        second, as an edit on GitHub does."""
        with self._lock:
            issue = self.repos[repo]["issues"][number]
            issue.update(fields)
            issue["updated_at"] = iso(self.tick())
            return issue

    def issue(self, repo: str, number: int) -> dict[str, Any]:
        return self.repos[repo]["issues"][number]

    def pull(self, repo: str, number: int) -> dict[str, Any]:
        return self.repos[repo]["pulls"][number]

    def comments_of(self, repo: str, number: int) -> list[dict[str, Any]]:
        return [c for c in self.repos[repo]["comments"].values() if c["_number"] == number]

    def review_comments_of(self, repo: str, number: int) -> list[dict[str, Any]]:
        found = self.repos[repo]["review_comments"].values()
        return [c for c in found if c["_number"] == number]

    def reviews_of(self, repo: str, number: int) -> list[dict[str, Any]]:
        return list(self.repos[repo]["reviews"].get(number, []))

    def reactions_of(self, repo: str, number: int) -> list[dict[str, Any]]:
        return list(self.repos[repo]["reactions"].get(number, []))

    # --- state changes ---------------------------------------------------------------------
    def _new_issue(
        self,
        repo: str,
        title: str,
        body: str,
        labels: tuple[str, ...] | list[str],
        assignees: tuple[str, ...] | list[str],
        state: str,
        author: str,
    ) -> dict[str, Any]:
        data = self.repos[repo]
        number = data["next"]
        data["next"] += 1
        now = iso(self.tick())
        issue = {
            "id": self._id(),
            "node_id": f"I_{number}",
            "number": number,
            "title": title,
            "body": body or None,
            "state": state,
            "state_reason": None,
            "labels": [_label(name) for name in labels],
            "assignees": [_user(login) for login in assignees],
            "assignee": _user(assignees[0]) if assignees else None,
            "user": _user(author),
            "comments": 0,
            "html_url": f"https://github.com/{repo}/issues/{number}",
            "url": f"https://api.github.com/repos/{repo}/issues/{number}",
            "created_at": now,
            "updated_at": now,
            "closed_at": now if state == "closed" else None,
        }
        data["issues"][number] = issue
        return issue

    def _new_pull(
        self,
        repo: str,
        title: str,
        body: str,
        head: str,
        base: str,
        draft: bool,
        diff: str,
        author: str,
    ) -> dict[str, Any]:
        issue = self._new_issue(repo, title, body, (), (), "open", author)
        number = issue["number"]
        issue["html_url"] = f"https://github.com/{repo}/pull/{number}"
        issue["pull_request"] = {
            "url": f"https://api.github.com/repos/{repo}/pulls/{number}",
            "html_url": issue["html_url"],
            "merged_at": None,
        }
        self.repos[repo]["pulls"][number] = {
            "id": self._id(),
            "head": {"ref": head, "sha": hashlib.sha1(head.encode()).hexdigest(), "label": head},  # noqa: S324 - a fake commit id
            "base": {"ref": base, "sha": hashlib.sha1(base.encode()).hexdigest(), "label": base},  # noqa: S324 - a fake commit id
            "draft": draft,
            "merged": False,
            "merged_at": None,
            "mergeable": True,
            "requested_reviewers": [],
            "diff": diff
            or f"diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n"
            f"@@ -1 +1 @@\n-old\n+{title}\n",
        }
        return issue

    def _new_comment(self, repo: str, number: int, body: str, author: str) -> dict[str, Any]:
        now = iso(self.tick())
        comment_id = self._id()
        comment = {
            "id": comment_id,
            "_number": number,
            "body": body,
            "user": _user(author),
            "html_url": f"https://github.com/{repo}/issues/{number}#issuecomment-{comment_id}",
            "created_at": now,
            "updated_at": now,
        }
        self.repos[repo]["comments"][comment_id] = comment
        issue = self.repos[repo]["issues"][number]
        issue["comments"] += 1
        issue["updated_at"] = now
        return comment

    def _new_review_comment(
        self,
        repo: str,
        number: int,
        body: str,
        path: str,
        line: int,
        side: str,
        in_reply_to: int | None,
        author: str,
        review_id: int | None = None,
    ) -> dict[str, Any]:
        now = iso(self.tick())
        comment_id = self._id()
        comment = {
            "id": comment_id,
            "_number": number,
            "pull_request_review_id": review_id,
            "body": body,
            "path": path,
            "line": line,
            "side": side,
            "user": _user(author),
            "html_url": f"https://github.com/{repo}/pull/{number}#discussion_r{comment_id}",
            "created_at": now,
            "updated_at": now,
        }
        if in_reply_to is not None:
            comment["in_reply_to_id"] = in_reply_to
        self.repos[repo]["review_comments"][comment_id] = comment
        self.repos[repo]["issues"][number]["updated_at"] = now
        return comment

    # --- HTTP ------------------------------------------------------------------------------
    def forbidden_answer(self) -> Answer:
        return Answer(
            403,
            {
                "message": "Resource not accessible by personal access token",
                "documentation_url": DOCS,
                "status": "403",
            },
            {"x-accepted-github-permissions": "issues=write"},
        )

    def rate_limit_answer(self, limit: RateLimit) -> Answer:
        if limit.style == "primary":
            reset = int(time.time()) + limit.retry_after  # epoch seconds, as GitHub sends
            return Answer(
                403,
                {
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
                },
                {
                    "x-ratelimit-limit": "5000",
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-used": "5000",
                    "x-ratelimit-reset": str(reset),
                    "x-ratelimit-resource": "core",
                },
            )
        if limit.style == "secondary":
            return Answer(
                403,
                {
                    "message": "You have exceeded a secondary rate limit. Please wait a few "
                    "minutes before you try again.",
                    "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
                },
                {"retry-after": str(limit.retry_after)},
            )
        return Answer(
            429, {"message": "Too Many Requests"}, {"retry-after": str(limit.retry_after)}
        )

    def handle(self, request: Request) -> Answer:
        auth = request.headers.get("authorization", "")
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
            return Answer(401, {"message": "Bad credentials", "documentation_url": DOCS})
        path = request.path
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return Answer(404, NOT_FOUND)
            path = path.removeprefix(self.prefix)
        if path == "/user":
            return Answer(200, _user(LOGIN))
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if match and request.method == method:
                owner_repo = f"{match['owner']}/{match['repo']}"
                data = self.repos.get(owner_repo)
                if data is None:
                    return Answer(404, NOT_FOUND)
                args = {k: v for k, v in match.groupdict().items() if k not in ("owner", "repo")}
                return handler(request, owner_repo, data, **args)
        return Answer(404, NOT_FOUND)

    def _routes(self) -> list[tuple[str, str, Callable[..., Answer]]]:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        n = r"(?P<number>\d+)"
        c = r"(?P<comment_id>\d+)"
        return [
            ("GET", repo, lambda r, name, data: Answer(200, data["repo"])),
            ("GET", f"{repo}/issues", self._list_issues),
            ("POST", f"{repo}/issues", self._create_issue),
            ("GET", f"{repo}/issues/{n}", self._get_issue),
            ("PATCH", f"{repo}/issues/{n}", self._patch_issue),
            ("GET", f"{repo}/issues/{n}/comments", self._list_comments),
            ("POST", f"{repo}/issues/{n}/comments", self._post_comment),
            ("GET", f"{repo}/issues/comments/{c}", self._get_comment),
            ("PATCH", f"{repo}/issues/comments/{c}", self._patch_comment),
            ("GET", f"{repo}/issues/{n}/reactions", self._list_reactions),
            ("POST", f"{repo}/issues/{n}/reactions", self._post_reaction),
            ("DELETE", f"{repo}/issues/{n}/reactions/(?P<reaction_id>\\d+)", self._del_reaction),
            ("GET", f"{repo}/pulls/{n}", self._get_pull),
            ("POST", f"{repo}/pulls", self._create_pull),
            ("PATCH", f"{repo}/pulls/{n}", self._patch_pull),
            ("GET", f"{repo}/pulls/{n}/comments", self._list_review_comments),
            ("POST", f"{repo}/pulls/{n}/comments", self._post_review_comment),
            ("GET", f"{repo}/pulls/comments/{c}", self._get_review_comment),
            ("PATCH", f"{repo}/pulls/comments/{c}", self._patch_review_comment),
            ("POST", f"{repo}/pulls/{n}/requested_reviewers", self._request_reviewers),
            ("POST", f"{repo}/pulls/{n}/reviews", self._post_review),
        ]

    # issues
    def _list_issues(self, request: Request, repo: str, data: dict[str, Any]) -> Answer:
        q = request.query
        state = q.get("state", "open")
        rows = [i for i in data["issues"].values() if state == "all" or i["state"] == state]
        if "since" in q:
            since = parse_iso(q["since"])
            rows = [i for i in rows if parse_iso(i["updated_at"]) >= since]
        key = "updated_at" if q.get("sort") == "updated" else "created_at"
        rows.sort(key=lambda i: (i[key], i["number"]), reverse=q.get("direction") != "asc")
        per_page = min(int(q.get("per_page", "30")), 100)
        page = int(q.get("page", "1"))
        chunk = rows[(page - 1) * per_page : page * per_page]
        body = [_public(i) for i in chunk]
        etag = 'W/"' + hashlib.sha256(json.dumps(body).encode()).hexdigest() + '"'
        headers = {"etag": etag}
        last = max(1, -(-len(rows) // per_page))
        links = []
        if page < last:
            links.append(f'<{_page_url(request, page + 1)}>; rel="next"')
            links.append(f'<{_page_url(request, last)}>; rel="last"')
        if links:
            headers["link"] = ", ".join(links)
        if request.headers.get("if-none-match") == etag:
            return Answer(304, None, {"etag": etag})
        return Answer(200, body, headers)

    def _get_issue(self, request: Request, repo: str, data: dict[str, Any], number: str):
        issue = data["issues"].get(int(number))
        return Answer(200, _public(issue)) if issue else Answer(404, NOT_FOUND)

    def _create_issue(self, request: Request, repo: str, data: dict[str, Any]) -> Answer:
        body = request.body or {}
        if not body.get("title"):
            return _invalid("Issue", "title", "missing_field")
        issue = self._new_issue(
            repo,
            body["title"],
            body.get("body") or "",
            body.get("labels", []),
            body.get("assignees", []),
            "open",
            LOGIN,
        )
        return Answer(201, _public(issue))

    def _patch_issue(self, request: Request, repo: str, data: dict[str, Any], number: str):
        issue = data["issues"].get(int(number))
        if issue is None:
            return Answer(404, NOT_FOUND)
        body = request.body or {}
        if "state" in body and body["state"] not in ("open", "closed"):
            return _invalid("Issue", "state", "invalid")
        if "title" in body and not body["title"]:
            return _invalid("Issue", "title", "missing_field")
        self._apply(issue, body)
        return Answer(200, _public(issue))

    def _apply(self, issue: dict[str, Any], body: dict[str, Any]) -> None:
        now = iso(self.tick())
        for name in ("title", "body"):
            if name in body:
                issue[name] = body[name]
        if "state" in body:
            issue["state"] = body["state"]
            issue["closed_at"] = now if body["state"] == "closed" else None
            if "state_reason" in body:
                issue["state_reason"] = body["state_reason"]
        if "labels" in body:
            issue["labels"] = [
                _label(n if isinstance(n, str) else n["name"]) for n in body["labels"]
            ]
        if "assignees" in body:
            issue["assignees"] = [_user(login) for login in body["assignees"]]
            issue["assignee"] = issue["assignees"][0] if issue["assignees"] else None
        issue["updated_at"] = now

    # comments
    def _list_comments(self, request: Request, repo: str, data: dict[str, Any], number: str):
        if int(number) not in data["issues"]:
            return Answer(404, NOT_FOUND)
        rows = [_public(c) for c in data["comments"].values() if c["_number"] == int(number)]
        return _paged(request, rows)

    def _post_comment(self, request: Request, repo: str, data: dict[str, Any], number: str):
        if int(number) not in data["issues"]:
            return Answer(404, NOT_FOUND)
        body = request.body or {}
        if not body.get("body"):
            return _invalid("IssueComment", "body", "missing_field")
        return Answer(201, _public(self._new_comment(repo, int(number), body["body"], LOGIN)))

    def _get_comment(self, request: Request, repo: str, data: dict[str, Any], comment_id: str):
        comment = data["comments"].get(int(comment_id))
        return Answer(200, _public(comment)) if comment else Answer(404, NOT_FOUND)

    def _get_review_comment(
        self, request: Request, repo: str, data: dict[str, Any], comment_id: str
    ) -> Answer:
        comment = data["review_comments"].get(int(comment_id))
        return Answer(200, _public(comment)) if comment else Answer(404, NOT_FOUND)

    def _patch_comment(self, request: Request, repo: str, data: dict[str, Any], comment_id: str):
        comment = data["comments"].get(int(comment_id))
        if comment is None:
            return Answer(404, NOT_FOUND)
        comment["body"] = (request.body or {}).get("body", comment["body"])
        comment["updated_at"] = iso(self.tick())
        return Answer(200, _public(comment))

    # reactions
    def _list_reactions(self, request: Request, repo: str, data: dict[str, Any], number: str):
        rows = data["reactions"].get(int(number), [])
        content = request.query.get("content")
        return _paged(request, [r for r in rows if content is None or r["content"] == content])

    def _post_reaction(self, request: Request, repo: str, data: dict[str, Any], number: str):
        if int(number) not in data["issues"]:
            return Answer(404, NOT_FOUND)
        content = (request.body or {}).get("content")
        allowed = {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}
        if content not in allowed:
            return _invalid("Reaction", "content", "invalid")
        rows = data["reactions"].setdefault(int(number), [])
        for row in rows:
            if row["content"] == content and row["user"]["login"] == LOGIN:
                return Answer(200, row)
        reaction = {"id": self._id(), "content": content, "user": _user(LOGIN)}
        rows.append(reaction)
        return Answer(201, reaction)

    def _del_reaction(
        self, request: Request, repo: str, data: dict[str, Any], number: str, reaction_id: str
    ) -> Answer:
        rows = data["reactions"].get(int(number), [])
        data["reactions"][int(number)] = [r for r in rows if r["id"] != int(reaction_id)]
        return Answer(204)

    # pulls
    def _pull_json(self, repo: str, data: dict[str, Any], number: int) -> dict[str, Any]:
        issue, pull = data["issues"][number], data["pulls"][number]
        return {
            "id": pull["id"],
            "number": number,
            "state": issue["state"],
            "title": issue["title"],
            "body": issue["body"],
            "draft": pull["draft"],
            "merged": pull["merged"],
            "merged_at": pull["merged_at"],
            "mergeable": pull["mergeable"],
            "head": pull["head"],
            "base": pull["base"],
            "user": issue["user"],
            "labels": issue["labels"],
            "assignees": issue["assignees"],
            "requested_reviewers": pull["requested_reviewers"],
            "html_url": issue["html_url"],
            "diff_url": issue["html_url"] + ".diff",
            "issue_url": issue["url"],
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
            "closed_at": issue["closed_at"],
        }

    def _get_pull(self, request: Request, repo: str, data: dict[str, Any], number: str):
        if int(number) not in data["pulls"]:
            return Answer(404, NOT_FOUND)
        if request.headers.get("accept") == "application/vnd.github.diff":
            return Answer(200, data["pulls"][int(number)]["diff"], {"content-type": "text/plain"})
        return Answer(200, self._pull_json(repo, data, int(number)))

    def _create_pull(self, request: Request, repo: str, data: dict[str, Any]) -> Answer:
        body = request.body or {}
        for field in ("title", "head", "base"):
            if not body.get(field):
                return _invalid("PullRequest", field, "missing_field")
        for pull in data["pulls"].values():
            if pull["head"]["ref"] == body["head"] and pull["base"]["ref"] == body["base"]:
                return Answer(
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": f"A pull request already exists for {body['head']}.",
                            }
                        ],
                        "documentation_url": DOCS,
                    },
                )
        issue = self._new_pull(
            repo,
            body["title"],
            body.get("body") or "",
            body["head"],
            body["base"],
            bool(body.get("draft")),
            "",
            LOGIN,
        )
        return Answer(201, self._pull_json(repo, data, issue["number"]))

    def _patch_pull(self, request: Request, repo: str, data: dict[str, Any], number: str):
        if int(number) not in data["pulls"]:
            return Answer(404, NOT_FOUND)
        body = dict(request.body or {})
        pull = data["pulls"][int(number)]
        if "base" in body:
            pull["base"] = {"ref": body.pop("base"), "sha": "0" * 40, "label": ""}
        self._apply(data["issues"][int(number)], body)
        return Answer(200, self._pull_json(repo, data, int(number)))

    def _list_review_comments(self, request: Request, repo: str, data: dict[str, Any], number: str):
        if int(number) not in data["pulls"]:
            return Answer(404, NOT_FOUND)
        rows = [_public(c) for c in data["review_comments"].values() if c["_number"] == int(number)]
        return _paged(request, rows)

    def _post_review_comment(self, request: Request, repo: str, data: dict[str, Any], number: str):
        if int(number) not in data["pulls"]:
            return Answer(404, NOT_FOUND)
        body = request.body or {}
        if not body.get("body"):
            return _invalid("PullRequestReviewComment", "body", "missing_field")
        reply_to = body.get("in_reply_to")
        if reply_to is not None:
            parent = data["review_comments"].get(int(reply_to))
            if parent is None:
                return Answer(404, NOT_FOUND)
            path, line, side = parent["path"], parent["line"], parent["side"]
        else:
            if not body.get("path") or body.get("line") is None:
                return _invalid("PullRequestReviewComment", "path", "missing_field")
            path, line, side = body["path"], int(body["line"]), body.get("side", "RIGHT")
        comment = self._new_review_comment(
            repo, int(number), body["body"], path, line, side, reply_to, LOGIN
        )
        return Answer(201, _public(comment))

    def _patch_review_comment(
        self, request: Request, repo: str, data: dict[str, Any], comment_id: str
    ) -> Answer:
        comment = data["review_comments"].get(int(comment_id))
        if comment is None:
            return Answer(404, NOT_FOUND)
        comment["body"] = (request.body or {}).get("body", comment["body"])
        comment["updated_at"] = iso(self.tick())
        return Answer(200, _public(comment))

    def _request_reviewers(self, request: Request, repo: str, data: dict[str, Any], number: str):
        if int(number) not in data["pulls"]:
            return Answer(404, NOT_FOUND)
        pull = data["pulls"][int(number)]
        known = {r["login"] for r in pull["requested_reviewers"]}
        for login in (request.body or {}).get("reviewers", []):
            if login not in known:
                pull["requested_reviewers"].append(_user(login))
        data["issues"][int(number)]["updated_at"] = iso(self.tick())
        return Answer(201, self._pull_json(repo, data, int(number)))

    def _post_review(self, request: Request, repo: str, data: dict[str, Any], number: str):
        if int(number) not in data["pulls"]:
            return Answer(404, NOT_FOUND)
        body = request.body or {}
        event = body.get("event", "PENDING")
        if event in ("REQUEST_CHANGES", "COMMENT") and not body.get("body"):
            return Answer(
                422,
                {
                    "message": "Unprocessable Entity",
                    "errors": [f"Review Can not {event.lower()} without a body"],
                    "documentation_url": DOCS,
                },
            )
        states = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}
        review = {
            "id": self._id(),
            "user": _user(LOGIN),
            "body": body.get("body", ""),
            "state": states.get(event, "COMMENTED" if event == "COMMENT" else "PENDING"),
            "submitted_at": iso(self.tick()),
        }
        data["reviews"].setdefault(int(number), []).append(review)
        for item in body.get("comments", []):
            self._new_review_comment(
                repo,
                int(number),
                item["body"],
                item["path"],
                int(item["line"]),
                item.get("side", "RIGHT"),
                None,
                LOGIN,
                review["id"],
            )
        return Answer(200, review)


def _user(login: str) -> dict[str, Any]:
    return {"login": login, "id": sum(login.encode()), "type": "User"}


def _label(name: str) -> dict[str, Any]:
    return {"id": sum(name.encode()), "name": name, "color": "ededed"}


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _invalid(resource: str, field: str, code: str) -> Answer:
    return Answer(
        422,
        {
            "message": "Validation Failed",
            "errors": [{"resource": resource, "field": field, "code": code}],
            "documentation_url": DOCS,
        },
    )


def _page_url(request: Request, page: int) -> str:
    query = {**request.query, "page": str(page)}
    return f"{request.base_url}{request.path}?{urlencode(query)}"


def _paged(request: Request, rows: list[dict[str, Any]]) -> Answer:
    per_page = min(int(request.query.get("per_page", "30")), 100)
    page = int(request.query.get("page", "1"))
    last = max(1, -(-len(rows) // per_page))
    headers = {}
    if page < last:
        following, final = _page_url(request, page + 1), _page_url(request, last)
        headers["link"] = f'<{following}>; rel="next", <{final}>; rel="last"'
    return Answer(200, rows[(page - 1) * per_page : page * per_page], headers)
