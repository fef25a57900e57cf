"""A real SMTP server (aiosmtpd) that keeps what it receives, for the tests to read."""

from __future__ import annotations

import email
import re
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

TOKEN = re.compile(r"[?&]token=([A-Za-z0-9_.\-]+)")


@dataclass(frozen=True)
class Received:
    """One delivered message."""

    to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        """The Subject header."""
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        """The plain-text part."""
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part else ""

    @property
    def html(self) -> str:
        """The HTML part."""
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part else ""

    @property
    def token(self) -> str:
        """The one-time token in the message's link."""
        found = TOKEN.search(self.text)
        assert found, self.text
        return found.group(1)


class Mailbox:
    """Collects messages delivered to the SMTP server."""

    def __init__(self) -> None:
        self._messages: list[Received] = []
        self._changed = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """aiosmtpd hook: store the message."""
        message = email.message_from_bytes(envelope.content, policy=default)
        with self._changed:
            self._messages.append(Received(list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
            self._changed.notify_all()
        return "250 OK"

    def clear(self) -> None:
        """Forget every message."""
        with self._changed:
            self._messages.clear()

    def messages(self, to: str | None = None) -> list[Received]:
        """What arrived so far, optionally for one recipient."""
        with self._changed:
            return [
                m for m in self._messages if to is None or to.lower() in (r.lower() for r in m.to)
            ]

    def wait_for(self, to: str, subject: str, timeout: float = 10.0) -> Received:
        """Wait until a message to ``to`` whose subject contains ``subject`` arrives."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for received in self._messages:
                    if (
                        to.lower() in (r.lower() for r in received.to)
                        and subject in received.subject
                    ):
                        return received
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    subjects = [(m.to, m.subject) for m in self._messages]
                    raise AssertionError(f"no mail to {to} about {subject!r}; got {subjects}")
                self._changed.wait(remaining)


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_smtp_server() -> tuple[Controller, Mailbox]:
    """Start the server on a free port; the caller stops the controller."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, mailbox
