"""The mails Warden sends; each is rendered now and delivered off the request path."""

from __future__ import annotations

from flask import current_app

from project.core import metrics
from project.core.mail import deliver, render_message
from project.core.tasks import defer


def _link(path: str, token: str) -> str:
    return f"{current_app.config['FRONTEND_URL']}/{path}?token={token}"


def _send(template: str, *, to: str, subject: str, **context: object) -> None:
    message = render_message(template, to=to, subject=subject, **context)
    defer(deliver, message.as_dict(), description=f"mail: {template}")
    metrics.MAILS.labels("queued").inc()


def verification(*, to: str, token: str) -> None:
    """Ask the owner of a new address to confirm it."""
    hours = current_app.config["VERIFY_TOKEN_TTL"] // 3600
    _send(
        "verify_email",
        to=to,
        subject="Confirm your email address",
        link=_link("verify-email", token),
        hours=hours,
    )


def password_reset(*, to: str, token: str) -> None:
    """Send a password reset link."""
    minutes = current_app.config["RESET_TOKEN_TTL"] // 60
    _send(
        "reset_password",
        to=to,
        subject="Reset your password",
        link=_link("reset-password", token),
        minutes=minutes,
    )


def password_changed(*, to: str) -> None:
    """Tell the owner that the password changed."""
    _send("password_changed", to=to, subject="Your password was changed")


def email_change_confirmation(*, to: str, token: str) -> None:
    """Ask the new address to confirm an email change."""
    hours = current_app.config["EMAIL_CHANGE_TOKEN_TTL"] // 3600
    _send(
        "confirm_email_change",
        to=to,
        subject="Confirm your new email address",
        link=_link("verify-email", token),
        hours=hours,
    )


def email_change_notice(*, to: str, new_email: str) -> None:
    """Tell the old address that a change to another address was requested."""
    _send(
        "email_change_notice",
        to=to,
        subject="Your email address is being changed",
        new_email=new_email,
    )


def account_exists(*, to: str) -> None:
    """Tell an existing owner that someone tried to register with their address."""
    _send(
        "account_exists",
        to=to,
        subject="You already have an account",
        link=f"{current_app.config['FRONTEND_URL']}/login",
    )
