"""The stdio transport: an upstream MCP server as a long-lived subprocess.

Ours rather than the SDK's ``stdio_client`` so the pool can see the process: its pid, its exit
status and the tail of its stderr, which is what an operator needs when a server dies. It
speaks the same stream contract (``SessionMessage`` in and out) as every SDK transport.

Beside the SDK's session it carries raw requests (:mod:`server.mcp._raw`): ``Link.channel``
writes their lines to the process, and an output line answering one of them (or reporting its
progress) goes to its waiter before the SDK's reader would parse it.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import CONNECTION_CLOSED

from server.mcp._link import Link, log
from server.mcp._raw import RawCall, RawCalls, cancel_line

if TYPE_CHECKING:
    from mcp.client.session import ClientSession

    from server.mcp._pool_types import UpstreamConfig

BASE_ENV_NAMES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    # Windows needs these to start most programs at all.
    "SYSTEMROOT",
    "COMSPEC",
    "PATHEXT",
    "TEMP",
    "TMP",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
)
"""Variables a stdio server inherits from Preloop's environment; everything else it gets only
from its own configuration, so a server never sees Preloop's secrets by accident."""

GRACE_SECONDS = 2.0  # after stdin closes, before SIGTERM (the spec's shutdown sequence)
TERM_SECONDS = 2.0  # after SIGTERM, before SIGKILL


def base_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The minimal environment every stdio server starts from."""
    source = os.environ if environ is None else environ
    return {
        name: source[name]
        for name in BASE_ENV_NAMES
        if name in source and not source[name].startswith("()")  # no exported shell functions
    }


@asynccontextmanager
async def open_stdio(config: UpstreamConfig, link: Link) -> AsyncIterator[tuple[Any, Any]]:
    """Start the server process and speak newline-delimited JSON-RPC over its stdin/stdout.

    Shutdown follows the spec: close stdin, wait, SIGTERM the process group, wait, SIGKILL.
    Every wait is bounded and shielded, so neither a hung server nor a cancelled caller can
    leave a process behind.
    """
    if not config.command:
        raise ValueError("a stdio server needs a command")
    env = base_environment() | dict(config.env)
    process = await anyio.open_process(
        [config.command, *config.args],
        env=env,
        cwd=config.cwd,
        start_new_session=True,  # its own process group, so shutdown reaches its children
    )
    link.pid = process.pid
    channel = StdioChannel(process, link)
    link.channel = channel
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def pump_stdout() -> None:
        assert process.stdout is not None
        buffer = b""
        try:
            async with read_writer:
                async for chunk in process.stdout:
                    lines = (buffer + chunk).split(b"\n")
                    buffer = lines.pop()
                    for line in lines:
                        if line.strip() and not channel.calls.route_line(line):
                            await read_writer.send(_parse_line(config.name, line))
                link.end("closed its output")  # before the session sees the end of its stream
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            link.end("closed its output")
            channel.calls.close()

    async def pump_stdin() -> None:
        assert process.stdin is not None
        try:
            async with write_reader:
                async for message in write_reader:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await process.stdin.send(data.encode() + b"\n")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # The server stopped reading: end the session rather than hang its requests.
            link.end("stopped reading its input")
            channel.calls.close()
            await read_writer.aclose()

    stderr_done = anyio.Event()

    async def pump_stderr() -> None:
        assert process.stderr is not None
        buffer = b""

        def keep(raw: bytes) -> None:
            line = raw.decode(errors="replace").rstrip()
            link.stderr_tail.append(line)
            log.info("[%s] %s", config.name, line)

        try:
            async for chunk in process.stderr:
                lines = (buffer + chunk).split(b"\n")
                buffer = lines.pop()
                for raw in lines:
                    keep(raw)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            if buffer:
                keep(buffer)
            stderr_done.set()

    async def watch_exit() -> None:
        link.exit_status = await process.wait()
        link.end("exited")

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump_stdout)
            tg.start_soon(pump_stdin)
            tg.start_soon(pump_stderr)
            tg.start_soon(watch_exit)
            try:
                yield read_stream, write_stream
            finally:
                with anyio.CancelScope(shield=True):
                    await _stop_process(process, write_stream, link)
                    link.exit_status = process.returncode
                    await read_stream.aclose()
                    # The process is gone: let its last words (often the reason) be read.
                    with anyio.move_on_after(GRACE_SECONDS):
                        await stderr_done.wait()
                tg.cancel_scope.cancel()
    finally:
        channel.calls.close()
        for stream in (read_writer, read_stream, write_stream, write_reader):
            stream.close()
        with anyio.CancelScope(shield=True):
            await _close_process(process)


class StdioChannel:
    """Raw requests to the process: a request is one line on its input (a line is written
    whole, so it never interleaves with the SDK's)."""

    def __init__(self, process: anyio.abc.Process, link: Link) -> None:
        self.calls = RawCalls()
        self._process = process
        self._link = link

    async def send(
        self, call: RawCall, body: bytes, headers: dict[str, str], progress: Any
    ) -> None:
        if not await self._write(body + b"\n"):
            call.settle(MCPError(code=CONNECTION_CLOSED, message="Connection closed"))

    async def cancel(self, session: ClientSession, call: RawCall, reason: str) -> None:
        await self._write(cancel_line(session, call, reason))  # in order after the request

    async def _write(self, line: bytes) -> bool:
        assert self._process.stdin is not None
        try:
            await self._process.stdin.send(line)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            self._link.end("stopped reading its input")
            self.calls.close()
            return False
        return True


async def _stop_process(process: anyio.abc.Process, write_stream: Any, link: Link) -> None:
    """Close stdin, then escalate to SIGTERM and SIGKILL of the process group, each bounded."""
    await write_stream.aclose()
    if process.stdin is not None:
        with suppress(OSError, anyio.ClosedResourceError, anyio.BrokenResourceError):
            await process.stdin.aclose()
    with anyio.move_on_after(GRACE_SECONDS):
        await process.wait()
    for signum, wait in ((signal.SIGTERM, TERM_SECONDS), (signal.SIGKILL, TERM_SECONDS)):
        # Signal the whole group even if the leader is gone: its children may not be.
        if process.returncode is None:
            link.signalled = True
        _signal_group(process, signum)
        if process.returncode is not None and signum == signal.SIGTERM:
            break
        with anyio.move_on_after(wait):
            await process.wait()
        if process.returncode is not None:
            break
    if process.returncode is None:
        log.warning("MCP server process %d survived SIGKILL; abandoning it", process.pid)


def _signal_group(process: anyio.abc.Process, signum: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - no process groups there
        with suppress(ProcessLookupError, OSError):
            process.kill()
        return
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


async def _close_process(process: anyio.abc.Process) -> None:
    """Release the pipes and the asyncio subprocess transport (or they warn at GC)."""
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with suppress(OSError, anyio.ClosedResourceError, anyio.BrokenResourceError):
                await stream.aclose()
    if process.returncode is None:  # only if startup itself was interrupted
        _signal_group(process, signal.SIGKILL)
    with anyio.move_on_after(TERM_SECONDS):
        await process.aclose()


def _parse_line(server: str, line: bytes) -> SessionMessage | Exception:
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        log.warning("[%s] not a JSON-RPC message on stdout: %.200r", server, line)
        return exc
