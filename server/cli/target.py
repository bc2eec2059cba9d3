"""Which server a command talks to: the one ``--url/--key/--profile`` option group, and the
shared API client (``hub.api_client``) behind it.

    @target_options
    def history(target: TargetFlags) -> None:
        versions = target.call(lambda client: client.policy_versions())

The client and httpx are imported when a command runs, never for ``--help``. API errors
arrive as the core's error tree (``hub.errors``), which ``server.cli.output.run`` prints.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

import click

if TYPE_CHECKING:
    from hub.api_client import ApiClient, Target

T = TypeVar("T")


@dataclass
class TargetFlags:
    """The flags as given (None: not given); :meth:`resolve` merges them with the
    environment and the saved profile, once."""

    url: str | None = None
    key: str | None = None
    profile: str = "default"
    _resolved: Target | None = field(default=None, repr=False)

    def resolve(self) -> Target:
        if self._resolved is None:
            from hub.api_client import resolve_target

            self._resolved = resolve_target(self.url, self.key, self.profile)
        return self._resolved

    def call(self, use: Callable[[ApiClient], Awaitable[T]]) -> T:
        """Open a client on the target, run ``use`` with it, close it; its answer."""
        import asyncio

        from hub.api_client import ApiClient

        target = self.resolve()

        async def run() -> T:
            async with ApiClient(target.url, target.api_key) as client:
                return await use(client)

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the usual case: a command line, no loop yet
            return asyncio.run(run())
        # Called from inside an event loop (a test, a notebook): run on a thread of its own.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(asyncio.run, run()).result()


Command = Callable[..., Any]


@overload
def target_options(func: Command) -> Command: ...


@overload
def target_options(*, url_flag: str) -> Callable[[Command], Command]: ...


def target_options(func: Command | None = None, *, url_flag: str = "--url") -> Any:
    """``--url``, ``--key`` and ``--profile``, given to the command as one ``target``
    argument (a :class:`TargetFlags`). ``url_flag`` renames ``--url`` for a command whose
    ``--url`` means something else (``preloop servers add --preloop-url``)."""

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def with_target(
            *args: Any, url: str | None, key: str | None, profile: str, **kw: Any
        ) -> Any:
            return command(*args, target=TargetFlags(url, key, profile), **kw)

        wrapped: Any = click.option(
            "--profile",
            default="default",
            show_default=True,
            envvar="PRELOOP_PROFILE",
            help="Saved login profile to use.",
        )(with_target)
        wrapped = click.option(
            "--key", default=None, help="API key (else PRELOOP_API_KEY or the saved profile)."
        )(wrapped)
        what = "Server URL" if url_flag == "--url" else "Preloop's URL"
        wrapped = click.option(
            url_flag, "url", default=None, help=f"{what} (else PRELOOP_URL or the saved profile)."
        )(wrapped)
        done: Command = wrapped
        return done

    return decorate(func) if func is not None else decorate
