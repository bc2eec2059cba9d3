"""A seeded set of short issue texts with known duplicate pairs, for measuring how well an
embedder finds duplicates by "cosine >= threshold".

33 issues in 4 topics (sign-in, exports, notifications, performance). ``DUPLICATES`` lists the
9 pairs that report the same problem: 4 near-copies (the same report reworded a little, as
people file again what they cannot find) and 5 paraphrases (the same problem in other
words). Every other pair is a non-duplicate, including issues of the same topic that share
vocabulary (``"export to CSV drops columns"`` and ``"export to PDF is blank"``).
"""

from __future__ import annotations

from itertools import combinations
from typing import NamedTuple

from hub.search import Embedder, cosine

ISSUES: dict[str, str] = {
    # sign-in
    "login-1": "Login fails with 500 error after password reset. After resetting my password "
    "the login page shows an internal server error 500 and I cannot sign in.",
    "login-2": "Login fails with error 500 after a password reset. After I reset my password "
    "the login page shows internal server error 500 and I can't sign in.",
    "login-3": "SSO sign-in through Okta redirects in a loop. Clicking sign in with Okta "
    "redirects back to the login page forever.",
    "login-4": "Okta single sign-on keeps redirecting back to the login page in an endless "
    "loop, signing in with Okta never finishes.",
    "login-5": "Add two-factor authentication with TOTP apps such as Google Authenticator.",
    "login-6": "Session expires too quickly: users are logged out after five minutes idle.",
    "login-7": "Password rules: require at least twelve characters for new passwords.",
    "login-8": "Remember me checkbox on the login page does not keep users signed in.",
    # exports
    "export-1": "Export to CSV drops columns. When exporting the issue list to CSV the "
    "labels and assignee columns are missing from the file.",
    "export-2": "Export to CSV drops columns: exporting the issue list to a CSV file misses "
    "the labels and assignee columns.",
    "export-3": "Export to PDF produces a blank page for reports with charts.",
    "export-4": "PDF export of a report with charts gives an empty blank page instead of the "
    "charts.",
    "export-5": "Excel export corrupts non-ASCII characters such as é and ü in titles.",
    "export-6": "Exported xlsx files show garbled accented characters (é, ü) in issue titles.",
    "export-7": "Schedule a weekly export emailed to the project owners.",
    "export-8": "Export button is hidden on small screens below 600 pixels.",
    # notifications
    "notify-1": "Slack notifications are sent twice for every new comment on an issue.",
    "notify-2": "Every new issue comment sends two duplicate Slack notifications.",
    "notify-3": "Email digest arrives at midnight UTC instead of the user's time zone.",
    "notify-4": "Allow muting notifications for a single project.",
    "notify-5": "Webhook deliveries to Microsoft Teams fail with 400 bad request.",
    "notify-6": "Push notifications on mobile do not open the issue when tapped.",
    "notify-7": "Notification settings page does not save the chosen channels.",
    "notify-8": "Add a Discord integration for issue notifications.",
    "notify-9": "Webhook deliveries to Microsoft Teams fail with a 400 Bad Request error.",
    # performance
    "perf-1": "Issue list page is very slow to load with 10,000 issues, it takes 30 seconds.",
    "perf-2": "Loading the issue list takes about 30 seconds when a project has 10,000 issues,"
    " the page is very slow.",
    "perf-3": "Memory leak in the sync worker: memory grows until the process is killed.",
    "perf-4": "The sync worker process leaks memory and keeps growing until it gets killed "
    "by the OOM killer.",
    "perf-5": "Search API times out for queries with many label filters.",
    "perf-6": "Dashboard charts re-render on every keystroke in the filter box.",
    "perf-7": "Database connection pool exhausted under load, requests wait for connections.",
    "perf-8": "Cache issue counts per project to speed up the sidebar.",
}

NEAR_COPIES = frozenset(
    {
        ("login-1", "login-2"),
        ("export-1", "export-2"),
        ("perf-1", "perf-2"),
        ("notify-5", "notify-9"),
    }
)
PARAPHRASES = frozenset(
    {
        ("login-3", "login-4"),
        ("export-3", "export-4"),
        ("export-5", "export-6"),
        ("notify-1", "notify-2"),
        ("perf-3", "perf-4"),
    }
)
DUPLICATES = NEAR_COPIES | PARAPHRASES


class Measured(NamedTuple):
    precision: float  # of the pairs at or above the threshold, the share that are duplicates
    recall: float  # of the duplicate pairs, the share at or above the threshold
    found: frozenset[tuple[str, str]]  # the pairs at or above the threshold


async def similarities(embedder: Embedder) -> dict[tuple[str, str], float]:
    """The cosine of every pair of ``ISSUES`` (each pair once, ids in sorted order)."""
    ids = sorted(ISSUES)
    vectors = dict(zip(ids, await embedder.embed([ISSUES[i] for i in ids]), strict=True))
    return {(a, b): cosine(vectors[a], vectors[b]) for a, b in combinations(ids, 2)}


def measure(scores: dict[tuple[str, str], float], threshold: float) -> Measured:
    found = frozenset(pair for pair, score in scores.items() if score >= threshold)
    hits = len(found & DUPLICATES)
    precision = hits / len(found) if found else 0.0
    return Measured(precision, hits / len(DUPLICATES), found)
