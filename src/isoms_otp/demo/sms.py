"""The simulated SMS gateway: messages go to the outbox table and the log, never to a phone.

This is the one place where the demo writes a code to its log, on purpose: the issue asks for
sent text messages to show in the log, and every such line starts with ``[SIMULATED SMS]``. A
real backend hands the text to its SMS provider and logs only that a message was sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .db import DemoDB, Message

__all__ = ["Outbox", "SmsSink"]

#: Sends ``body`` to ``recipient`` (a username); what :func:`create_app` calls for each code.
SmsSink = Callable[[str, str], None]

log = logging.getLogger("isoms_otp.demo.sms")


class Outbox:
    """An :data:`SmsSink` that stores each message in ``db`` and logs it, marked simulated."""

    __slots__ = ("_clock", "_db")

    def __init__(self, db: DemoDB, *, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    def __call__(self, recipient: str, body: str) -> None:
        """Deliver ``body`` to ``recipient``'s outbox and log it."""
        self._db.add_message(Message(sent_at=self._clock(), recipient=recipient, body=body))
        log.info("[SIMULATED SMS] to %s: %s", recipient, body)
