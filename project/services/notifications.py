"""The mails Warden sends; each is rendered now and delivered off the request path."""

from __future__ import annotations

from project.core import metrics
from project.core.mail import deliver, render_message
from project.core.settings import current_settings
from project.core.tasks import defer


def lifetime(seconds: int) -> str:
    """How long a link lives, in words: whole hours from two on, else minutes or seconds."""
    if seconds >= 7200 and seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} seconds"


def _link(path: str, token: str) -> str:
    return f"{current_settings().FRONTEND_URL}/{path}?token={token}"


def _send(template: str, *, to: str, subject: str, **context: object) -> None:
    message = render_message(template, to=to, subject=subject, **context)
    defer(deliver, message.as_dict(), description=f"mail: {template}")
    metrics.MAILS.labels("queued").inc()


def verification(*, to: str, token: str) -> None:
    """Ask the owner of a new address to confirm it."""
    _send(
        "verify_email",
        to=to,
        subject="Confirm your email address",
        link=_link("verify-email", token),
        lifetime=lifetime(current_settings().VERIFY_TOKEN_TTL),
    )


def password_reset(*, to: str, token: str) -> None:
    """Send a password reset link."""
    _send(
        "reset_password",
        to=to,
        subject="Reset your password",
        link=_link("reset-password", token),
        lifetime=lifetime(current_settings().RESET_TOKEN_TTL),
    )


def login_unlock(*, to: str, token: str) -> None:
    """Offer the owner a way past a login lock caused by unknown devices."""
    _send(
        "login_unlock",
        to=to,
        subject="Sign-in attempts on your account",
        link=_link("unlock-login", token),
        lifetime=lifetime(current_settings().LOGIN_UNLOCK_TTL),
    )


def email_sign_in(*, to: str, token: str, code: str) -> None:
    """Send a passwordless sign-in link and its code."""
    _send(
        "email_sign_in",
        to=to,
        subject=f"Your sign-in code: {code}",
        link=_link("email-signin", token),
        code=code,
        lifetime=lifetime(current_settings().EMAIL_SIGNIN_TTL),
    )


def password_changed(*, to: str) -> None:
    """Tell the owner that the password changed."""
    _send("password_changed", to=to, subject="Your password was changed")


def email_change_confirmation(*, to: str, token: str) -> None:
    """Ask the new address to confirm an email change."""
    _send(
        "confirm_email_change",
        to=to,
        subject="Confirm your new email address",
        link=_link("verify-email", token),
        lifetime=lifetime(current_settings().EMAIL_CHANGE_TOKEN_TTL),
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
        link=f"{current_settings().FRONTEND_URL}/login",
    )


def factors_removed(*, to: str) -> None:
    """Tell the owner that an admin removed the account's second factors."""
    _send("factors_removed", to=to, subject="Your sign-in factors were removed")
