"""``organization`` + ``project`` as each tracker names them (decision 0095), through the REST
API and the real adapters against the GitLab and Jira fakes on 127.0.0.1: a GitLab group with
subgroups + project, a Jira site + project key; and a tracker's refusal as the API shows it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub.records import Role
from tests.integration.conftest import Api, serve_asgi
from tests.integration.fakes import gitlab, jira
from tests.integration.fakes.gitlab import FakeGitLab
from tests.integration.fakes.jira import FakeJira


@pytest.fixture
def fake_gitlab() -> Iterator[tuple[FakeGitLab, str]]:
    fake = FakeGitLab()
    fake.add_project("acme/platform/api", description="The API")
    fake.add_issue("acme/platform/api", "Token refresh fails", "authentication problems")
    with serve_asgi(fake, "the fake GitLab", lifespan="off") as url:
        yield fake, url


@pytest.fixture
def fake_jira() -> Iterator[tuple[FakeJira, str]]:
    fake = FakeJira()
    fake.add_project("PROJ", "Project")
    with serve_asgi(fake, "the fake Jira", lifespan="off") as url:
        yield fake, url


async def connect(api: Api, secret: str, value: str, **tracker: Any) -> None:
    account_id = (await api.hub.identity.default_account()).id
    await api.hub.custody.put(account_id, f"local:{secret}", value, actor="test")
    body = {"token_ref": f"local:{secret}", **tracker}
    answer = await api.client.post("/api/v1/trackers", json=body, headers=api.auth())
    assert 201 == answer.status_code, answer.text


async def test_a_gitlab_group_with_subgroups_and_a_project(
    api: Api, fake_gitlab: tuple[FakeGitLab, str]
) -> None:
    fake, url = fake_gitlab
    await connect(
        api, "gl", gitlab.TOKEN, name="lab", kind="gitlab", base_url=url,
        projects=["acme/platform/api"],
    )  # fmt: skip
    agent = api.auth(await api.key(Role.AGENT))
    where = {"organization": "acme/platform", "project": "api"}
    tested = await api.client.post("/api/v1/projects/test-connection", json=where, headers=agent)
    assert (True, "acme/platform/api", "lab") == (
        tested.json()["success"],
        tested.json()["details"]["project"],
        tested.json()["details"]["tracker"],
    )
    synced = await api.client.post("/api/v1/trackers/lab/sync", headers=api.auth())
    assert '"type":"report"' in synced.text
    found = await api.client.get(
        "/api/v1/issues/search", params={**where, "query": "authentication"}, headers=agent
    )
    assert [("acme/platform/api#1", "lab")] == [
        (r["key"], r["tracker"]) for r in found.json()["results"]
    ]
    created = await api.client.post(
        "/api/v1/issues", json={**where, "title": "Rotate tokens", "labels": ["security"]},
        headers=agent,
    )  # fmt: skip
    assert 201 == created.status_code, created.text
    assert ["Token refresh fails", "Rotate tokens"] == [
        i["title"] for i in fake.projects["acme/platform/api"]["issues"].values()
    ]


async def test_a_jira_site_and_project_key(api: Api, fake_jira: tuple[FakeJira, str]) -> None:
    fake, url = fake_jira
    await connect(
        api, "jira", jira.TOKEN, name="jira", kind="jira", base_url=url, projects=["PROJ"],
        username=jira.EMAIL,
    )  # fmt: skip
    agent = api.auth(await api.key(Role.AGENT))
    site = {"organization": "127.0.0.1", "project": "proj"}  # the fake's host is the site
    tested = await api.client.post("/api/v1/projects/test-connection", json=site, headers=agent)
    assert (True, "PROJ") == (tested.json()["success"], tested.json()["details"]["project"])
    other_site = {"organization": "acme.atlassian.net", "project": "PROJ"}
    missing = await api.client.post(
        "/api/v1/projects/test-connection", json=other_site, headers=agent
    )
    assert 404 == missing.status_code
    created = await api.client.post(
        "/api/v1/issues", json={**site, "title": "Improve login error messages",
                                "priority": "High"},
        headers=agent,
    )  # fmt: skip
    assert 201 == created.status_code, created.text
    assert ("PROJ-1", "High") == (created.json()["key"], created.json()["priority"])
    assert ["PROJ-1"] == list(fake.issues)


async def test_a_tracker_that_refuses_is_a_failed_test_and_a_502(
    api: Api, fake_gitlab: tuple[FakeGitLab, str]
) -> None:
    _, url = fake_gitlab
    await connect(
        api, "wrong", "glpat-not-the-token", name="lab", kind="gitlab", base_url=url,
        projects=["acme/platform/api"],
    )  # fmt: skip
    where = {"organization": "acme/platform", "project": "api"}
    tested = await api.client.post(
        "/api/v1/projects/test-connection", json=where, headers=api.auth()
    )
    assert 200 == tested.status_code
    assert (False, None) == (tested.json()["success"], tested.json()["details"])
    assert "401" in tested.json()["message"]
    assert "glpat-not-the-token" not in tested.text
    created = await api.client.post(
        "/api/v1/issues", json={**where, "title": "x"}, headers=api.auth()
    )
    assert 502 == created.status_code
    assert "TrackerError" == created.json()["error"]["type"]
    assert "glpat-not-the-token" not in created.text
