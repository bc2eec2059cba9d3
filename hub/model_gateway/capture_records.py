"""Gateway content capture: its rules, the interactions it keeps, and how they are searched.

Capture is **off** unless a ``CaptureRule`` turns it on for an account, a flow or an API key
(decision 0109). The most specific rule wins: the API key's over the flow's over the account's.

    off               nothing is kept beyond the usage ledger
    metadata          an ``Interaction`` without content: who, which model, tokens, cost, status
    redacted_preview  the prompt's and the answer's text (not the JSON), redacted, capped
    full              the whole request JSON and the answer's text, redacted, capped

Secrets are redacted before anything is stored, in every mode (``capture_redact``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

import msgspec

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"  # X-Preloop-Session-Id
PREVIEW_BYTES = 4096  # redacted_preview's default cap per text
FULL_BYTES = 65536  # full's default cap per text
MAX_BYTES = 1_048_576  # the most a rule may keep per text
RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 3650


class CaptureMode(StrEnum):
    OFF = "off"
    METADATA = "metadata"
    REDACTED_PREVIEW = "redacted_preview"
    FULL = "full"

    @property
    def keeps_content(self) -> bool:
        return self in (CaptureMode.REDACTED_PREVIEW, CaptureMode.FULL)


class CaptureScope(StrEnum):
    ACCOUNT = "account"
    FLOW = "flow"
    API_KEY = "api_key"


class CaptureRule(msgspec.Struct, frozen=True, kw_only=True):
    """What is captured for one account, flow (``subject`` = flow name) or API key
    (``subject`` = key id; a runtime token's requests count as their flow's). ``max_bytes``
    caps each of the request and response texts (UTF-8 bytes); interactions are deleted
    ``retention_days`` after they were captured."""

    account_id: str
    scope: CaptureScope
    subject: str = ""  # "" for the account scope
    mode: CaptureMode
    max_bytes: Annotated[int, msgspec.Meta(ge=0, le=MAX_BYTES)] = PREVIEW_BYTES
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=MAX_RETENTION_DAYS)] = RETENTION_DAYS
    created_at: datetime
    updated_at: datetime
    updated_by: str = ""


class Interaction(msgspec.Struct, frozen=True, kw_only=True):
    """One captured gateway request. ``id`` is its usage record's id. ``request`` and
    ``response`` are ``None`` in metadata mode; otherwise redacted text, at most the rule's
    ``max_bytes`` each (``truncated`` says one was cut)."""

    id: str
    account_id: str
    principal: str
    api_key_id: str
    flow: str | None = None
    execution_id: str | None = None
    session_id: str | None = None
    endpoint: str
    model: str
    provider: str = ""
    status: int
    outcome: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    latency_ms: float = 0.0
    created_at: datetime
    expires_at: datetime
    mode: CaptureMode
    request: str | None = None
    response: str | None = None
    truncated: bool = False

    @property
    def session(self) -> str | None:
        """The runtime session it belongs to: its flow execution, else its session header."""
        return self.execution_id or self.session_id

    @property
    def text(self) -> str:
        """What full-text and similarity search read."""
        return "\n\n".join(part for part in (self.request, self.response) if part)


class SearchType(StrEnum):
    FULLTEXT = "fulltext"
    SIMILARITY = "similarity"


class InteractionQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters (AND) of a search over captured interactions. An empty ``text`` lists the
    newest first (score 0). ``session`` matches the execution id or the session header;
    ``since`` is inclusive, ``until`` exclusive."""

    text: str = ""
    search_type: SearchType = SearchType.FULLTEXT
    model: str | None = None
    flow: str | None = None
    principal: str | None = None
    session: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50


class InteractionHit(msgspec.Struct, frozen=True, kw_only=True):
    """A search answer's row: the interaction, its score (higher is better; bm25/ts_rank for
    full text, cosine for similarity, 0 for a listing) and a snippet of its text around the
    query's words, each match in ``[[…]]``."""

    interaction: Interaction
    score: float
    snippet: str = ""


class RuntimeSession(msgspec.Struct, frozen=True, kw_only=True):
    """A runtime session from the usage ledger: the calls of one flow execution, or of one
    ``X-Preloop-Session-Id``; listed whether or not capture is on."""

    id: str
    flow: str | None
    principal: str
    execution_id: str | None
    models: tuple[str, ...]
    calls: int
    input_tokens: int
    output_tokens: int
    cost: Decimal
    started_at: datetime
    last_at: datetime
