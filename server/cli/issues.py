"""``preloop issues``: search synced issues, find duplicates, score compliance (issue 16).

The group only; each command lives in a module of its own (which does not import this one, so
there is no import cycle) and is added here, one line each at the end.
"""

from __future__ import annotations

import click

from server.cli.issue_compliance import compliance


@click.group()
def issues() -> None:
    """Search synced issues; find duplicates; score compliance."""


issues.add_command(compliance)
