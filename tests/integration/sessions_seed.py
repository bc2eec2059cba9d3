"""Runtime sessions and captured interactions for the tests of ``preloop sessions`` and the
dashboard's Sessions screen: usage records go in through ``hub.ledger`` and their captured
content through ``hub.capture_store`` (with vectors from the hub's search embedder), as the
gateway's capture queue writes them; plus an approver's and a viewer's key.

- ``fx_triage1``: a flow execution of ``triage`` with two calls 20 and 19 minutes ago (ended:
  no call in the last 15 minutes, no runtime token), one captured ``full``, one ``metadata``;
- ``cli-ada-1``: an ``X-Preloop-Session-Id`` session three hours ago, one call captured.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hub.model_gateway.capture_records import CaptureMode, Interaction
from hub.model_gateway.records import UsageRecord
from hub.records import Role
from server.hub_services import Hub
from tests.contract.gateway_records import usage

PROMPT = "Summarise issue 412: the refund policy page still shows the old 14-day window."
ANSWER = "The refund page says 14 days; the policy changed to 30 days."
_SHARED = ("id", "account_id", "principal", "api_key_id", "flow", "execution_id", "session_id",
           "endpoint", "model", "provider", "status", "outcome", "input_tokens",
           "output_tokens", "cost", "latency_ms", "created_at")  # fmt: skip


def captured(
    record: UsageRecord, mode: CaptureMode, request: str | None = None, response: str | None = None
) -> Interaction:
    """The interaction capture keeps of ``record`` under ``mode``."""
    fields = {name: getattr(record, name) for name in _SHARED}
    return Interaction(
        **fields,
        expires_at=record.created_at + timedelta(days=30),
        mode=mode,
        request=request,
        response=response,
    )


async def seed(hub: Hub) -> dict[str, str]:
    """The sessions above; the approver's and the viewer's secret keys by role name."""
    account = await hub.identity.default_account()
    now = datetime.now(UTC)
    triage = [
        usage(account.id, flow="triage", execution_id="fx_triage1", principal="flow:triage",
              model="claude-sonnet-4-5", created_at=now - timedelta(minutes=20),
              cost=Decimal("0.0125"), input_tokens=1200, output_tokens=150),
        usage(account.id, flow="triage", execution_id="fx_triage1", principal="flow:triage",
              created_at=now - timedelta(minutes=19), cost=Decimal("0.0005")),
    ]  # fmt: skip
    header = usage(account.id, session_id="cli-ada-1", principal="ada@example.com",
                   model="gpt-4o", created_at=now - timedelta(hours=3))  # fmt: skip
    for record in [*triage, header]:
        hub.ledger.record(record)
    await hub.ledger.flush()
    items = [
        captured(triage[0], CaptureMode.FULL, PROMPT, ANSWER),
        captured(triage[1], CaptureMode.METADATA),
        captured(header, CaptureMode.FULL, "Is the refund due for annual plans?", "Yes."),
    ]
    embedder = hub.search_embedder
    vectors = await embedder.embed([item.text for item in items])
    assert hub.capture_store is not None
    await hub.capture_store.add_many(
        list(zip(items, vectors, strict=True)), model=str(embedder.identity)
    )
    keys = {}
    for role in (Role.APPROVER, Role.VIEWER):
        created = await hub.identity.create_key(account.id, name=role.value, role=role, actor="t")
        keys[role.value] = created.secret
    return keys
