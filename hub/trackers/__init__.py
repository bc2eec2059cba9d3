"""Issue trackers (GitHub, GitLab, Jira): the core's side of syncing them into Preloop.

So far: verifying the trackers' signed webhook deliveries (``webhooks.py``). The adapters, the
sync and the built-in tools come with the rest of issue 15.
"""
