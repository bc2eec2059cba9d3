"""Policy-as-code through the REST API: validate, apply, export, diff, versions, rollback."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import Api

POLICIES = Path(__file__).parents[2] / "policies"
SIMPLE = """version: "1.0"
metadata:
  name: simple
defaults:
  unknown_tools: deny
tools:
  - name: echo
    conditions:
      - expression: "args.text == 'secret'"
        action: deny
        description: no secrets
"""


async def test_new_installation_has_the_example_policy(api: Api) -> None:
    versions = (await api.client.get("/api/v1/policies/versions", headers=api.auth())).json()
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["active"] is True
    exported = (await api.client.get("/api/v1/policies/export", headers=api.auth())).json()
    assert "deploy-approval" in exported["source"]


async def test_validate_lists_problems_with_lines(api: Api) -> None:
    bad = SIMPLE.replace("action: deny", "action: maybe").replace(
        "name: echo", "name: echo\n    colour: red"
    )
    response = await api.client.post(
        "/api/v1/policies/validate",
        json={"source": bad, "filename": "bad.yaml"},
        headers=api.auth(),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert len(body["problems"]) >= 2
    assert all(p["file"] == "bad.yaml" and p["line"] for p in body["problems"])
    good = await api.client.post(
        "/api/v1/policies/validate", json={"source": SIMPLE}, headers=api.auth()
    )
    assert good.json() == {"valid": True, "name": "simple", "tools": 1, "problems": []}


async def test_apply_is_declarative_and_versioned(api: Api) -> None:
    dry = (
        await api.client.post(
            "/api/v1/policies/apply",
            json={"source": SIMPLE, "filename": "simple.yaml", "dry_run": True},
            headers=api.auth(),
        )
    ).json()
    assert dry["changed"] is True
    assert dry["dry_run"] is True
    assert dry["version"] == 1
    assert "+  name: simple" in dry["diff"] or "name: simple" in dry["diff"]

    applied = (
        await api.client.post(
            "/api/v1/policies/apply",
            json={"source": SIMPLE, "filename": "simple.yaml"},
            headers=api.auth(),
        )
    ).json()
    assert applied["changed"] is True
    assert applied["version"] == 2
    assert applied["previous_version"] == 1

    again = (
        await api.client.post("/api/v1/policies/apply", json={"source": SIMPLE}, headers=api.auth())
    ).json()
    assert again == {
        "changed": False,
        "dry_run": False,
        "version": 2,
        "previous_version": 2,
        "diff": "",
    }

    diff = (
        await api.client.post("/api/v1/policies/diff", json={"source": SIMPLE}, headers=api.auth())
    ).json()
    assert diff == {"changed": False, "diff": ""}


async def test_export_apply_export_round_trips(api: Api) -> None:
    for path in sorted(POLICIES.glob("*.yaml")):
        if path.name.endswith(".cases.yaml"):
            continue
        await api.client.post(
            "/api/v1/policies/apply", json={"source": path.read_text()}, headers=api.auth()
        )
        first = (await api.client.get("/api/v1/policies/export", headers=api.auth())).json()
        result = (
            await api.client.post(
                "/api/v1/policies/apply", json={"source": first["source"]}, headers=api.auth()
            )
        ).json()
        assert result["changed"] is False, path.name
        second = (await api.client.get("/api/v1/policies/export", headers=api.auth())).json()
        assert first == second, path.name


async def test_rollback_makes_a_new_version_with_old_content(api: Api) -> None:
    original = (await api.client.get("/api/v1/policies/export", headers=api.auth())).json()
    await api.client.post("/api/v1/policies/apply", json={"source": SIMPLE}, headers=api.auth())
    rolled = (
        await api.client.post("/api/v1/policies/rollback", json={"version": 1}, headers=api.auth())
    ).json()
    assert rolled["changed"] is True
    assert rolled["version"] == 3
    now = (await api.client.get("/api/v1/policies/export", headers=api.auth())).json()
    assert now == {"version": 3, "source": original["source"]}
    old = (
        await api.client.get("/api/v1/policies/export", params={"version": 2}, headers=api.auth())
    ).json()
    assert "simple" in old["source"]
    missing = await api.client.post(
        "/api/v1/policies/rollback", json={"version": 99}, headers=api.auth()
    )
    assert missing.status_code == 404
    assert "no policy version 99" in missing.json()["error"]["message"]


async def test_invalid_apply_is_refused_and_changes_nothing(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/policies/apply",
        json={"source": "tools: [", "filename": "broken.yaml"},
        headers=api.auth(),
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "PolicyError"
    assert error["problems"][0]["file"] == "broken.yaml"
    versions = (await api.client.get("/api/v1/policies/versions", headers=api.auth())).json()
    assert len(versions) == 1


async def test_evaluate_against_the_active_policy(api: Api) -> None:
    deploy = (
        await api.client.post(
            "/api/v1/policies/evaluate",
            json={
                "tool": "bash",
                "args": {"command": "deploy production"},
                "justification": "release 1.2",
            },
            headers=api.auth(),
        )
    ).json()
    assert deploy["action"] == "require_approval"
    assert deploy["workflow"] == "deploy-approval"
    listing = (
        await api.client.post(
            "/api/v1/policies/evaluate",
            json={"tool": "bash", "args": {"command": "ls"}, "justification": "look"},
            headers=api.auth(),
        )
    ).json()
    assert listing["action"] == "allow"


async def test_apply_is_audited_without_the_source(api: Api) -> None:
    await api.client.post(
        "/api/v1/policies/apply", json={"source": SIMPLE, "comment": "try"}, headers=api.auth()
    )
    events = (
        await api.client.get(
            "/api/v1/audit/", params={"kind": "policy.applied"}, headers=api.auth()
        )
    ).json()
    assert [e["data"]["version"] for e in events] == [2, 1]
    assert events[0]["data"]["comment"] == "try"
