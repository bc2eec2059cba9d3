"""The Mattermost channel, whole: the notifier (``notifier``: a post with Approve / Deny
buttons), its posts (``posts``), the buttons' signed tokens (``tokens``) and the handler of
their callback (``actions``).

mattermostdriver (requests) is imported only when a notifier is built.
"""

from bots.mattermost.actions import MattermostActions
from bots.mattermost.notifier import MattermostNotifier, driver_options
from bots.mattermost.posts import announcement_post, decided_post
from bots.mattermost.tokens import ACTION_PATH, Action, ActionSigner, ActionToken

__all__ = [
    "ACTION_PATH",
    "Action",
    "ActionSigner",
    "ActionToken",
    "MattermostActions",
    "MattermostNotifier",
    "announcement_post",
    "decided_post",
    "driver_options",
]
