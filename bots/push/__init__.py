"""The mobile push channel, whole: the notifier that reaches paired phones through the push
proxy (``notifier``). It has no inbound side here: a phone decides through the device API
(``/api/v1/devices/me/...``, hub/devices.py), with the device credential its pairing gave it.
"""

from bots.push.notifier import CHANNEL, MAX_BODY, PushFailedError, PushNotifier, masked

__all__ = ["CHANNEL", "MAX_BODY", "PushFailedError", "PushNotifier", "masked"]
