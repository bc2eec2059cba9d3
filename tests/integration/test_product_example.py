"""The product description's REST example ("Using the REST API"), copied verbatim, run against a
live server (uvicorn on 127.0.0.1) whose tracker is the GitHub fake serving spacecode/astrobot.

The only change to the example is its ``base_url`` line, pointed at the live server instead of
http://localhost:8000 (the test server listens on an ephemeral port); every other line runs as
the description prints it. The user ``your-username`` logs in with ``your-password``.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.records import Role
from server.hub_services import Hub
from tests.integration.conftest import LiveServer, make_settings, run_live, serve_asgi
from tests.integration.fakes.github import TOKEN, FakeGitHub

# The product description's example, as it prints it (its lines are not indented there).
EXAMPLE = """\
import requests
import json
base_url = "http://localhost:8000/api/v1"
auth_response = requests.post(
f"{base_url}/auth/token",
json={"username": "your-username", "password": "your-password"}
)
token = auth_response.json()["access_token"]
headers = {"Authorization": f"Bearer {token}"}
connection = requests.post(
f"{base_url}/projects/test-connection",
headers=headers,
json={
"organization": "spacecode",
"project": "astrobot"
}
)
print(json.dumps(connection.json(), indent=2))
results = requests.get(
f"{base_url}/issues/search",
headers=headers,
params={
"organization": "spacecode",
"project": "astrobot",
"query": "authentication problems",
"limit": 5
}
)
print(json.dumps(results.json(), indent=2))
issue = requests.post(
f"{base_url}/issues",
headers=headers,
json={
"organization": "spacecode",
"project": "astrobot",
"title": "Improve login error messages",
"description": "Current error messages are not clear enough...",
"labels": ["enhancement", "authentication"],
"priority": "High"
}
)
print(json.dumps(issue.json(), indent=2))
"""
LOCALHOST = 'base_url = "http://localhost:8000/api/v1"'


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    fake.add_repo("spacecode/astrobot", description="The astronomy bot")
    fake.add_issue(
        "spacecode/astrobot",
        "Users report authentication problems after the upgrade",
        "Logins with SSO fail with a vague message.",
        labels=("bug", "authentication"),
    )
    fake.add_issue("spacecode/astrobot", "Add a dark mode", "Night owls ask for it.")
    with serve_asgi(fake, "the fake GitHub", lifespan="off") as url:
        yield fake, url


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    async def user_with_password(hub: Hub) -> None:
        account = await hub.identity.default_account()
        # a login's username is the user's email, or their name when no other user has it
        user = await hub.identity.add_user(
            account.id, email="astro@spacecode.example", name="your-username", actor="test"
        )
        await hub.logins.set_password(
            account.id, user.id, "your-password", role=Role.AGENT, actor="test"
        )
        await hub.custody.put(account.id, "local:github-token", TOKEN, actor="test")

    with run_live(make_settings(tmp_path), on_ready=user_with_password) as live:
        yield live


def test_the_product_descriptions_rest_example_runs_unchanged(
    server: LiveServer, github: tuple[FakeGitHub, str]
) -> None:
    fake, fake_url = github
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    connected = httpx.post(
        f"{server.url}/api/v1/trackers",
        headers=admin,
        json={
            "name": "github",
            "kind": "github",
            "base_url": fake_url,
            "token_ref": "local:github-token",
            "projects": ["spacecode/astrobot"],
        },
    )
    assert 201 == connected.status_code, connected.text
    synced = httpx.post(f"{server.url}/api/v1/trackers/github/sync", headers=admin, timeout=60)
    assert '"type":"report"' in synced.text, synced.text

    source = EXAMPLE.replace(LOCALHOST, f'base_url = "{server.url}/api/v1"')
    assert 1 == EXAMPLE.count(LOCALHOST)  # the one line changed
    out = io.StringIO()
    names: dict[str, Any] = {}
    with contextlib.redirect_stdout(out):
        exec(compile(source, "product-description-example.py", "exec"), names)  # noqa: S102

    assert 200 == names["auth_response"].status_code
    connection = names["connection"].json()
    assert (True, "spacecode/astrobot") == (connection["success"], connection["details"]["project"])
    results = names["results"].json()
    assert 200 == names["results"].status_code
    assert "fulltext" == results["engine"]
    assert ["Users report authentication problems after the upgrade"] == [
        r["title"] for r in results["results"]
    ]
    assert 201 == names["issue"].status_code
    issue = names["issue"].json()
    assert ("Improve login error messages", ["enhancement", "authentication"]) == (
        issue["title"],
        issue["labels"],
    )
    # created in the tracker, and in the index a search reads
    titles = [i["title"] for i in fake.repos["spacecode/astrobot"]["issues"].values()]
    assert "Improve login error messages" in titles
    found = httpx.get(
        f"{server.url}/api/v1/issues/search",
        headers=admin,
        params={"project": "spacecode/astrobot", "query": "login error messages"},
    )
    assert issue["id"] == found.json()["results"][0]["id"]
    # what the example prints: three JSON documents
    printed = out.getvalue()
    decoder = json.JSONDecoder()
    documents, index = [], 0
    while index < len(printed.rstrip()):
        document, index = decoder.raw_decode(printed, index)
        documents.append(document)
        index += 1
    assert [connection, results, issue] == documents
