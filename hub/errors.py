"""The one error tree of Preloop. Every surface renders these through one table.

    PreloopError                      base; carries a message and an optional title
    ├── ConfigError                   settings or environment are wrong
    ├── PolicyError                   a policy file is invalid (carries every problem found)
    │   └── PolicyTooLargeError       ... because it is over a size limit (bytes, alias expansion)
    ├── ValidationError               a request's content is wrong (bad field, bad value)
    │   ├── CelCompileError           a CEL expression does not compile
    │   ├── WebSocketMessageError     a WebSocket client sent a message the server cannot use
    │   ├── FilterError               the audit screen's filter bar cannot be read
    │   └── BuiltinToolError          a built-in tool's call cannot run as asked (isError)
    │       └── BuiltinArgumentsError ... because an argument does not fit its schema
    ├── NotFoundError                 the thing named does not exist (in this account)
    ├── ConflictError                 the change collides with the current state
    ├── AuthenticationError           no credential, or a credential that is not valid
    │   └── LinkExpiredError          a genuine email link or chat button, but too old
    ├── PermissionDeniedError         a valid credential without the right to do this
    ├── RateLimitedError              too many attempts (failed logins): wait ``retry_after`` s
    ├── PayloadTooLargeError          a body over the configured limit
    ├── StorageError                  the database failed or is out of date
    ├── TrackerError                  an issue tracker refused or failed a request
    ├── CelEvaluationError            a CEL expression failed on this call's values
    ├── BudgetExceededError           a hard budget stops a model request before the provider
    ├── McpUpstreamError              an upstream MCP server failed, or cannot be reached
    ├── ProviderUnavailableError      a model provider cannot be reached, or did not answer
    ├── EmbeddingError                an embeddings model refused, failed or answered garbage
    ├── ModelAnswerError              a model answered, but not the JSON it was asked for
    ├── BridgeConnectError            ``preloop mcp stdio`` cannot reach the server (or the key)
    └── PushFailedError               one push notification was not delivered

The classes above ``CelCompileError`` are defined here. The others live beside the code that
raises them: ``CelCompileError`` and ``CelEvaluationError`` in ``hub.policy.cel_python``,
``LinkExpiredError`` in ``hub.links``, ``BudgetExceededError`` in ``hub.model_gateway.ports``,
``McpUpstreamError`` in ``server.mcp._pool_types`` (imported from ``server.mcp.upstream``),
``ProviderUnavailableError`` in ``server.model_gateway.errors``, ``EmbeddingError`` in
``hub.search.gateway_embedder``, ``BridgeConnectError`` in
``server.mcp.bridge``, ``WebSocketMessageError`` in ``server.ws``, ``PushFailedError`` in
``bots.push``, ``FilterError`` (also a ``ValueError``) in ``tui.audit_log``,
``BuiltinToolError`` in ``hub.builtin_tools.results``, ``BuiltinArgumentsError`` in
``hub.builtin_tools.arguments`` and ``ModelAnswerError`` in ``hub.compliance.model``.

Every exception class Preloop defines is in this drawing, under its real parent, with the
``Error`` suffix; only private control-flow signals (``_Found`` and the like, caught in their
own package) are not errors. ``tests/unit/structure/test_error_tree.py`` holds the code to
this drawing (decision 0080).

Edges translate third-party errors into these once, at their seam, with ``raise ... from``.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One thing wrong with an input, located as precisely as we can."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    key: str | None = None

    def render(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class PreloopError(Exception):
    """Base of every error Preloop raises on purpose."""

    title = "Preloop error"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message


class ConfigError(PreloopError):
    title = "Configuration error"


class PolicyError(PreloopError):
    """A policy could not be loaded. ``problems`` lists every problem found, in file order."""

    title = "Invalid policy"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in policy"
        body = "\n".join(f"  - {p.render()}" for p in self.problems)
        super().__init__(f"{head}:\n{body}" if body else head)


class PolicyTooLargeError(PolicyError):
    """A policy (or cases file) over a size limit: too many bytes, or aliases that would
    expand it past the limit. Refused before it is built; over HTTP a 413, whatever the route."""

    title = "Policy too large"


class ValidationError(PreloopError):
    """Input that breaks a rule; ``field`` names the request field at fault, when one is."""

    title = "Invalid request"

    def __init__(self, message: str, *, title: str | None = None, field: str | None = None):
        super().__init__(message, title=title)
        self.field = field


class NotFoundError(PreloopError):
    title = "Not found"


class ConflictError(PreloopError):
    title = "Conflict"


class AuthenticationError(PreloopError):
    title = "Authentication required"


class PermissionDeniedError(PreloopError):
    title = "Permission denied"


class RateLimitedError(PreloopError):
    """Too many attempts in a while (failed logins, hub/login_limits.py); ``retry_after`` is
    the whole seconds until the next attempt may be made (HTTP 429 with ``Retry-After``)."""

    title = "Too many attempts"

    def __init__(self, message: str, *, retry_after: int = 1, title: str | None = None) -> None:
        super().__init__(message, title=title)
        self.retry_after = max(1, retry_after)


class PayloadTooLargeError(PreloopError):
    title = "Payload too large"


class StorageError(PreloopError):
    title = "Storage error"


class TrackerError(PreloopError):
    """An issue tracker refused or failed a request. The message names the tracker and the
    project; ``status`` is the tracker's HTTP status (``None`` when it could not be reached)
    and ``retry_after`` the seconds it asked to wait (429, secondary rate limits)."""

    title = "Issue tracker error"

    def __init__(
        self,
        message: str,
        *,
        tracker: str,
        project: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.tracker = tracker
        self.project = project
        self.status = status
        self.retry_after = retry_after
