"""Builders for the records the contract tests store: valid defaults, fixed times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hub.ids import new_id
from hub.ports import Storage
from hub.records import (
    Account,
    ApiKey,
    ApprovalRequest,
    ApprovalVote,
    AuditDraft,
    McpServer,
    PolicyVersion,
    Role,
    Team,
    ToolRecord,
    User,
    VoteChoice,
    WorkflowRecord,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float = 0) -> datetime:
    """``T0`` plus ``seconds``, in UTC."""
    return T0 + timedelta(seconds=seconds)


async def new_account(storage: Storage, name: str | None = None, *, created: float = 0) -> str:
    account = Account(id=new_id("acct"), name=name or new_id("name"), created_at=at(created))
    await storage.accounts.add(account)
    return account.id


def user(account_id: str, email: str, *, created: float = 0, **extra: Any) -> User:
    fields: dict[str, Any] = {
        "id": new_id("user"),
        "account_id": account_id,
        "email": email,
        "created_at": at(created),
    }
    return User(**(fields | extra))


def team(account_id: str, name: str, members: tuple[str, ...] = ()) -> Team:
    return Team(id=new_id("team"), account_id=account_id, name=name, members=members, created_at=T0)


def api_key(account_id: str, *, created: float = 0, **extra: Any) -> ApiKey:
    fields: dict[str, Any] = {
        "id": new_id("key"),
        "account_id": account_id,
        "name": "ci",
        "role": Role.AGENT,
        "key_hash": new_id("hash"),
        "created_at": at(created),
    }
    return ApiKey(**(fields | extra))


def server(account_id: str, name: str, **extra: Any) -> McpServer:
    fields: dict[str, Any] = {
        "id": new_id("srv"),
        "account_id": account_id,
        "name": name,
        "transport": "stdio",
        "config": {"command": "mcp-server", "args": ["--stdio"]},
        "created_at": T0,
        "updated_at": T0,
    }
    return McpServer(**(fields | extra))


def tool(account_id: str, server_name: str, name: str, **extra: Any) -> ToolRecord:
    fields: dict[str, Any] = {
        "id": new_id("tool"),
        "account_id": account_id,
        "server_name": server_name,
        "name": name,
        "description": f"{name} does things",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
        "definition_hash": "d1",
        "pinned_hash": "d1",
        "first_seen_at": T0,
        "updated_at": T0,
    }
    return ToolRecord(**(fields | extra))


def policy(account_id: str, version: int, **extra: Any) -> PolicyVersion:
    fields: dict[str, Any] = {
        "account_id": account_id,
        "version": version,
        "digest": f"digest-{version}",
        "source": f"version: {version}\n",
        "created_at": at(version),
    }
    return PolicyVersion(**(fields | extra))


def workflow(account_id: str, name: str, version: int = 1) -> WorkflowRecord:
    spec = {"name": name, "approvers": ["alice", "bob"], "timeout_seconds": 300}
    return WorkflowRecord(
        account_id=account_id, name=name, spec=spec, policy_version=version, updated_at=T0
    )


def approval(account_id: str, *, created: float = 0, **extra: Any) -> ApprovalRequest:
    fields: dict[str, Any] = {
        "id": new_id("apr"),
        "account_id": account_id,
        "principal_key_id": "key_agent",
        "server": "files",
        "tool": "delete",
        "args_digest": "sha256:abc",
        "args": {"path": "/tmp/x", "recursive": True},
        "policy_version": 1,
        "workflow": "default",
        "created_at": at(created),
    }
    return ApprovalRequest(**(fields | extra))


def vote(request: ApprovalRequest, approver: str, *, created: float = 0) -> ApprovalVote:
    return ApprovalVote(
        request_id=request.id,
        account_id=request.account_id,
        approver=approver,
        choice=VoteChoice.APPROVE,
        created_at=at(created),
    )


def draft(
    account_id: str,
    kind: str = "tool.call",
    *,
    seconds: float = 0,
    actor: str = "key_1",
    **data: Any,
) -> AuditDraft:
    return AuditDraft(account_id=account_id, kind=kind, actor=actor, at=at(seconds), data=data)
