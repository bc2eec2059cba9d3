"""The names agents call tools by, and the refusals that come before the policy.

An agent sees every upstream tool as ``<server>__<tool>`` (docs/decisions/0004) and Preloop's
own tools by their bare names (``get_approval_status``).
"""

from __future__ import annotations

from hub.keys import Caller

SEPARATOR = "__"
STATUS_TOOL = "get_approval_status"  # the built-in tool: an async approval's status and result
JUSTIFICATION_ARG = "justification"
KEY_ALLOW_LIST_RULE = "key-allow-list"  # the audit's rule for a call outside the key's list
KEY_ROLE_RULE = "key-role"  # the audit's rule for a call by a key whose role runs nothing
PINNING_RULE = "tool-pinning"


def exposed_name(server: str, tool: str) -> str:
    """The name an agent sees: always ``<server>__<tool>`` (docs/decisions/0004)."""
    return f"{server}{SEPARATOR}{tool}"


def split_name(name: str, servers: list[str]) -> tuple[str, str] | None:
    """(server, tool) for an exposed name; the longest matching server name wins."""
    for server in sorted(servers, key=len, reverse=True):
        prefix = server + SEPARATOR
        if name.startswith(prefix) and len(name) > len(prefix):
            return server, name[len(prefix) :]
    return None


def role_refusal(caller: Caller, what: str) -> str:
    """Why a key whose role runs nothing may not do ``what`` (docs/decisions/0044)."""
    return (
        f"Refused by Preloop: API key {caller.key_id} has role {caller.role.value}, which may "
        f"not {what}; only agent and admin keys may (viewer keys read, approver keys read and "
        "decide)."
    )
