"""Diffs between policies: the unified diff of the canonical forms of two policy texts."""

from __future__ import annotations

import difflib

from hub.policy.export import export_policy
from hub.policy.loader import load_policy

__all__ = ["diff_policies"]


def diff_policies(
    old_text: str | None,
    new_text: str,
    *,
    old_name: str = "current",
    new_name: str = "proposed",
) -> str:
    """Unified diff of the canonical forms of two policy texts ("" when they are the same).

    ``old_text`` ``None`` means there is no current policy. Both texts are loaded (and
    validated: an invalid one raises :class:`hub.errors.PolicyError`), so formatting,
    comments and key order do not show up as changes.
    """
    old = (
        export_policy(load_policy(old_text, filename=old_name).document)
        if old_text is not None
        else ""
    )
    new = export_policy(load_policy(new_text, filename=new_name).document)
    if old == new:
        return ""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=old_name,
        tofile=new_name,
    )
    return "".join(lines)
