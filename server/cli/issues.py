"""``preloop issues``: search synced issues, find duplicates, score compliance (issue 16).

The group only; its commands live in modules of their own and attach themselves by the
imports at the end of this file.
"""

from __future__ import annotations

import click


@click.group()
def issues() -> None:
    """Search synced issues; find duplicates; score compliance."""


from server.cli import issue_compliance  # noqa: E402, F401 - attaches `issues compliance`
