"""Fixtures of the adapter tests: each fake served on 127.0.0.1, and a retry policy whose
waits are recorded instead of slept (no test depends on time passing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from server.trackers._http import RetryPolicy
from tests.integration.conftest import serve_asgi
from tests.integration.fakes.github import FakeGitHub
from tests.integration.fakes.gitlab import FakeGitLab
from tests.integration.fakes.jira import FakeJira


class Waits:
    """A ``RetryPolicy`` that records each wait it is asked for."""

    def __init__(self, max_wait: float = 5.0, attempts: int = 3) -> None:
        self.seen: list[float] = []
        self.policy = RetryPolicy(attempts=attempts, max_wait=max_wait, sleep=self._sleep)

    async def _sleep(self, seconds: float) -> None:
        self.seen.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    with serve_asgi(fake, "the fake GitHub", lifespan="off") as url:
        yield fake, url


@pytest.fixture
def github_enterprise() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub(prefix="/api/v3")
    with serve_asgi(fake, "the fake GitHub Enterprise", lifespan="off") as url:
        yield fake, f"{url}/api/v3"


@pytest.fixture
def gitlab() -> Iterator[tuple[FakeGitLab, str]]:
    fake = FakeGitLab()
    with serve_asgi(fake, "the fake GitLab", lifespan="off") as url:
        yield fake, url


@pytest.fixture
def gitlab_prefixed() -> Iterator[tuple[FakeGitLab, str]]:
    fake = FakeGitLab(prefix="/gitlab")
    with serve_asgi(fake, "the fake GitLab under /gitlab", lifespan="off") as url:
        yield fake, f"{url}/gitlab"


@pytest.fixture
def jira() -> Iterator[tuple[FakeJira, str]]:
    fake = FakeJira(time_zone="Europe/Athens")
    with serve_asgi(fake, "the fake Jira", lifespan="off") as url:
        yield fake, url
