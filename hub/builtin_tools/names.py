"""The names of Preloop's built-in tools, and the reserved server they run on.

Agents call them by their bare names, like ``get_approval_status`` (docs/decisions/0004); the
pipeline gives them the server ``preloop``, which no upstream server may take, and a policy
names them with ``source: builtin`` (docs/decisions/0089). Imports nothing: the policy loader,
the allow-lists and the pipeline all read these names.
"""

from __future__ import annotations

BUILTIN_SERVER = "preloop"  # reserved: what built-in calls are recorded and decided under

GET_ISSUE = "get_issue"
CREATE_ISSUE = "create_issue"
UPDATE_ISSUE = "update_issue"
SEARCH = "search"
ESTIMATE_COMPLIANCE = "estimate_compliance"
IMPROVE_COMPLIANCE = "improve_compliance"
ADD_COMMENT = "add_comment"
UPDATE_COMMENT = "update_comment"
GET_PULL_REQUEST = "get_pull_request"
UPDATE_PULL_REQUEST = "update_pull_request"
CREATE_PULL_REQUEST = "create_pull_request"

# In upstream's order (research (c)); tools/list shows them in this order.
BUILTIN_TOOL_NAMES: tuple[str, ...] = (
    GET_ISSUE,
    CREATE_ISSUE,
    UPDATE_ISSUE,
    SEARCH,
    ESTIMATE_COMPLIANCE,
    IMPROVE_COMPLIANCE,
    ADD_COMMENT,
    UPDATE_COMMENT,
    GET_PULL_REQUEST,
    UPDATE_PULL_REQUEST,
    CREATE_PULL_REQUEST,
)
BUILTIN_TOOLS = frozenset(BUILTIN_TOOL_NAMES)
READ_ONLY_TOOLS = frozenset({GET_ISSUE, SEARCH, ESTIMATE_COMPLIANCE, GET_PULL_REQUEST})
# Pull/merge request tools: GitHub and GitLab only, never Jira.
PULL_REQUEST_TOOLS = frozenset({GET_PULL_REQUEST, UPDATE_PULL_REQUEST, CREATE_PULL_REQUEST})
