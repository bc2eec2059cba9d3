"""Chat-ops and notification adapters (Slack, Mattermost, email, mobile push).

Each adapter implements the hub's notifier port and turns an inbound click into a hub command.
Not built yet: the approval hub issue adds them. Importing this package has no effect.
"""
