"""The audit search's keyset paging (``before_seq``), its ``server`` and free-text (``q``)
filters, and the export narrowed by the same filters, through the REST API."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import Api


async def _record(api: Api, count: int) -> str:
    account = await api.hub.identity.default_account()
    for n in range(count):
        server = "git" if n % 2 else "db"
        await api.hub.auditor.record(
            account.id, "tool.call", "key_agent", {"server": server, "tool": f"t{n}", "n": n}
        )
    return account.id


async def _search(api: Api, **params: Any) -> Any:
    response = await api.client.get("/api/v1/audit/", params=params, headers=api.auth())
    assert 200 == response.status_code, response.text
    return response.json()


async def test_pages_newest_first_by_keyset_until_the_first_event(api: Api) -> None:
    await _record(api, 25)
    seen: list[int] = []
    params: dict[str, Any] = {"kind": "tool.call", "limit": 10}
    while True:
        page = [e["seq"] for e in await _search(api, **params)]
        seen += page
        if len(page) < 10:
            break
        params["before_seq"] = page[-1]
    assert 25 == len(seen)
    assert sorted(seen, reverse=True) == seen  # newest first, none twice


async def test_server_and_text_filters(api: Api) -> None:
    await _record(api, 6)
    git = await _search(api, server="git")
    assert {"git"} == {e["data"]["server"] for e in git}
    assert 3 == len(git)
    found = await _search(api, q="T4")  # the data, any case
    assert [4] == [e["data"]["n"] for e in found]
    refused = await api.client.get("/api/v1/audit/", params={"before_seq": 0}, headers=api.auth())
    assert 400 == refused.status_code


async def test_export_follows_the_filters_and_without_them_is_everything(api: Api) -> None:
    await _record(api, 6)
    narrowed = await api.client.get(
        "/api/v1/audit/export", params={"server": "db", "q": "t"}, headers=api.auth()
    )
    assert 200 == narrowed.status_code
    lines = [json.loads(line) for line in narrowed.text.splitlines()]
    assert [0, 2, 4] == [line["data"]["n"] for line in lines]  # oldest first
    everything = await api.client.get("/api/v1/audit/export", headers=api.auth())
    seqs = [json.loads(line)["seq"] for line in everything.text.splitlines()]
    assert list(range(1, len(seqs) + 1)) == seqs
    assert len(seqs) > 6  # the first start's own events too
