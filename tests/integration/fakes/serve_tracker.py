"""Run a tracker fake by hand, to try ``preloop trackers add`` and ``preloop sync scan``
against it (the README's "Connect a tracker", a benchmark):

    .venv/bin/python -m tests.integration.fakes.serve_tracker github --port 8765 --issues 50

prints the base URL, the project and the token to store (``export GH_TOKEN=...`` and
``--token env:GH_TOKEN``), then serves until interrupted.
"""

from __future__ import annotations

import argparse

import uvicorn

from tests.integration.fakes import github, gitlab, jira
from tests.integration.fakes.tracker_base import FakeTracker


def seeded(kind: str, issues: int) -> tuple[FakeTracker, str, str, str]:
    """(fake, project, token, note) with ``issues`` issues, a pull/merge request and a
    comment."""
    if kind == "github":
        hub = github.FakeGitHub()
        hub.add_repo("acme/app", description="A fake repository")
        for n in range(issues):
            hub.add_issue("acme/app", f"Issue {n + 1}", f"Body of issue {n + 1}", labels=("bug",))
        pull = hub.add_pull("acme/app", "A pull request", head="feature")
        hub.add_comment("acme/app", pull["number"], "Looks good")
        return hub, "acme/app", github.TOKEN, ""
    if kind == "gitlab":
        lab = gitlab.FakeGitLab()
        lab.add_project("acme/api", description="A fake project")
        for n in range(issues):
            lab.add_issue("acme/api", f"Issue {n + 1}", f"Body of issue {n + 1}")
        lab.add_merge_request("acme/api", "A merge request")
        lab.add_note("acme/api", 1, "Looks good", mr=True)
        return lab, "acme/api", gitlab.TOKEN, ""
    site = jira.FakeJira()
    site.add_project("OPS", "Operations")
    for n in range(issues):
        site.add_issue("OPS", f"Issue {n + 1}", f"Body of issue {n + 1}")
    return site, "OPS", jira.TOKEN, f"--username {jira.EMAIL}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["github", "gitlab", "jira"])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--issues", type=int, default=20)
    args = parser.parse_args()
    fake, project, token, note = seeded(args.kind, args.issues)
    print(f"base URL  http://127.0.0.1:{args.port}")
    print(f"project   {project}")
    print(f"token     {token}  {note}".rstrip())
    uvicorn.run(fake, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
