"""``preloop issues``: the synced issues of the connected trackers, through the REST API.

The group; each part of issue 16 attaches its commands at the end of this module (search,
duplicates, compliance).
"""

from __future__ import annotations

import click


@click.group()
def issues() -> None:
    """Search synced issues; find duplicates; score compliance.

    \b
    preloop issues duplicates --project acme/app
    preloop issues resolve-duplicate acme/app#12 acme/app#31 --as duplicate --canonical acme/app#12
    """


from server.cli import issue_duplicates  # noqa: E402  (duplicates, resolve-duplicate)

issue_duplicates.attach(issues)
