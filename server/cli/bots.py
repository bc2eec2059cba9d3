"""``preloop bots``: the notification and chat-ops worker (``server/worker.py``)."""

from __future__ import annotations

import click


@click.command()
def bots() -> None:
    """Run the bot worker: deliver approval notices on the configured channels and, with
    PRELOOP_SLACK_APP_TOKEN, receive Slack's clicks over Socket Mode (no public URL needed).

    \b
    Same settings as 'preloop serve' (PRELOOP_DATABASE_URL, PRELOOP_SLACK_*, ...). Meant for
    PostgreSQL; set PRELOOP_NOTIFICATIONS_DELIVER=worker on the servers so only it delivers.
    Stops cleanly on SIGTERM or Ctrl-C.
    """
    import asyncio
    import logging

    from hub.settings import load_settings
    from server.worker import check_worker_settings, run_worker

    settings = load_settings()
    check_worker_settings(settings)  # a bad configuration fails before anything opens
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    if settings.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    asyncio.run(run_worker(settings))
