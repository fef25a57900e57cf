"""Sign-in with an identity provider, and the account's linked identities.

The browser that starts a sign-in gets a signed, short-lived cookie holding the state,
nonce and PKCE verifier; the callback is accepted only with that cookie and a state it
names, once. The callback never hands out tokens: it redirects to the frontend with a
single-use code, traded by one POST for the token pair (or a second-factor challenge).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from itsdangerous import BadData, URLSafeTimedSerializer
from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.exc import IntegrityError

from project.core import emails, errors, security
from project.core.settings import current_settings
from project.extensions import db, limiter
from project.models import AuditEventType, Identity, TokenPurpose, User
from project.models.types import utcnow
from project.repositories import UserRepository
from project.repositories.identities import IdentityRepository
from project.services import audit, one_time_tokens, providers
from project.services.providers import Profile

logger = logging.getLogger(__name__)

# How long a started sign-in may take at the provider, seconds.
FLOW_TTL = 600
# How long the frontend has to trade the callback's code, seconds.
SIGN_IN_CODE_TTL = 120
FLOW_SALT = "warden.sign-in-flow"
LINK_SALT = "warden.link-ticket"
# Seconds a link ticket lets the browser start linking, after the signed-in request.
LINK_TICKET_TTL = 60


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and the signed cookie value that binds the flow to it."""

    url: str
    flow: str


def allowed_return(return_to: str | None) -> str:
    """``return_to`` (default FRONTEND_URL) if its origin is allowed; else invalid_redirect.

    Only exact origins pass: FRONTEND_URL's and SIGNIN_REDIRECT_ORIGINS, so a sign-in
    can never end on another site (open redirect). Its fragment is dropped: the code goes
    there.
    """
    settings = current_settings()
    target = return_to or settings.FRONTEND_URL
    allowed = {_origin(settings.FRONTEND_URL), *settings.SIGNIN_REDIRECT_ORIGINS}
    try:
        parts = urlsplit(target)
        origin = _origin(target)
    except ValueError:
        origin = None
    if origin is None or origin not in allowed or "\\" in target:
        raise errors.InvalidRedirect("The return address is not allowed.")
    return urlunsplit(parts._replace(fragment=""))


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_settings().SECRET_KEY, salt=FLOW_SALT)


def link_ticket(*, user_id: uuid.UUID, provider: str, return_to: str | None) -> str:
    """A signed ticket that lets a browser start linking ``provider`` to ``user_id``, once,
    within LINK_TICKET_TTL: the link starts with a top-level navigation, which carries no
    bearer token. The provider and the return address are checked now."""
    providers.get(provider)
    allowed_return(return_to)
    return URLSafeTimedSerializer(current_settings().SECRET_KEY, salt=LINK_SALT).dumps(str(user_id))


def _ticket_user(ticket: str) -> uuid.UUID:
    expired = errors.SignInFlowInvalid("This link request has expired; start again.")
    serializer = URLSafeTimedSerializer(current_settings().SECRET_KEY, salt=LINK_SALT)
    try:
        user_id = uuid.UUID(serializer.loads(ticket, max_age=LINK_TICKET_TTL))
    except (BadData, ValueError):
        raise expired from None
    if not _first_use(f"link:{ticket}"):
        raise expired
    return user_id


def start(
    *,
    provider: str,
    redirect_uri: str,
    return_to: str | None,
    link_ticket: str | None = None,
) -> Started:
    """Begin a sign-in (or, with a ``link_ticket``, a link) at ``provider``."""
    found = providers.get(provider)
    target = allowed_return(return_to)
    link_user_id = _ticket_user(link_ticket) if link_ticket else None
    authorization = found.authorize(redirect_uri)
    flow = _serializer().dumps(
        {
            "provider": provider,
            "state": authorization.state,
            "nonce": authorization.nonce,
            "verifier": authorization.code_verifier,
            "return_to": target,
            "link": str(link_user_id) if link_user_id else None,
        }
    )
    return Started(url=authorization.url, flow=flow)


