"""The REST API's wire types: what ``/api/v1`` answers, as frozen msgspec Structs.

One module of shapes, three users: the REST handlers (``server/api``) encode with them, and
the one API client (``hub.api_client``), used by the ``preloop`` CLI and the dashboard,
decodes into them. The core's records (``hub.records`` and the services' results) are what
the stores keep; these are what the network carries, so a record can change without
changing the API. ``hub.wire`` imports only msgspec and light parts of the core (records'
enums, the error tree's ``Problem``), never ``hub.policy``: decoding an answer loads no CEL.

    views = [view_of(record, ApprovalRequestView) for record in records]   # the server
    detail = await client.approval(request_id)                              # a client
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from hub.wire.approvals import ApprovalDetail, ApprovalRequestView, ApprovalVoteView
from hub.wire.audit import AuditEventView, ChainReportView
from hub.wire.capture import (
    CaptureRules,
    CaptureRuleView,
    InteractionSearch,
    InteractionView,
    RuntimeSessionDetail,
    RuntimeSessions,
    RuntimeSessionView,
)
from hub.wire.compliance import ComplianceAnnotation, ComplianceReport
from hub.wire.devices import DeviceView, DeviceWhoami, Paired, PairingCreated
from hub.wire.duplicates import (
    DuplicateCandidates,
    DuplicateCandidateView,
    DuplicateIssue,
    DuplicatePairs,
    DuplicatePairView,
    DuplicateResolutionView,
    DuplicateResolved,
    DuplicateVerdictView,
)
from hub.wire.errors import ErrorDetail, ErrorEnvelope
from hub.wire.gateway import (
    BudgetView,
    ExecutionDetail,
    ExecutionStarted,
    ExecutionView,
    PriceList,
    PriceView,
    ProviderView,
    SecretRotated,
    SecretView,
    SessionDetail,
    SessionView,
    TokenView,
    UsageEvent,
    UsagePage,
    UsageSummary,
    UsageTotals,
    dollars,
)
from hub.wire.identity import (
    AccessTokenIssued,
    KeyCreated,
    KeyView,
    PasswordSet,
    TeamView,
    UserView,
    Whoami,
)
from hub.wire.policies import (
    ActionName,
    DecisionView,
    JustificationName,
    PolicyApplied,
    PolicyDiff,
    PolicyExport,
    PolicyValidation,
    PolicyVersionSummary,
)
from hub.wire.servers import AcceptedTool, ServerHealth, ServerView, ToolView
from hub.wire.trackers import (
    ConnectionTest,
    IssueSearchResults,
    IssueView,
    ProjectCursorView,
    ProjectDetails,
    SyncEvent,
    SyncReportView,
    TrackerCreated,
    TrackerSyncStatus,
    TrackerView,
    WebhookAccepted,
)

__all__ = [
    "AcceptedTool",
    "AccessTokenIssued",
    "ActionName",
    "ApprovalDetail",
    "ApprovalRequestView",
    "ApprovalVoteView",
    "AuditEventView",
    "BudgetView",
    "CaptureRuleView",
    "CaptureRules",
    "ChainReportView",
    "ComplianceAnnotation",
    "ComplianceReport",
    "ConnectionTest",
    "DecisionView",
    "DeviceView",
    "DeviceWhoami",
    "DuplicateCandidateView",
    "DuplicateCandidates",
    "DuplicateIssue",
    "DuplicatePairView",
    "DuplicatePairs",
    "DuplicateResolutionView",
    "DuplicateResolved",
    "DuplicateVerdictView",
    "ErrorDetail",
    "ErrorEnvelope",
    "ExecutionDetail",
    "ExecutionStarted",
    "ExecutionView",
    "InteractionSearch",
    "InteractionView",
    "IssueSearchResults",
    "IssueView",
    "JustificationName",
    "KeyCreated",
    "KeyView",
    "Paired",
    "PairingCreated",
    "PasswordSet",
    "PolicyApplied",
    "PolicyDiff",
    "PolicyExport",
    "PolicyValidation",
    "PolicyVersionSummary",
    "PriceList",
    "PriceView",
    "ProjectCursorView",
    "ProjectDetails",
    "ProviderView",
    "RuntimeSessionDetail",
    "RuntimeSessionView",
    "RuntimeSessions",
    "SecretRotated",
    "SecretView",
    "ServerHealth",
    "ServerView",
    "SessionDetail",
    "SessionView",
    "SyncEvent",
    "SyncReportView",
    "TeamView",
    "TokenView",
    "ToolView",
    "TrackerCreated",
    "TrackerSyncStatus",
    "TrackerView",
    "UsageEvent",
    "UsagePage",
    "UsageSummary",
    "UsageTotals",
    "UserView",
    "WebhookAccepted",
    "Whoami",
    "dollars",
    "view_of",
]

V = TypeVar("V", bound=msgspec.Struct)


def view_of(record: Any, into: type[V]) -> V:
    """The wire view of a core record whose fields it shares: each field ``into`` declares,
    read from ``record`` by name (a field the record lacks is an error, not a default)."""
    return into(**{name: getattr(record, name) for name in into.__struct_fields__})
