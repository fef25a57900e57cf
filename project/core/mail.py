"""Outgoing mail: messages with a text and an HTML part, sent by a console or SMTP backend."""

from __future__ import annotations

import logging
import smtplib
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from flask import render_template

from config import Settings
from project.core import metrics
from project.core.settings import current_settings

logger = logging.getLogger("warden.mail")


@dataclass(frozen=True)
class Message:
    """One email, rendered and ready to send."""

    to: str
    subject: str
    text: str
    html: str

    def as_dict(self) -> dict[str, str]:
        """Plain data for a job queue."""
        return asdict(self)


def render_message(template: str, *, to: str, subject: str, **context: Any) -> Message:
    """Render ``mail/<template>.txt`` and ``.html`` into a message."""
    values = {"subject": subject, **context}
    return Message(
        to=to,
        subject=subject,
        text=render_template(f"mail/{template}.txt", **values),
        html=render_template(f"mail/{template}.html", **values),
    )


class MailBackend(Protocol):
    """Something that delivers a message or raises."""

    def send(self, message: Message) -> None:
        """Deliver ``message``."""


class ConsoleBackend:
    """Development backend: writes the message to the log so links can be clicked offline.

    It prints message bodies, links and tokens included: never use it in production.
    """

    def send(self, message: Message) -> None:
        logger.info(
            "mail (console backend)",
            extra={
                "mail_to": message.to,
                "mail_subject": message.subject,
                "mail_text": message.text,
            },
        )


class SmtpBackend:
    """Sends through an SMTP server, with STARTTLS and login when configured."""

    def __init__(self, settings: Settings) -> None:
        self.host = str(settings.MAIL_SERVER)
        self.port = settings.MAIL_PORT
        self.username = settings.MAIL_USERNAME
        self.password = settings.MAIL_PASSWORD
        self.use_tls = settings.MAIL_USE_TLS
        self.sender = settings.MAIL_FROM
        self.timeout = settings.MAIL_TIMEOUT

    def send(self, message: Message) -> None:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email.set_content(message.text)
        email.add_alternative(message.html, subtype="html")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.use_tls:
                smtp.starttls()
            if self.username and self.password:
                smtp.login(self.username, self.password)
            smtp.send_message(email)


def backend_for(settings: Settings) -> MailBackend:
    """The backend MAIL_BACKEND names."""
    return SmtpBackend(settings) if settings.MAIL_BACKEND == "smtp" else ConsoleBackend()


def deliver(message: dict[str, str]) -> None:
    """Send one message with the configured backend (the job behind every mail)."""
    try:
        backend_for(current_settings()).send(Message(**message))
    except Exception:
        metrics.MAILS.labels("failed").inc()
        raise
    metrics.MAILS.labels("sent").inc()
    logger.info("mail sent", extra={"mail_subject": message["subject"]})
