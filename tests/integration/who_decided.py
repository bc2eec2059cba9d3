"""One check every channel's test makes once a request is decided: who decided is recorded
in the same shape whichever channel it came through (docs/decisions/0054-who-decided.md).

The request's ``decided_by``, its vote's ``approver`` and the actor of the audit's
``approval.voted`` and ``approval.decided`` are the person; ``decided_by_name`` and the vote's
``approver_name`` their name; ``decided_via``, the vote's ``via`` and the audit's ``via`` the
credential (``key:<id>``, ``slack:<id>``, ``mattermost:<id>``, ``email:<link id>``,
``device:<id>``)."""

from __future__ import annotations

from typing import Any

import httpx


class Decider:
    """What the checks found, for the test to compare with what it expects."""

    def __init__(self, person: str, name: str, via: str) -> None:
        self.person, self.name, self.via = person, name, via

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decider) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Decider(person={self.person!r}, name={self.name!r}, via={self.via!r})"


async def who_decided(
    http: httpx.AsyncClient, request_id: str, headers: dict[str, str] | None = None
) -> Decider:
    """The decider of ``request_id`` (the last vote decided it), after checking that the
    request, the vote and both audit records agree on every field. ``http`` reads with an
    admin key (its own, or ``headers``)."""
    detail = (await http.get(f"/api/v1/approvals/{request_id}", headers=headers)).json()
    request, vote = detail["request"], detail["votes"][-1]
    found = Decider(request["decided_by"], request["decided_by_name"], request["decided_via"])
    assert vars(found) == {
        "person": vote["approver"],
        "name": vote["approver_name"],
        "via": vote["via"],
    }
    audited: dict[str, Any] = {}
    for kind in ("approval.voted", "approval.decided"):
        params = {"kind": kind, "limit": 1000}
        events = (await http.get("/api/v1/audit/", params=params, headers=headers)).json()
        (audited[kind],) = [e for e in events if e["data"]["request_id"] == request_id][-1:]
        assert found.person == audited[kind]["actor"]
        assert found.via == audited[kind]["data"]["via"]
    assert found.name == audited["approval.voted"]["data"]["approver_name"]
    assert found.name == audited["approval.decided"]["data"]["decided_by_name"]
    return found
