"""Start ``tests/servers/upstream_server.py`` without paying for its imports each time.

The test MCP server imports the MCP SDK (about 0.7 s of CPU), and the suite starts it hundreds
of times. A fork server (``tests/servers/forkserver.py``, started once per test run) holds the
imported module; this launcher, which imports only the standard library, hands it its stdin,
stdout and stderr over a Unix socket and gets a forked copy running ``upstream_server.main``
on them. The launcher stays the process its starter sees: it forwards SIGTERM, SIGINT and SIGHUP
to the copy, exits with the copy's exit status, and the copy exits when the launcher dies
(SIGKILL included), so pool shutdown, crash and restart behave as with a fresh interpreter. The
copy's ``stats`` tool reports the launcher's pid (``TEST_SERVER_PID``).

Without a fork server listening (a test run without it, or it is gone), the launcher execs
``python -m tests.servers.upstream_server`` with the same arguments: same behaviour, slower.

    python -m tests.servers.launch stdio | http [--port N] | sse [--port N]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVER_MODULE = "tests.servers.upstream_server"


def socket_path() -> str:
    """Where this checkout's fork server listens (one per checkout and user)."""
    digest = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"preloop-forkserver-{os.getuid()}-{digest}.sock")


def _exec_fresh(args: list[str]) -> None:
    argv = [sys.executable, "-m", SERVER_MODULE, *args]
    os.execv(sys.executable, argv)  # noqa: S606 - the same interpreter, by its path


def main() -> None:
    args = sys.argv[1:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(socket_path())
        request = {"argv": args, "env": dict(os.environ), "cwd": os.getcwd(), "pid": os.getpid()}
        socket.send_fds(sock, [json.dumps(request).encode()], [0, 1, 2])
        reply = sock.recv(64)
    except OSError:
        reply = b""
    if not reply.startswith(b"pid "):
        sock.close()
        _exec_fresh(args)  # no fork server: the slow way, same behaviour
    child = int(reply.split()[1])

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    # The copy holds the pipes now: once it exits, its reader sees EOF without waiting for us.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    status = sock.recv(64)  # "exit <code>" once the copy is gone; b"" if the fork server died
    code = int(status.split()[1]) if status.startswith(b"exit ") else 1
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
