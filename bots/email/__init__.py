"""The email channel, whole: the notifier (``notifier``: mail with per-recipient approve/deny
links) and the pages those links open (``pages``: GET confirms, POST decides).

aiosmtplib is imported when the first mail is sent; the pages need only the core.
"""

from bots.email.notifier import LINK_PATH, EmailNotifier
from bots.email.pages import EmailLinkPages

__all__ = ["LINK_PATH", "EmailLinkPages", "EmailNotifier"]
