"""The ``/api/v1`` router: authentication, the role guard, and every controller."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get

from hub.keys import Caller
from hub.records import Role
from hub.wire import Whoami, view_of
from server.api.approvals import ApprovalController
from server.api.audit import AuditController
from server.api.auth import issue_token, revoke_token
from server.api.devices import DeviceController, PairingController
from server.api.flows import FlowController
from server.api.gateway_capture import GatewayCaptureController
from server.api.gateway_usage import (
    BudgetController,
    FlowGatewayEventsController,
    GatewayUsageController,
)
from server.api.identity import KeyController, TeamController, UserController
from server.api.issue_compliance import IssueComplianceController
from server.api.issue_duplicates import IssueDuplicatesController
from server.api.issues import IssueController, ProjectController, WebhookController
from server.api.policies import PolicyController
from server.api.providers import ProviderController, SecretController
from server.api.runtime_sessions import RuntimeSessionController
from server.api.servers import ServerController
from server.api.trackers import SyncController, TrackerController
from server.auth import role_guard, roles


@get("/whoami", opt=roles(Role), tags=["keys"])
async def whoami(request: Request[Any, Any, Any]) -> Whoami:
    """The key this request was made with: id, role, account."""
    caller: Caller = request.user
    return view_of(caller, Whoami)


def api_router() -> Router:
    return Router(
        path="/api/v1",
        guards=[role_guard],
        route_handlers=[
            whoami,
            issue_token,
            revoke_token,
            PolicyController,
            KeyController,
            UserController,
            TeamController,
            AuditController,
            ApprovalController,
            ServerController,
            PairingController,
            DeviceController,
            # gateway: custody
            ProviderController,
            SecretController,
            FlowController,
            GatewayUsageController,
            FlowGatewayEventsController,
            BudgetController,
            GatewayCaptureController,  # content capture and its search (issue 16)
            RuntimeSessionController,
            # issue trackers
            TrackerController,
            SyncController,
            ProjectController,
            IssueDuplicatesController,  # before IssueController: /issues/duplicates is no issue
            IssueController,
            IssueComplianceController,  # issue 16: compliance metrics
            WebhookController,
        ],
        security=[{"bearer": []}],
    )
