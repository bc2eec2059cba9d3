"""A fork server for the test MCP server: imports it once, forks a copy per launch.

``python -m tests.servers.forkserver`` listens on ``tests.servers.launch.socket_path()``
(a ``SOCK_SEQPACKET`` Unix socket). Each request from ``tests/servers/launch.py`` carries the
launcher's argv, environment, working directory and pid, and its stdin, stdout and stderr as
passed file descriptors. The server forks; the copy takes those as its own standard streams,
environment and directory and runs ``upstream_server.main``. The server answers ``pid <n>``,
then ``exit <code>`` when the copy is reaped. It is single-threaded (fork and threads do not
mix) and serves until SIGTERM. ``tests/conftest.py`` starts it for a test run.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import selectors
import signal
import socket
import sys
import threading
import traceback

from tests.servers.launch import socket_path


def _preload() -> None:
    """Everything a copy would import: the server module, its transports' libraries."""
    import mcp.server.sse
    import mcp.server.stdio  # noqa: F401
    import starlette.applications
    import starlette.routing  # noqa: F401
    import uvicorn  # noqa: F401

    import tests.servers.upstream_server  # noqa: F401


def _exit_with_launcher(launcher: int) -> None:
    """The copy ends when its launcher does, even by SIGKILL (which cannot be forwarded)."""
    import select
    import time

    try:
        pidfd = os.pidfd_open(launcher)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd (an old kernel): poll instead
        while True:
            try:
                os.kill(launcher, 0)
            except ProcessLookupError:
                os._exit(1)
            time.sleep(0.2)
    select.select([pidfd], [], [])
    os._exit(1)


def _run_copy(request: dict[str, object], fds: list[int]) -> None:
    """In the forked copy: become the launched server. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        os.setsid()
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False), encoding="utf-8", line_buffering=True
        )
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", line_buffering=True
        )
        env = request["env"]
        assert isinstance(env, dict)
        os.environ.clear()
        os.environ.update(env)
        os.environ["TEST_SERVER_PID"] = str(request["pid"])
        os.chdir(str(request["cwd"]))
        launcher = int(str(request["pid"]))
        threading.Thread(target=_exit_with_launcher, args=(launcher,), daemon=True).start()
        gc.unfreeze()
        from tests.servers import upstream_server

        argv = request["argv"]
        assert isinstance(argv, list)
        sys.argv = ["upstream_server", *argv]
        try:
            upstream_server.main([str(arg) for arg in argv])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    _preload()
    gc.collect()
    gc.freeze()  # the copies share these pages instead of touching them at their first GC
    path = socket_path()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    bound = os.stat(path).st_ino  # another run may bind the path later: leave its socket be
    listener.listen(128)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    waiting: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    print("READY", flush=True)
    try:
        while not stopping:
            for key, _ in selector.select():
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    _launch(conn, listener, waiting)
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_read, 4096)
                    _reap(waiting)
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == bound:
                os.unlink(path)
        listener.close()


def _launch(
    conn: socket.socket, listener: socket.socket, waiting: dict[int, socket.socket]
) -> None:
    try:
        message, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
        request = json.loads(message)
    except (OSError, ValueError):
        conn.close()
        return
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        conn.close()
        return
    pid = os.fork()
    if pid == 0:
        listener.close()
        conn.close()
        for other in waiting.values():
            other.close()
        _run_copy(request, fds)
    for fd in fds:
        os.close(fd)
    try:
        conn.send(f"pid {pid}".encode())
    except OSError:
        conn.close()
        return
    waiting[pid] = conn


def _reap(waiting: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = waiting.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(f"exit {os.waitstatus_to_exitcode(status)}".encode())
            conn.close()


if __name__ == "__main__":
    serve()