def _flow(flow: str | None, *, provider: str, state: str | None) -> dict[str, Any]:
    """The flow this browser started, if the callback's state is its state; used once."""
    invalid = errors.SignInFlowInvalid("This sign-in was not started here or has expired.")
    if not flow or not state:
        raise invalid
    try:
        data: dict[str, Any] = _serializer().loads(flow, max_age=FLOW_TTL)
    except BadData:
        raise invalid from None
    # A state from another browser's flow (login CSRF) or another provider fails here.
    if data.get("provider") != provider or not hmac.compare_digest(str(data.get("state")), state):
        raise invalid
    if not _first_use(state):
        raise errors.SignInFlowInvalid("This sign-in was already completed; start again.")
    return data


def _first_use(value: str) -> bool:
    """Count a state or ticket as used; False when it was used before (a replay)."""
    digest = hashlib.sha256(value.encode()).hexdigest()
    try:
        return bool(
            FixedWindowRateLimiter(limiter.storage).hit(
                RateLimitItemPerSecond(1, FLOW_TTL), "warden-sign-in-state", digest
            )
        )
    except StorageError:
        # The provider still accepts each code once; the flow cookie also expires.
        logger.warning("sign-in state storage unavailable; relying on single-use codes")
        return True


def callback(
    *,
    provider: str,
    flow: str | None,
    state: str | None,
    code: str | None,
    error: str | None,
    redirect_uri: str,
) -> str:
    """Finish the provider's leg; return where to send the browser.

    A sign-in returns to the frontend with ``#code=``, a single-use code for the token
    pair; a link with ``#linked=<provider>``.
    """
    found = providers.get(provider)
    data = _flow(flow, provider=provider, state=state)
    if error or not code:
        raise errors.ProviderRefused(f"The provider refused: {error or 'no code'}.")
    profile = found.profile(
        code=code, redirect_uri=redirect_uri, code_verifier=data["verifier"], nonce=data["nonce"]
    )
    target = data["return_to"]
    if data["link"]:
        link(user_id=uuid.UUID(data["link"]), provider=provider, profile=profile)
        return f"{target}#{urlencode({'linked': provider})}"
    user = resolve(provider=provider, profile=profile)
    sign_in_code = one_time_tokens.issue(
        user.id,
        TokenPurpose.SIGN_IN,
        ttl=SIGN_IN_CODE_TTL,
        data={"methods": ["oidc"], "provider": provider},
    )
    db.session.commit()
    return f"{target}#{urlencode({'code': sign_in_code})}"


def resolve(*, provider: str, profile: Profile) -> User:
    """The account an identity signs in to, by the linking rules (no commit).

    A known identity signs in to its account. A new one whose address the provider
    verified creates an account, or links to the account of that address when the account
    verified it too. Anything else is refused: nobody takes over an account by registering
    its address at a provider.
    """
    users = UserRepository()
    identities = IdentityRepository()
    known = identities.find(provider, profile.subject)
    if known is not None:
        user = users.lock(known.user_id)
        if user is None:
            raise errors.SignInFlowInvalid("This identity's account is gone; start again.")
        _check_active(user)
        known.last_used_at, known.email = utcnow(), profile.email
        return user
    address = _address(profile.email)
    holder = users.get_by_email(address.key) if address else None
    if holder is not None:
        if not (profile.email_verified and holder.email_verified):
            audit.record_now(
                AuditEventType.IDENTITY_REFUSED,
                user_id=holder.id,
                actor_id=holder.id,
                details={"provider": provider, "reason": "link_required"},
            )
            raise errors.IdentityLinkRequired(
                "An account already uses this address: sign in to it and link the provider"
                " from there."
            )
        user = users.lock(holder.id)
        if user is None:
            raise errors.SignInFlowInvalid("This account is gone; start again.")
        _check_active(user)
        _add_identity(user, provider, profile, automatic=True)
        return user
    if address is None or not profile.email_verified:
        raise errors.ProviderEmailUnverified(
            "The provider did not confirm an email address; a new account needs one."
        )
    user = User(
        email=address.email,
        email_normalized=address.key,
        password_hash=security.unusable_password(),
        full_name=(profile.name or None) and profile.name[:200],
        email_verified=True,
    )
    try:
        users.add(user)
    except IntegrityError:
        db.session.rollback()
        raise errors.EmailTaken("An account with this email was created meanwhile.") from None
    audit.record(
        AuditEventType.USER_REGISTERED,
        user_id=user.id,
        actor_id=user.id,
        details={"provider": provider},
    )
    _add_identity(user, provider, profile, automatic=True)
    return user


