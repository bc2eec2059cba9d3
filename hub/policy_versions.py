"""Policy-as-code use cases: validate, apply (declarative, versioned), export, diff, history,
rollback. The active policy of an account is its latest version."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

import msgspec

from hub.auditing import Auditor
from hub.cache import DEFAULT_SECONDS, Missing, Recent
from hub.clock import Clock
from hub.errors import ConflictError, NotFoundError, PolicyTooLargeError, Problem
from hub.mcp_servers import ServerRegistry
from hub.policy import (
    ApprovalWorkflow,
    CelEngine,
    CompiledPolicy,
    diff_policies,
    export_policy,
    load_policy,
)
from hub.ports import Storage
from hub.records import PolicyVersion, WorkflowRecord

_MAX_APPLY_ATTEMPTS = 5
# The largest policy accepted from outside (REST validate/diff/apply, the start-up file), in
# UTF-8 bytes: about 850 tools of five rules. Parsing it takes well under a second, in a
# worker thread. Stored versions (rollback, the active policy) are ours and not limited.
MAX_SOURCE_BYTES = 512 * 1024
MAX_VERSION = 2**31 - 1  # the version column is a 32-bit INTEGER


class ApplyResult(msgspec.Struct, frozen=True, kw_only=True):
    changed: bool
    dry_run: bool
    version: int | None  # the version now active (None: no policy yet, dry run on empty)
    previous_version: int | None
    diff: str


class PolicyService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        auditor: Auditor,
        *,
        engine: CelEngine | None = None,
        cache_seconds: float = DEFAULT_SECONDS,
        max_source_bytes: int = MAX_SOURCE_BYTES,
        servers: ServerRegistry | None = None,
    ) -> None:
        # A policy's mcp_servers are registered through the one registry (hub/mcp_servers.py).
        self._servers = servers or ServerRegistry(storage, clock)
        self._engine = engine
        self._max_source_bytes = max_source_bytes
        self._storage = storage
        self._clock = clock
        self._auditor = auditor
        self._compiled: dict[tuple[str, int], CompiledPolicy] = {}
        # The latest version per account, as last read (hub/cache.py): applies and rollbacks
        # here drop it at once; another replica's apply is seen within ``cache_seconds``.
        self._latest: Recent[str, PolicyVersion | None] = Recent(cache_seconds)

    async def validate(self, text: str, *, filename: str = "<policy>") -> CompiledPolicy:
        """Load and compile a policy given from outside; ``PolicyError`` lists every problem,
        ``PolicyTooLargeError`` says which limit it is over. Parsing and compiling run in a
        worker thread: the event loop (tool calls, approvals) never waits on them."""
        size = len(text.encode("utf-8", errors="surrogatepass"))
        if size > self._max_source_bytes:
            limit = self._max_source_bytes
            raise PolicyTooLargeError(
                [
                    Problem(
                        message=f"the policy is {size:,} bytes; the limit is {limit:,} bytes "
                        f"({limit / 1024:g} KiB)",
                        file=filename,
                    )
                ]
            )
        return await self._load(text, filename)

    async def _load(self, text: str, filename: str) -> CompiledPolicy:
        return await asyncio.to_thread(load_policy, text, filename=filename, engine=self._engine)

    async def active(self, account_id: str) -> tuple[PolicyVersion, CompiledPolicy] | None:
        """The account's current version and its compiled policy (compiled once, cached)."""
        cached = self._latest.get(account_id)
        if isinstance(cached, Missing):
            latest = await self._storage.policies.latest(account_id)
            self._latest.put(account_id, latest)
        else:
            latest = cached
        if latest is None:
            return None
        return latest, await self._compile(latest)

    def forget(self, account_id: str) -> None:
        """Read the account's current version afresh on its next use (another replica
        applied one: its ``policy.applied`` event arrived before this cache ran out)."""
        self._latest.drop(account_id)

    async def apply(
        self,
        account_id: str,
        text: str,
        *,
        actor: str,
        filename: str = "<policy>",
        dry_run: bool = False,
        comment: str = "",
        rollback_of: int | None = None,
    ) -> ApplyResult:
        """Make ``text`` the account's policy. Unchanged content creates no version."""
        compiled = await self.validate(text, filename=filename)
        return await self._apply(
            account_id,
            compiled,
            actor=actor,
            filename=filename,
            dry_run=dry_run,
            comment=comment,
            rollback_of=rollback_of,
        )

    async def _apply(
        self,
        account_id: str,
        compiled: CompiledPolicy,
        *,
        actor: str,
        filename: str,
        dry_run: bool,
        comment: str,
        rollback_of: int | None,
    ) -> ApplyResult:
        canonical = export_policy(compiled.document)
        for _ in range(_MAX_APPLY_ATTEMPTS):
            latest = await self._storage.policies.latest(account_id)
            old = latest.source if latest else None
            diff = diff_policies(
                old,
                canonical,
                old_name=f"version {latest.version}" if latest else "(no policy)",
                new_name=filename,
            )
            if latest is not None and latest.source == canonical:
                return ApplyResult(
                    changed=False,
                    dry_run=dry_run,
                    version=latest.version,
                    previous_version=latest.version,
                    diff="",
                )
            if dry_run:
                return ApplyResult(
                    changed=True,
                    dry_run=True,
                    version=latest.version if latest else None,
                    previous_version=latest.version if latest else None,
                    diff=diff,
                )
            number = (latest.version if latest else 0) + 1
            version = PolicyVersion(
                account_id=account_id,
                version=number,
                digest=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
                source=canonical,
                name=compiled.document.metadata.name,
                created_at=self._clock.now(),
                created_by=actor,
                comment=comment,
            )
            try:
                await self._storage.policies.add(version)
            except ConflictError:
                continue  # a concurrent apply took this number: recompute against it
            self._compiled[(account_id, number)] = compiled
            self._latest.drop(account_id)
            await self._sync(account_id, compiled, number)
            await self._auditor.record(
                account_id,
                "policy.applied",
                actor,
                {
                    "version": number,
                    "previous_version": latest.version if latest else None,
                    "digest": version.digest,
                    "name": version.name,
                    "comment": comment,
                    **({"rollback_of": rollback_of} if rollback_of is not None else {}),
                },
            )
            return ApplyResult(
                changed=True,
                dry_run=False,
                version=number,
                previous_version=latest.version if latest else None,
                diff=diff,
            )
        raise ConflictError("the policy changed concurrently too often; try again")

    async def export(self, account_id: str, version: int | None = None) -> str:
        return (await self._version(account_id, version)).source

    async def diff(self, account_id: str, text: str, *, filename: str = "<policy>") -> str:
        compiled = await self.validate(text, filename=filename)
        latest = await self._storage.policies.latest(account_id)
        return diff_policies(
            latest.source if latest else None,
            export_policy(compiled.document),
            old_name=f"version {latest.version}" if latest else "(no policy)",
            new_name=filename,
        )

    async def history(self, account_id: str) -> Sequence[PolicyVersion]:
        return await self._storage.policies.list(account_id)

    async def rollback(self, account_id: str, version: int, *, actor: str) -> ApplyResult:
        """Apply an earlier version's content again, as a new version."""
        old = await self._version(account_id, version)
        return await self._apply(
            account_id,
            await self._compile(old),  # a stored version: not held to the size limit
            actor=actor,
            filename=f"version {version}",
            dry_run=False,
            comment=f"rollback to version {version}",
            rollback_of=version,
        )

    async def workflow(self, account_id: str, version: int, name: str) -> ApprovalWorkflow | None:
        """Workflow ``name`` as policy ``version`` defined it (what a request was opened
        under); ``None`` when that version has no such workflow."""
        compiled = await self._compile(await self._version(account_id, version))
        return next((w for w in compiled.document.approval_workflows if w.name == name), None)

    async def _version(self, account_id: str, version: int | None) -> PolicyVersion:
        if version is None:
            found = await self._storage.policies.latest(account_id)
            if found is None:
                raise NotFoundError("no policy has been applied yet")
            return found
        found = None
        if 1 <= version <= MAX_VERSION:  # past the column's range, no database is asked
            found = await self._storage.policies.get(account_id, version)
        if found is None:
            raise NotFoundError(f"no policy version {version}")
        return found

    async def _compile(self, version: PolicyVersion) -> CompiledPolicy:
        """A stored version, compiled once (in a worker thread), then cached."""
        key = (version.account_id, version.version)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = await self._load(version.source, f"version {version.version}")
            self._compiled[key] = compiled
        return compiled

    async def _sync(self, account_id: str, compiled: CompiledPolicy, number: int) -> None:
        """The policy's workflows and servers become the stored ones."""
        now = self._clock.now()
        document = compiled.document
        await self._storage.workflows.replace_all(
            account_id,
            [
                WorkflowRecord(
                    account_id=account_id,
                    name=w.name,
                    spec=msgspec.to_builtins(w),
                    policy_version=number,
                    updated_at=now,
                )
                for w in document.approval_workflows
            ],
        )
        await self._servers.adopt(account_id, document.mcp_servers)
