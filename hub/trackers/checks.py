"""Checking what a person writes when connecting a tracker, with messages that name the field.

    name         letters, digits, '.', '_', '-' (1-100), like a provider's
    kind         github | gitlab | jira
    base_url     https://host[:port][/path] (http only for a loopback host: a token is sent
                 with every request); no credentials, query or fragment
    projects     per kind: GitHub ``owner/repo``; GitLab ``group[/subgroup...]/project``;
                 Jira a project key (``PROJ``: an upper-case letter, then upper-case letters,
                 digits or ``_``)
    username     Jira Cloud only (the account e-mail its API token belongs to)
    poll_seconds 0 (never polled: webhooks and scans only) or 60 to 604800

The identifiers of ``organization`` + ``project`` (the product description's REST API) are
matched against a tracker's projects by :func:`project_in`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from hub.errors import ValidationError
from hub.trackers.records import Tracker, TrackerKind

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,99}$"
GITHUB_PROJECT = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$"
GITLAB_PROJECT = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}(?:/[A-Za-z0-9_][A-Za-z0-9._-]{0,254}){1,20}$"
JIRA_PROJECT = r"^[A-Z][A-Z0-9_]{1,49}$"
PROJECT_PATTERNS = {
    TrackerKind.GITHUB: (GITHUB_PROJECT, "owner/repo, e.g. spacecode/astrobot"),
    TrackerKind.GITLAB: (GITLAB_PROJECT, "group[/subgroup]/project, e.g. acme/platform/api"),
    TrackerKind.JIRA: (JIRA_PROJECT, "a project key, e.g. PROJ"),
}
MAX_PROJECTS = 100
MIN_POLL_SECONDS, MAX_POLL_SECONDS = 60, 604_800
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_NAME = re.compile(NAME_PATTERN)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValidationError(
            f"name: invalid tracker name {name!r}: 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_kind(kind: str) -> TrackerKind:
    try:
        return TrackerKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in TrackerKind)
        raise ValidationError(f"kind: invalid tracker kind {kind!r}: one of {kinds}") from None


def check_base_url(url: str) -> str:
    """An https URL with a host (http for a loopback host only), without a trailing slash."""
    text = url.strip()
    parts = urlsplit(text)
    example = "e.g. https://api.github.com, https://gitlab.example.com, https://acme.atlassian.net"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"base_url: invalid URL {url!r}: expected https://host[/path], {example}"
        )
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise ValidationError(
            f"base_url: {url!r} is plain http: the tracker's token would cross the network "
            "unencrypted; use https (http is accepted for localhost only)"
        )
    if parts.username or parts.password:
        raise ValidationError(
            "base_url: credentials in the URL are not allowed; keep the token in custody and "
            "name it with token_ref (--token)"
        )
    if parts.query or parts.fragment:
        raise ValidationError(f"base_url: {url!r} has a query string or fragment; leave them out")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValidationError(f"base_url: {url!r} has an invalid port") from None
    return text.rstrip("/")


def check_projects(kind: TrackerKind, projects: Iterable[str]) -> tuple[str, ...]:
    """The projects, checked for ``kind``'s syntax, without duplicates, in the order given."""
    pattern, expected = PROJECT_PATTERNS[kind]
    checked: list[str] = []
    for project in projects:
        project = project.strip()
        if not re.match(pattern, project):
            raise ValidationError(
                f"projects: invalid {kind.value} project {project!r}: expected {expected}"
            )
        if project.lower() not in (p.lower() for p in checked):
            checked.append(project)
    if len(checked) > MAX_PROJECTS:
        raise ValidationError(f"projects: at most {MAX_PROJECTS} per tracker")
    return tuple(checked)


def check_username(kind: TrackerKind, username: str | None) -> str | None:
    if username is None or not username.strip():
        return None
    if kind is not TrackerKind.JIRA:
        raise ValidationError(
            f"username: only Jira uses one (the account e-mail of its API token), not {kind.value}"
        )
    if len(username) > 320 or any(c.isspace() for c in username.strip()):
        raise ValidationError("username: an e-mail or account name without spaces, at most 320")
    return username.strip()


def check_poll_seconds(seconds: int) -> int:
    if seconds != 0 and not MIN_POLL_SECONDS <= seconds <= MAX_POLL_SECONDS:
        raise ValidationError(
            f"poll_seconds: {seconds} is out of range: 0 (never poll; webhooks and scans only) "
            f"or {MIN_POLL_SECONDS} to {MAX_POLL_SECONDS}"
        )
    return seconds


def jira_site_matches(base_url: str, organization: str) -> bool:
    """Whether ``organization`` names the Jira site at ``base_url``: its host
    (``acme.atlassian.net``), the host's first label (``acme``) or the URL itself."""
    host = (urlsplit(base_url).hostname or "").lower()
    wanted = organization.strip().lower().rstrip("/")
    if "://" in wanted:
        wanted = (urlsplit(wanted).hostname or "").lower()
    return wanted in (host, host.split(".", 1)[0])


def project_in(tracker: Tracker, organization: str | None, project: str) -> str | None:
    """The project of ``tracker`` that ``organization`` + ``project`` name, as the tracker
    spells it, or ``None``. GitHub: owner + repo; GitLab: group (with subgroups) + project;
    Jira: the site + the project key. Without an organization, ``project`` is the whole
    identifier (``owner/repo``, ``group/project``, ``PROJ``). Matching ignores case, as the
    trackers do."""
    org = (organization or "").strip().strip("/")
    name = project.strip().strip("/")
    if not name:
        return None
    if tracker.kind is TrackerKind.JIRA:
        if org and not jira_site_matches(tracker.base_url, org):
            return None
        wanted = name
    else:
        wanted = f"{org}/{name}" if org else name
    return next((p for p in tracker.projects if p.lower() == wanted.lower()), None)