def _address(email: str | None) -> emails.Address | None:
    if not email:
        return None
    try:
        return emails.parse(email)
    except emails.InvalidEmailError:
        return None


def _check_active(user: User) -> None:
    if not user.is_active:
        raise errors.AccountDisabled("This account has been deactivated.")


def _add_identity(user: User, provider: str, profile: Profile, *, automatic: bool) -> None:
    try:
        IdentityRepository().add(
            Identity(
                user_id=user.id,
                provider=provider,
                subject=profile.subject[:255],
                email=profile.email[:254] if profile.email else None,
            )
        )
    except IntegrityError:
        # The same identity linked by a concurrent callback: the unique index decided.
        db.session.rollback()
        raise errors.IdentityTaken("This identity was linked meanwhile; try again.") from None
    audit.record(
        AuditEventType.IDENTITY_LINKED,
        user_id=user.id,
        actor_id=user.id,
        details={"provider": provider, "automatic": automatic},
    )


def link(*, user_id: uuid.UUID, provider: str, profile: Profile) -> None:
    """Link an identity to the signed-in user who started the flow."""
    user = UserRepository().lock(user_id)
    if user is None:
        raise errors.SignInFlowInvalid("This account is gone; start again.")
    _check_active(user)
    known = IdentityRepository().find(provider, profile.subject)
    if known is not None and known.user_id != user.id:
        raise errors.IdentityTaken("This identity belongs to another account.")
    if known is None:
        _add_identity(user, provider, profile, automatic=False)
    else:
        known.last_used_at, known.email = utcnow(), profile.email
    db.session.commit()


def list_identities(*, user_id: uuid.UUID) -> list[Identity]:
    """The user's identities, oldest first."""
    return IdentityRepository().of_user(user_id)


def unlink(*, user_id: uuid.UUID, identity_id: uuid.UUID) -> None:
    """Remove one of the user's identities, unless it is the last way to sign in."""
    user = UserRepository().lock(user_id)
    identities = IdentityRepository()
    identity = identities.get(identity_id)
    if user is None or identity is None or identity.user_id != user.id:
        raise errors.NotFound("No such identity.")
    if not security.has_usable_password(user.password_hash) and (
        identities.count_of_user(user.id) <= 1
    ):
        raise errors.LastSignInMethod(
            "This is the account's only way to sign in: set a password or link another"
            " provider first."
        )
    identities.delete(identity)
    audit.record(
        AuditEventType.IDENTITY_UNLINKED,
        user_id=user.id,
        actor_id=user.id,
        details={"provider": identity.provider},
    )
    db.session.commit()


def redeem_sign_in_code(*, code: str) -> tuple[User, list[str]]:
    """Use up a callback's code; return its user and how they proved who they are (no commit)."""
    token = one_time_tokens.find(code, TokenPurpose.SIGN_IN)
    user = UserRepository().lock(token.user_id)
    if user is None:
        raise errors.InvalidOneTimeToken("This code is invalid or has expired.")
    one_time_tokens.consume(token)
    _check_active(user)
    if current_settings().REQUIRE_VERIFIED_EMAIL and not user.email_verified:
        # As at login: an identity linked to an unconfirmed account does not pass.
        raise errors.EmailNotVerified("Confirm your email address before signing in.")
    return user, [str(method) for method in token.data.get("methods", ["oidc"])]
