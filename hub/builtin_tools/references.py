"""An issue, a pull/merge request or a project, as an agent names it, found among the
account's connected trackers.

    issue reference ─▶ Preloop's issue id ─▶ the index
                    ─▶ a key or URL the index knows (``owner/repo#12``, ``PROJ-12``, its URL)
                    ─▶ else parsed (a URL, ``owner/repo#12``, ``group/project!3``, ``PROJ-12``)
                       into (tracker, project, number) and read live from the tracker (which
                       writes it into the index)
    project         ─▶ the tracker that syncs it (``TRACKER:project`` picks one when several
                       do); no tracker syncs it ─▶ the account's one tracker of a fitting kind

Several matches are an error naming the trackers, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from hub.builtin_tools.results import BuiltinToolError
from hub.trackers.ports import TrackerStorage
from hub.trackers.records import Issue, IssueKind, Tracker, TrackerKind, issue_key

ALL_KINDS = frozenset(TrackerKind)
CODE_KINDS = frozenset({TrackerKind.GITHUB, TrackerKind.GITLAB})  # pull/merge requests

_HOSTED_KEY = re.compile(r"^(?P<project>[^\s#!]+/[^\s#!]+)(?P<mark>[#!])(?P<number>\d+)$")
_JIRA_KEY = re.compile(r"^(?P<project>[A-Za-z][A-Za-z0-9_]*)-(?P<number>\d+)$")
_GITHUB_PATH = re.compile(r"^/(?P<project>[^/]+/[^/]+)/(?P<what>issues|pull|pulls)/(?P<n>\d+)")
_GITLAB_PATH = re.compile(r"^/(?P<project>.+?)/-/(?P<what>issues|merge_requests)/(?P<n>\d+)")
_JIRA_PATH = re.compile(r"/browse/(?P<key>[A-Za-z][A-Za-z0-9_]*-\d+)")


@dataclass(frozen=True, slots=True)
class Parsed:
    """A reference parsed into the tracker's identifiers (no tracker chosen yet)."""

    kinds: frozenset[TrackerKind]
    project: str
    number: str
    pull_request: bool | None  # None: the reference does not say
    host: str | None = None


@dataclass(frozen=True, slots=True)
class Located:
    """An issue reference resolved to a tracker: ``issue`` when the index holds it."""

    tracker: Tracker
    project: str
    number: str
    pull_request: bool
    issue: Issue | None = None


def parse(reference: str) -> Parsed | None:
    """What a reference names, when it is a URL or a key; ``None`` otherwise."""
    text = reference.strip()
    if text.startswith(("http://", "https://")):
        url = urlsplit(text)
        path = url.path.rstrip("/")
        if (found := _GITLAB_PATH.match(path)) is not None:
            mr = found["what"] == "merge_requests"
            kinds = frozenset({TrackerKind.GITLAB})
            number = f"!{found['n']}" if mr else found["n"]  # a merge request's number (0086)
            return Parsed(kinds, found["project"], number, mr, url.hostname)
        if (found := _JIRA_PATH.search(path)) is not None:
            key = found["key"].upper()
            kinds = frozenset({TrackerKind.JIRA})
            return Parsed(kinds, key.rsplit("-", 1)[0], key, False, url.hostname)
        if (found := _GITHUB_PATH.match(path)) is not None:
            pr = found["what"] != "issues"
            kinds = frozenset({TrackerKind.GITHUB})
            return Parsed(kinds, found["project"], found["n"], pr, url.hostname)
        return None
    if (found := _HOSTED_KEY.match(text)) is not None:
        if found["mark"] == "!":  # a GitLab merge request, numbered !IID (decision 0086)
            gitlab = frozenset({TrackerKind.GITLAB})
            return Parsed(gitlab, found["project"], f"!{found['number']}", True)
        return Parsed(CODE_KINDS, found["project"], found["number"], None)
    if (found := _JIRA_KEY.match(text)) is not None:
        key = text.upper()
        return Parsed(frozenset({TrackerKind.JIRA}), found["project"].upper(), key, False)
    return None


