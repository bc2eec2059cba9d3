"""The trackers' HTTP seam (server/trackers/_http.py) over httpx's mock transport: what a
rate limit's wait is, what each tracker's error body says, and that a token echoed back
never reaches a message."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from hub.errors import TrackerError
from hub.trackers.records import TrackerKind
from server.trackers._http import (
    RetryPolicy,
    TrackerHttp,
    parse_time,
    rate_limit_wait,
    tracker_message,
)

NOW = 1_800_000_000.0
TOKEN = "ghp_secret_value_123"


def _response(status: int, headers: dict[str, str] | None = None, **kw: object) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, **kw)  # type: ignore[arg-type]


def test_rate_limit_waits():
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert rate_limit_wait(_response(429, {"retry-after": "7"}), NOW) == 7.0
    assert rate_limit_wait(_response(429, {"retry-after": date}), NOW) == 30.0
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 42)}
    assert rate_limit_wait(_response(403, reset), NOW) == 42.0
    assert rate_limit_wait(_response(429, {"ratelimit-reset": str(int(NOW) + 5)}), NOW) == 5.0
    assert rate_limit_wait(_response(429), NOW) == 60.0
    secondary = _response(403, json={"message": "You have exceeded a secondary rate limit."})
    assert rate_limit_wait(secondary, NOW) == 60.0
    assert rate_limit_wait(_response(403, json={"message": "Resource not accessible"}), NOW) is None
    assert rate_limit_wait(_response(404), NOW) is None


def test_each_trackers_error_body_is_read():
    github = {"message": "Validation Failed", "errors": [{"field": "title", "code": "missing"}]}
    gitlab = {"message": {"title": ["can't be blank"], "base": ["is invalid"]}}
    jira = {"errorMessages": ["Bad JQL"], "errors": {"summary": "required"}}
    assert tracker_message(_response(422, json=github)) == "Validation Failed; title missing"
    assert tracker_message(_response(400, json=gitlab)) == "title: can't be blank; base: is invalid"
    assert tracker_message(_response(400, json=jira)) == "Bad JQL; summary: required"
    assert tracker_message(_response(500, text="Bad gateway\n")) == "Bad gateway"


def _http(handler, retry: RetryPolicy | None = None) -> TrackerHttp:  # type: ignore[no-untyped-def]
    return TrackerHttp(
        kind=TrackerKind.GITHUB,
        base_url="https://api.github.com",
        auth_headers={"Authorization": f"Bearer {TOKEN}"},
        token_ref="local:gh",
        secrets=(TOKEN,),
        retry=retry or RetryPolicy(attempts=0),
        transport=httpx.MockTransport(handler),
    )


async def test_a_token_echoed_by_the_tracker_is_scrubbed():
    http = _http(lambda request: httpx.Response(401, json={"message": f"bad token {TOKEN}"}))
    with pytest.raises(TrackerError) as rejected:
        await http.request("GET", "/user", project="o/r")
    await http.close()
    assert TOKEN not in rejected.value.message
    assert "bad token ***" in rejected.value.message
    assert "local:gh" in rejected.value.message


async def test_server_errors_and_foreign_page_hosts():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(502, text="upstream down")

    http = _http(handler)
    with pytest.raises(TrackerError) as failed:
        await http.request("GET", "/repos/o/r", project="o/r")
    with pytest.raises(TrackerError) as elsewhere:
        await http.request("GET", "https://evil.example/steal?page=2", project="o/r")
    await http.close()
    assert failed.value.status == 502
    assert "upstream down" in failed.value.message
    assert "try again later" in failed.value.message
    assert "evil.example" in elsewhere.value.message
    assert seen == ["https://api.github.com/repos/o/r"]


def test_tracker_timestamps_parse_timezone_aware():
    assert parse_time("2026-01-05T09:00:01Z").isoformat() == "2026-01-05T09:00:01+00:00"
    assert parse_time("2026-01-05T09:00:01.123Z").microsecond == 123000
    assert parse_time("2026-01-05T11:00:01.000+0200").isoformat() == ("2026-01-05T11:00:01+02:00")


async def test_a_transient_server_error_is_asked_again_for_reads_only():
    answers = [503, 502, 200, 503]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(answers.pop(0), json={})

    http = _http(handler, RetryPolicy(attempts=3, sleep=sleep))
    read = await http.request("GET", "/repos/o/r", project="o/r")
    with pytest.raises(TrackerError) as write:
        await http.request("POST", "/repos/o/r/issues", project="o/r", json={})
    await http.close()
    assert read.status_code == 200
    assert waits == [1.0, 2.0]
    assert write.value.status == 503
