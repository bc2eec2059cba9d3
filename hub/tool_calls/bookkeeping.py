"""A tool call's bookkeeping: its audit records, and work that must finish even when the
call is cancelled.

Nothing runs that cannot be recorded (docs/decisions/0047): :meth:`Bookkeeping.attempt`
appends the ``tool.attempt`` record before a call is forwarded (or its approval claimed), and
a call whose attempt cannot be written is refused. The ``tool.call`` record is written once
per call (:meth:`Bookkeeping.finish`); when that fails after the attempt was recorded (the
call may have run) it is owed: retried with a growing pause until written, and once more at
:meth:`Bookkeeping.drain`.

An agent that goes away cancels its call, and under anyio (the MCP SDK's task groups) that
cancellation is delivered again at every later ``await``; bookkeeping awaited directly would
be cut short. :meth:`Bookkeeping.settle` runs it as a task of its own, kept until it
finishes, and awaits it through a shield.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from hub.auditing import Auditor
from hub.errors import PreloopError
from hub.ids import new_id
from hub.keys import Caller
from hub.redact import redact
from hub.tool_calls.outcomes import Reason, Refused
from hub.tool_calls.records import (
    ATTEMPT_KIND,
    AUDIT_DOWN,
    CALL_KIND,
    ToolAttempt,
    ToolCallRecord,
    Trail,
)

OWED_FIRST_DELAY = 0.5  # seconds before a failed tool.call record is written again
OWED_MAX_DELAY = 5.0

T = TypeVar("T")
log = logging.getLogger("preloop.tool_calls")


class Bookkeeping:
    def __init__(self, auditor: Auditor) -> None:
        self._auditor = auditor
        # Work that outlives a cancelled call (see settle), kept until it finishes.
        self._settling: set[asyncio.Future[Any]] = set()
        self._closing = asyncio.Event()  # set by drain: owed records stop waiting to retry

    # -- work that outlives its call -------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        task = asyncio.ensure_future(work)
        self._settling.add(task)
        task.add_done_callback(self._settled)
        return task

    def _settled(self, task: asyncio.Future[Any]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("tool call bookkeeping failed", exc_info=task.exception())

    async def settle(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end even when the calling task is being cancelled (the
        caller's cancellation still goes on at once)."""
        return await asyncio.shield(self.spawn(work))

    async def drain(self) -> None:
        """Wait for bookkeeping that outlived its call (before storage closes); owed
        ``tool.call`` records get one last attempt each, at once."""
        self._closing.set()
        while self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    # -- records ---------------------------------------------------------------------------

    async def attempt(self, caller: Caller, trail: Trail) -> Refused | None:
        """Record, durably, that the call is about to be forwarded; ``None`` when it was
        written (``trail.call_id`` is set), else the refusal (the call must not run)."""
        attempt = ToolAttempt(
            call_id=new_id("call"),
            server=trail.server,
            tool=trail.tool,
            args=trail.args,
            approval_id=trail.approval_id,
        )
        try:
            await self._auditor.record(
                caller.account_id, ATTEMPT_KIND, caller.key_id, attempt.payload()
            )
        except PreloopError as exc:
            held = trail.approval_id if isinstance(trail.approval_id, str) else None
            return Refused(
                reason=Reason.AUDIT_DOWN,
                message=(
                    f"Not run: {AUDIT_DOWN} ({exc.message}), and it runs no call it cannot "
                    f"record. Nothing was forwarded to {trail.server!r}; call again once the "
                    "audit log is writable."
                ),
                approval_id=held,
                status="refused",
                error=f"{AUDIT_DOWN}: {exc.message}",
            )
        trail.call_id = attempt.call_id
        return None

    async def finish(self, caller: Caller, record: ToolCallRecord) -> None:
        """Write the call's record. When that fails after its attempt was recorded (it may
        have run) the record is owed; a call that never got that far ran nothing: its lost
        record is logged."""
        try:
            await self._write(caller, record)
        except PreloopError as exc:
            if not isinstance(record.call_id, str):
                log.warning(
                    "tool.call record of a call that did not run was not written: %s",
                    exc.message,
                )
                return
            log.error(
                "tool.call record of call %s not written (%s); retrying until it is",
                record.call_id,
                exc.message,
            )
            self.spawn(self._owe(caller, record))

    async def _write(self, caller: Caller, record: ToolCallRecord) -> None:
        await self._auditor.record(caller.account_id, CALL_KIND, caller.key_id, record.payload())

    async def _owe(self, caller: Caller, record: ToolCallRecord) -> None:
        """Write an owed record, retrying with a growing pause, until it is written or the
        pipeline drains (then once more, at once; a record still failing is logged in full,
        redacted)."""
        delay = OWED_FIRST_DELAY
        while True:
            closing = self._closing.is_set()
            try:
                await self._write(caller, record)
            except PreloopError as exc:
                if closing:
                    log.error(
                        "tool.call record of call %s lost at shutdown (%s): %s",
                        record.call_id,
                        exc.message,
                        redact(record.payload()),
                    )
                    return
            else:
                log.info("owed tool.call record of call %s written", record.call_id)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            delay = min(delay * 2, OWED_MAX_DELAY)
