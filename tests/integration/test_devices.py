"""Devices paired by QR code, over real HTTP (uvicorn on 127.0.0.1, SQLite): pairing, the
device credential's limited rights, deciding as the user, revocation, QR images, the CLI."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pytest
from click.testing import CliRunner

from hub.keys import Caller
from hub.policy import ApprovalWorkflow, Decision
from hub.policy.model import Action
from server.bootstrap import open_hub
from server.cli.main import cli
from server.hub_services import Hub
from tests.integration.conftest import Api, LiveServer
from tests.integration.who_decided import Decider, who_decided


class Site(msgspec.Struct):
    """The live server, an admin client, and a second hub on the same database (the test's
    way to open approval requests, as an agent's call would)."""

    server: LiveServer
    http: httpx.AsyncClient
    hub: Hub
    admin: dict[str, str]

    async def user(self, email: str) -> str:
        response = await self.http.post("/api/v1/users/", json={"email": email}, headers=self.admin)
        assert 201 == response.status_code, response.text
        user_id: str = response.json()["id"]
        return user_id

    async def agent(self, email: str) -> Caller:
        body = {"name": f"agent {email[:3]}", "role": "agent", "user_email": email}
        response = await self.http.post("/api/v1/keys/", json=body, headers=self.admin)
        assert 201 == response.status_code, response.text
        return await self.hub.identity.authenticate(response.json()["secret"])

    async def open(self, agent: Caller, **workflow: Any) -> str:
        request = await self.hub.approvals.open(
            caller=agent,
            server="shell",
            tool="bash",
            args={"command": "deploy"},
            justification="release",
            policy_version=1,
            workflow=msgspec.convert({"name": "wf", **workflow}, ApprovalWorkflow),
            decision=Decision(action=Action.REQUIRE_APPROVAL, rule="bash#1"),
        )
        return request.id

    async def pairing(self, user: str, **extra: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/api/v1/pairing-tokens/", json={"user": user, **extra}, headers=self.admin
        )
        assert 201 == response.status_code, response.text
        created: dict[str, Any] = response.json()
        return created

    async def pair(self, token: str, name: str = "Ann's phone") -> httpx.Response:
        return await self.http.post(
            "/api/v1/devices/pair", json={"token": token, "name": name, "platform": "ios"}
        )


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
async def site(live_server: LiveServer) -> AsyncIterator[Site]:
    hub = await open_hub(live_server.settings)
    try:
        async with httpx.AsyncClient(base_url=live_server.url) as http:
            yield Site(server=live_server, http=http, hub=hub, admin=bearer(live_server.admin_key))
    finally:
        await hub.close()


async def test_pairing_gives_a_credential_that_decides_as_the_user(site: Site) -> None:
    ann = await site.user("ann@example.com")
    await site.user("bob@example.com")
    bob_agent, ann_agent = await site.agent("bob@example.com"), await site.agent("ann@example.com")
    hers = await site.open(bob_agent, approvers=["user:ann@example.com"])
    quorum = await site.open(bob_agent, approvers=["user:ann@example.com"], required_approvals=2)
    await site.open(bob_agent, approvers=["user:carol@example.com"])  # not Ann's to decide
    own = await site.open(ann_agent)  # Ann's own agent: never hers to decide

    created = await site.pairing("ann@example.com")
    uri = urlsplit(created["uri"])
    paired = await site.pair(created["token"])
    again = await site.pair(created["token"], name="a thief")

    assert ("preloop", "pair") == (uri.scheme, uri.netloc)
    assert {"url": [site.server.settings.public_url], "token": [created["token"]]} == parse_qs(
        uri.query
    )
    assert ann == created["user_id"]
    assert created["svg"].startswith("<svg")
    assert 201 == paired.status_code, paired.text
    device = bearer(paired.json()["credential"])
    assert paired.json()["credential"].startswith("pld_")
    assert 401 == again.status_code
    assert "already used" in again.json()["error"]["message"]

    listed = await site.http.get("/api/v1/devices/me/approvals", headers=device)
    assert [quorum, hers] == [r["id"] for r in listed.json()]
    approved = await site.http.post(
        f"/api/v1/devices/me/approvals/{hers}/approve", json={"comment": "ok"}, headers=device
    )
    assert 200 == approved.status_code, approved.text
    assert ("approved", ann) == (approved.json()["status"], approved.json()["decided_by"])
    device_id = paired.json()["device"]["id"]
    assert Decider(ann, "ann@example.com", f"device:{device_id}") == (
        await who_decided(site.http, hers, site.admin)
    )
    voted = await site.http.post(
        f"/api/v1/devices/me/approvals/{quorum}/approve", json={}, headers=device
    )
    assert "pending" == voted.json()["status"]  # one of two approvals: quorum applies
    shown = (await site.http.get(f"/api/v1/approvals/{quorum}", headers=site.admin)).json()
    assert [(ann, "approve", "device")] == [
        (v["approver"], v["choice"], v["channel"]) for v in shown["votes"]
    ]
    twice = await site.http.post(
        f"/api/v1/devices/me/approvals/{quorum}/approve", json={}, headers=device
    )
    assert 409 == twice.status_code
    self_approval = await site.http.post(
        f"/api/v1/devices/me/approvals/{own}/approve", json={}, headers=device
    )
    assert 403 == self_approval.status_code
    assert "never decide" in self_approval.json()["error"]["message"]


async def test_a_device_credential_is_refused_everywhere_else(site: Site) -> None:
    await site.user("ann@example.com")
    created = await site.pairing("ann@example.com")
    device = bearer((await site.pair(created["token"])).json()["credential"])

    refused = [
        await site.http.get("/api/v1/approvals/", headers=device),
        await site.http.post("/api/v1/approvals/apr_x/approve", json={}, headers=device),
        await site.http.get("/api/v1/whoami", headers=device),
        await site.http.get("/api/v1/keys/", headers=device),
        await site.http.get("/api/v1/devices/", headers=device),
        await site.http.post(
            "/api/v1/pairing-tokens/", json={"user": "ann@example.com"}, headers=device
        ),
        await site.http.get("/api/v1/audit/", headers=device),
    ]
    admin_on_device_route = await site.http.get("/api/v1/devices/me/approvals", headers=site.admin)

    assert [403] * len(refused) == [r.status_code for r in refused]
    assert "device credential may only" in refused[0].json()["error"]["message"]
    assert 403 == admin_on_device_route.status_code
    assert (await site.http.get("/api/v1/devices/me", headers=device)).status_code == 200


async def test_push_token_registration_and_revocation(site: Site) -> None:
    await site.user("ann@example.com")
    created = await site.pairing("ann@example.com")
    paired = (await site.pair(created["token"])).json()
    device = bearer(paired["credential"])

    set_ = await site.http.put(
        "/api/v1/devices/me/push-token", json={"push_token": "apns-abc"}, headers=device
    )
    listed = await site.http.get(
        "/api/v1/devices/", params={"user": "ann@example.com"}, headers=site.admin
    )
    stored = await site.hub.storage.devices.get(paired["device"]["id"])
    revoked = await site.http.post(
        f"/api/v1/devices/{paired['device']['id']}/revoke", headers=site.admin
    )
    after = await site.http.get("/api/v1/devices/me/approvals", headers=device)

    assert 200 == set_.status_code, set_.text
    assert set_.json()["has_push_token"] is True
    assert "push_token" not in set_.json()
    assert [(paired["device"]["id"], True, "active")] == [
        (d["id"], d["has_push_token"], d["status"]) for d in listed.json()
    ]
    assert stored is not None
    assert "apns-abc" == stored.push_token
    assert "revoked" == revoked.json()["status"]
    assert 401 == after.status_code
    assert "revoked" in after.json()["error"]["message"]


async def test_of_concurrent_exchanges_of_one_token_exactly_one_pairs(site: Site) -> None:
    await site.user("ann@example.com")
    created = await site.pairing("ann@example.com")

    answers = await asyncio.gather(*(site.pair(created["token"], f"phone {n}") for n in range(8)))

    assert [201] + [401] * 7 == sorted(r.status_code for r in answers)
    listed = await site.http.get("/api/v1/devices/", headers=site.admin)
    assert 1 == len(listed.json())


async def test_bad_pairing_requests_are_refused_clearly(site: Site) -> None:
    await site.user("ann@example.com")
    created = await site.pairing("ann@example.com")

    forged = await site.pair(created["token"][:-4] + "AAAA")
    garbage = await site.pair("not-a-token")
    bad_platform = await site.http.post(
        "/api/v1/devices/pair",
        json={"token": created["token"], "name": "x", "platform": "windows"},
    )
    unknown_user = await site.http.post(
        "/api/v1/pairing-tokens/", json={"user": "nobody@example.com"}, headers=site.admin
    )
    too_long = await site.http.post(
        "/api/v1/pairing-tokens/",
        json={"user": "ann@example.com", "expires_in_seconds": 86400},
        headers=site.admin,
    )
    still_good = await site.pair(created["token"])

    assert [401, 401, 400, 404, 400] == [
        r.status_code for r in (forged, garbage, bad_platform, unknown_user, too_long)
    ]
    assert "invalid pairing token" in forged.json()["error"]["message"]
    assert 201 == still_good.status_code


async def test_qr_codes_as_png_and_svg_for_admins_only(site: Site) -> None:
    await site.user("ann@example.com")
    body = {"user": "ann@example.com"}
    png = await site.http.post("/api/v1/pairing-tokens/png", json=body, headers=site.admin)
    svg = await site.http.post("/api/v1/pairing-tokens/svg", json=body, headers=site.admin)
    approver = await site.http.post(
        "/api/v1/keys/", json={"name": "approver", "role": "approver"}, headers=site.admin
    )
    refused = await site.http.post(
        "/api/v1/pairing-tokens/png", json=body, headers=bearer(approver.json()["secret"])
    )

    assert (201, "image/png") == (png.status_code, png.headers["content-type"])
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert png.headers["x-preloop-pairing-id"]
    assert "no-store" == png.headers["cache-control"]
    assert 201 == svg.status_code
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text
    assert 403 == refused.status_code


async def test_an_expired_pairing_token_is_refused(api: Api) -> None:
    account = await api.hub.identity.default_account()
    await api.hub.identity.add_user(account.id, email="ann@example.com", name="", actor="t")
    created = (
        await api.client.post(
            "/api/v1/pairing-tokens/",
            json={"user": "ann@example.com", "expires_in_seconds": 60},
            headers=api.auth(),
        )
    ).json()
    api.clock.advance(60)

    response = await api.client.post(
        "/api/v1/devices/pair",
        json={"token": created["token"], "name": "late", "platform": "android"},
    )

    assert 401 == response.status_code
    assert "expired" in response.json()["error"]["message"]


def test_cli_pairs_lists_and_revokes(live_server: LiveServer) -> None:
    def invoke(*args: str) -> tuple[int, str]:
        argv = [*args, "--url", live_server.url, "--key", live_server.admin_key]
        result = CliRunner().invoke(cli, argv, catch_exceptions=False)
        return result.exit_code, result.stdout + result.stderr

    invoke("users", "add", "ann@example.com")
    code, out = invoke("devices", "pair", "ann@example.com")
    assert 0 == code, out
    assert "preloop://pair?url=" in out
    assert "▀" in out or "▄" in out or "█" in out  # the QR code, in half blocks
    uri = re.search(r"preloop://pair\?\S+", out)
    assert uri is not None
    token = parse_qs(urlsplit(uri.group()).query)["token"][0]
    paired = httpx.post(
        f"{live_server.url}/api/v1/devices/pair",
        json={"token": token, "name": "Ann's Pixel", "platform": "android"},
    )
    assert 201 == paired.status_code, paired.text
    device_id = paired.json()["device"]["id"]

    code, out = invoke("devices", "list", "--user", "ann@example.com")
    assert 0 == code, out
    assert device_id in out
    assert "Ann's Pixel" in out
    code, out = invoke("devices", "revoke", device_id)
    assert (0, f"Revoked device {device_id} (Ann's Pixel).") == (code, out.strip())
    code, out = invoke("devices", "list", "--json")
    assert ["revoked"] == [d["status"] for d in json.loads(out)]
