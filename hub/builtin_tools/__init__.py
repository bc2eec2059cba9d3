"""Preloop's 11 built-in tools for issues and pull/merge requests (issue 15).

    names.py        the names, the reserved server ``preloop``, which are read-only
    definitions.py  their MCP definitions: JSON Schemas, titles, annotations (snapshotted in
                    tests/unit/builtin_tools/toolsnaps/)
    arguments.py    each tool's arguments, decoded into frozen Structs; bad ones refused by name
    references.py   an issue, pull request or project as an agent names it, found
    results.py      results: ``structuredContent`` and its text; ``isError`` for refusals
    session.py      one call's view of the trackers: the index, the clients, live reads
    reads.py        get_issue, search, estimate/improve_compliance, get_pull_request
    writes.py       create/update_issue, add/update_comment, update/create_pull_request
    runner.py       ``BuiltinTools``: runs one call for an account (the pipeline's companion
                    of the ``Upstream`` port) and lists the tools an account can use

They run behind exactly the same checks as upstream tools (hub/tool_calls/pipeline.py).
Modules are imported directly; this package's ``__init__`` stays empty so that reading the
names (the policy loader, allow-lists) does not import the runner.
"""
