"""The issue trackers' REST APIs on httpx: GitHub (and GitHub Enterprise Server), GitLab REST
v4 (any base URL) and Jira Cloud REST v3, each a ``hub.trackers.ports.TrackerClient``;
``HttpTrackerClients`` builds the one a ``Tracker`` record names, its token resolved through
custody. The hub never imports this package (import contracts): it sees the ports only."""

from server.trackers.clients import HttpTrackerClients

__all__ = ["HttpTrackerClients"]