class References:
    """Finds what references name, for one account, in its trackers and their index."""

    def __init__(self, storage: TrackerStorage, account_id: str) -> None:
        self._storage = storage
        self._account = account_id
        self._trackers: Sequence[Tracker] | None = None

    async def trackers(self) -> Sequence[Tracker]:
        if self._trackers is None:
            self._trackers = await self._storage.trackers.list(self._account)
        return self._trackers

    async def tracker(self, tracker_id: str) -> Tracker:
        for tracker in await self.trackers():
            if tracker.id == tracker_id:
                return tracker
        raise BuiltinToolError(f"the tracker of this issue ({tracker_id}) is no longer connected")

    async def locate(self, reference: str, what: str) -> Located:
        """The issue ``reference`` names: from the index when it holds it, else parsed."""
        issues = self._storage.issues
        by_id = await issues.get(self._account, reference) if reference.startswith("iss") else None
        if by_id is not None:
            return await self._located(by_id)
        known = [i for i in await issues.find(self._account, reference.strip()) if not i.deleted]
        if len(known) > 1:
            names = sorted({(await self.tracker(i.tracker_id)).name for i in known})
            raise BuiltinToolError(
                f"{what} {reference!r} matches issues of several trackers ({', '.join(names)}): "
                "name it by its URL or Preloop's issue id"
            )
        if known:
            return await self._located(known[0])
        parsed = parse(reference)
        if parsed is None:
            raise BuiltinToolError(
                f"{what} {reference!r} is not an issue Preloop knows: give its URL, its key "
                "(owner/repo#12, group/project!3, PROJ-12) or Preloop's issue id"
            )
        tracker = await self._tracker_for(parsed.project, parsed.kinds, parsed.host, what)
        pull_request = bool(parsed.pull_request)
        key = issue_key(
            tracker.kind,
            parsed.project,
            parsed.number,
            IssueKind.PULL_REQUEST if pull_request else IssueKind.ISSUE,
        )
        indexed = [i for i in await issues.find(self._account, key) if i.tracker_id == tracker.id]
        if indexed:
            return await self._located(indexed[0])
        return Located(tracker, parsed.project, parsed.number, pull_request)

    async def _located(self, issue: Issue) -> Located:
        tracker = await self.tracker(issue.tracker_id)
        pull_request = issue.kind is IssueKind.PULL_REQUEST
        return Located(tracker, issue.project, issue.number, pull_request, issue)

    async def project(
        self, project: str, kinds: frozenset[TrackerKind] = ALL_KINDS, what: str = "project"
    ) -> tuple[Tracker, str]:
        """The tracker of ``project`` (``TRACKER:project`` names the tracker too)."""
        name, sep, rest = project.partition(":")
        if sep and rest and "/" not in name:
            for tracker in await self.trackers():
                if tracker.name == name:
                    _check_kind(tracker, kinds, what)
                    return tracker, _spelled(tracker, rest)
        tracker = await self._tracker_for(project, kinds, None, what)
        return tracker, _spelled(tracker, project)

    async def _tracker_for(
        self, project: str, kinds: frozenset[TrackerKind], host: str | None, what: str
    ) -> Tracker:
        trackers = await self.trackers()
        if not trackers:
            raise BuiltinToolError(NO_TRACKER)
        fitting = [t for t in trackers if t.kind in kinds]
        if host is not None:
            fitting = [t for t in fitting if _same_site(t, host)] or fitting
        syncing = [t for t in fitting if _syncs(t, project)]
        if len(syncing) == 1:
            return syncing[0]
        if len(syncing) > 1:
            names = ", ".join(t.name for t in syncing)
            raise BuiltinToolError(
                f"{what} {project!r} is synced by several trackers ({names}): write "
                f"TRACKER:{project} (e.g. {syncing[0].name}:{project}) to pick one"
            )
        if len(fitting) == 1:  # the one tracker that can have it, though it does not sync it
            return fitting[0]
        if not fitting:
            wanted = " or ".join(sorted(k.value for k in kinds))
            have = ", ".join(f"{t.name} ({t.kind.value})" for t in trackers)
            raise BuiltinToolError(
                f"{what} {project!r} needs a {wanted} tracker; this account has: {have}"
            )
        listed = "; ".join(f"{t.name}: {', '.join(t.projects) or 'no projects'}" for t in fitting)
        raise BuiltinToolError(
            f"no connected tracker syncs {what} {project!r} (trackers and their projects: "
            f"{listed}); write TRACKER:{project} to pick one"
        )


NO_TRACKER = (
    "No issue tracker is connected to this account: an administrator adds one with "
    "'preloop trackers add' (GitHub, GitLab or Jira)."
)


def _syncs(tracker: Tracker, project: str) -> bool:
    if tracker.kind is TrackerKind.JIRA:
        return project.upper() in (p.upper() for p in tracker.projects)
    return project in tracker.projects


def _spelled(tracker: Tracker, project: str) -> str:
    """The project as the tracker syncs it (Jira keys are upper case: ``ops`` is ``OPS``)."""
    if tracker.kind is TrackerKind.JIRA:
        return next((p for p in tracker.projects if p.upper() == project.upper()), project.upper())
    return project


def _same_site(tracker: Tracker, host: str) -> bool:
    """Whether a URL's host is the tracker's site (github.com for api.github.com)."""
    base = (urlsplit(tracker.base_url).hostname or "").lower()
    host = host.lower()
    return base == host or base == f"api.{host}"


def _check_kind(tracker: Tracker, kinds: frozenset[TrackerKind], what: str) -> None:
    if tracker.kind not in kinds:
        wanted = " or ".join(sorted(k.value for k in kinds))
        raise BuiltinToolError(
            f"tracker {tracker.name!r} is a {tracker.kind.value} tracker; {what} needs {wanted}"
        )


def require_kind(tracker: Tracker, kinds: frozenset[TrackerKind], tool: str) -> None:
    """Refuse a tool the tracker's kind cannot do (pull requests on Jira)."""
    if tracker.kind not in kinds:
        raise BuiltinToolError(
            f"{tool} works on GitHub and GitLab trackers; {tracker.name!r} is a "
            f"{tracker.kind.value} tracker, which has no pull or merge requests or review "
            "threads"
            if kinds == CODE_KINDS
            else f"{tool} cannot run on the {tracker.kind.value} tracker {tracker.name!r}"
        )
