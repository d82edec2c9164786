"""Password resets and portal invitations (PRODUCT.md §2).

- **Reset & Send Password** (staff): ``reset_and_send_password``.
- **Forgotten password** (portal): ``request_reset`` (email) -> ``answer_security_question``
  when the client has a question and answer -> the "Password Reset Validation" email
  carries ``{system_url}/reset?token=...`` and the token itself -> ``redeem_token`` with a
  new password -> logged in at once (or asked for the TOTP code: a reset never switches
  two-factor off), every other link of the client void, "Password Reset Confirmation" sent.
- **Portal invitation** (staff): ``send_portal_invitation``, a set-password link by the
  same tokens, valid 7 days, for a client with no password yet.

Tokens are 256 random bits (``secrets.token_urlsafe(32)``), stored only as their SHA-256
digest, single use: redeeming is a conditional UPDATE on the unused row, so of two
concurrent redemptions exactly one wins. The email's body is masked in the email log
once delivered (sensitive templates, ``rules.mail.delivery``).

An email that is no client's (or a Closed client's) gets the same answers: where a
question would be asked, a decoy question chosen by an HMAC of the email under the site
secret (``rules.accounts.site_secret``), so it is the same on every request; no answer
is ever right for it, and no email is sent. Requests and answers are throttled per email
(realm ``client-reset``: 1 s, 2 s ... 15 min after the third, never locked), apart from
the login's throttle, which never blocks this path; token attempts per address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from rules.accounts import throttle
from rules.accounts.client_login import (
    ClientSession,
    SecondFactorChallenge,
    audit_name,
    check_current_password,
    checked_new_password,
    find_client,
    void_tokens,
)
from rules.accounts.passwords import generate_password, hash_password, verify_or_pretend
from rules.accounts.site_secret import site_secret
from rules.accounts.throttle import TooManyAttempts
from rules.audit import Actor, client_address, record
from rules.errors import RuleError, ValidationError, transaction
from rules.mail.outbox import Notice, queue
from rules.mail.templates import get_template
from rules.permissions import require
from store.db import writer
from store.models import Client, Email, PasswordResetToken, SecurityQuestion, utcnow
from store.models.enums import ActorType, ClientStatus, Source
from store.settings import load_settings

__all__ = [
    "ANSWER_MAX",
    "INVITE",
    "INVITE_LIFETIME",
    "RESET",
    "RESET_LIFETIME",
    "RESET_REALM",
    "SENT_MESSAGE",
    "TOKEN_REALM",
    "InvalidToken",
    "ResetStep",
    "WrongAnswer",
    "answer_security_question",
    "decoy_question",
    "redeem_token",
    "request_reset",
    "reset_and_send_password",
    "security_questions",
    "send_portal_invitation",
    "set_security_question",
    "token_purpose",
]

RESET = "reset"
INVITE = "invite"
RESET_LIFETIME = dt.timedelta(hours=2)
INVITE_LIFETIME = dt.timedelta(days=7)
#: Throttle realms (``rules.accounts.throttle``): requests and answers per email typed;
#: token attempts per address.
RESET_REALM = "client-reset"
TOKEN_REALM = "reset-token"
ANSWER_MAX = 255
TOKEN_MAX = 200
SENT_MESSAGE = (
    "If this email belongs to an account, a link to reset its password is on its way. "
    "It is valid for 2 hours."
)
QUESTION_MESSAGE = "Answer your security question to continue."
WRONG_ANSWER = "that answer is not right"
INVALID_TOKEN = "this link is not valid, already used or expired: ask for a new one"
TEMPLATES = {RESET: "Password Reset Validation", INVITE: "Portal Invitation"}


class InvalidToken(RuleError):
    """An unknown, used or expired token (one message for all: ``INVALID_TOKEN``)."""


class WrongAnswer(RuleError):
    """A wrong security answer (or any answer to a decoy question)."""


@dataclass(frozen=True)
class ResetStep:
    """What the Forgot Password screen shows next: ``question`` to ask (then
    ``answer_security_question``), or None when the flow is over for now; ``message``
    says so. The same for an email that is no client's."""

    question: str | None
    message: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _link(token: str) -> str:
    return f"{load_settings().system_url.rstrip('/')}/reset?token={token}"


def _answer_key(answer: str) -> str:
    """How answers compare: trimmed, case-folded, inner spaces made one."""
    return " ".join(answer.casefold().split())


def security_questions() -> list[tuple[int, str]]:
    """The questions a client may pick (id, text), in id order."""
    return [(q.id, q.question) for q in SecurityQuestion.select().order_by(SecurityQuestion.id)]


def decoy_question(email: str) -> str | None:
    """The question shown for an email that is no client's: chosen among the configured
    questions by HMAC-SHA256(site secret, the email's key), so the same email always gets
    the same one. None when no question is configured."""
    questions = [text for _, text in security_questions()]
    if not questions:
        return None
    mac = hmac.new(site_secret(), email.strip().casefold().encode(), hashlib.sha256).digest()
    return questions[int.from_bytes(mac[:8], "big") % len(questions)]


def _question_of(client: Client | None) -> str | None:
    """The client's own question when the client has one and an answer (and may reset);
    None when the reset email goes at once."""
    if client is None or client.status == ClientStatus.CLOSED:
        return None
    if client.security_question_id is None or not client.security_answer_hash:
        return None
    question = SecurityQuestion.get_or_none(SecurityQuestion.id == client.security_question_id)
    return question.question if question else None


def _resettable(client: Client | None) -> bool:
    return client is not None and client.status != ClientStatus.CLOSED


def _throttled(email: str, now: dt.datetime, client: Client | None, address: str) -> None:
    try:
        throttle.before_attempt(RESET_REALM, email, now)
    except TooManyAttempts as exc:
        with writer():
            _audit(client, email, address, "reset_refused", str(exc))
        raise


def _audit(client: Client | None, typed: str, address: str, action: str, detail: str = "") -> None:
    name = client.email if client is not None else audit_name(typed)
    actor = Actor(
        ActorType.CLIENT, name, Source.PORTAL, client.id if client else None, address=address
    )
    record(
        actor,
        "client",
        client.id if client else None,
        action,
        client_id=client.id if client else None,
        new_value=detail,
    )


def _issue(client_id: int, purpose: str, now: dt.datetime) -> str:
    """A new token of ``purpose`` for the client, and its email queued; inside the
    caller's transaction. Returns the token (it exists only in the email after this)."""
    token = secrets.token_urlsafe(32)
    lifetime = RESET_LIFETIME if purpose == RESET else INVITE_LIFETIME
    PasswordResetToken.create(
        client=client_id,
        token_hash=_digest(token),
        purpose=purpose,
        created_at=now,
        expires_at=now + lifetime,
    )
    link = _link(token)
    extras = (
        (("reset_url", link), ("reset_token", token))
        if purpose == RESET
        else (("invite_url", link), ("invite_token", token))
    )
    queue(TEMPLATES[purpose], [Notice(client_id, extras=extras)])
    return token


def request_reset(
    email: str, *, address: str | None = None, now: dt.datetime | None = None
) -> ResetStep:
    """Step 1 of the forgotten-password flow: the client typed ``email``.

    A client with a security question and answer is asked it (``ResetStep.question``);
    any other client is sent the "Password Reset Validation" email at once (link valid
    ``RESET_LIFETIME``). An email that is no client's, or a Closed client's, gets the
    decoy question where one would be asked (``decoy_question``; the email-sent answer
    when no question is configured) and no email. Each request counts against the
    email's throttle; raises ``TooManyAttempts`` while it waits. Audited
    ("reset_requested"), never with a secret.
    """
    now = now or utcnow()
    address = address or client_address()
    typed = email.strip()
    client = find_client(typed)
    _throttled(typed, now, client, address)
    question = _question_of(client) if _resettable(client) else decoy_question(typed)
    with writer():
        throttle.record_failure(RESET_REALM, typed, now)
        if _resettable(client) and question is None:
            assert client is not None
            _issue(client.id, RESET, now)
            _audit(client, typed, address, "reset_requested", "link emailed")
        else:
            detail = "security question asked" if question else "no such account: nothing sent"
            if not _resettable(client):
                detail = "no such account: " + ("decoy question" if question else "nothing sent")
            _audit(
                client if _resettable(client) else None, typed, address, "reset_requested", detail
            )
    if question is not None:
        return ResetStep(question, QUESTION_MESSAGE)
    return ResetStep(None, SENT_MESSAGE)


def answer_security_question(
    email: str, answer: str, *, address: str | None = None, now: dt.datetime | None = None
) -> ResetStep:
    """Step 2, for a client asked a question: the right ``answer`` (trimmed and
    case-folded, like the stored one) sends the "Password Reset Validation" email and
    returns the email-sent step. Raises ``WrongAnswer`` for a wrong answer, any answer
    to a decoy question, and an email with no question; ``TooManyAttempts`` while the
    email's throttle waits (each answer counts). Audited."""
    now = now or utcnow()
    address = address or client_address()
    typed = email.strip()
    client = find_client(typed)
    _throttled(typed, now, client, address)
    stored = client.security_answer_hash if client is not None else ""
    asked = _resettable(client) and _question_of(client) is not None
    key = _answer_key(answer)[:ANSWER_MAX]
    right = verify_or_pretend(stored if asked else None, key) and asked
    with writer():
        throttle.record_failure(RESET_REALM, typed, now)
        if right:
            assert client is not None
            _issue(client.id, RESET, now)
            _audit(client, typed, address, "reset_requested", "answer right: link emailed")
        else:
            _audit(client if asked else None, typed, address, "reset_answer_failed")
    if not right:
        raise WrongAnswer(WRONG_ANSWER)
    return ResetStep(None, SENT_MESSAGE)


def _live_token(token: str, now: dt.datetime) -> PasswordResetToken:
    token = token.strip()
    row = None
    if token and len(token) <= TOKEN_MAX:
        row = PasswordResetToken.get_or_none(PasswordResetToken.token_hash == _digest(token))
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise InvalidToken(INVALID_TOKEN)
    return row


def token_purpose(token: str, *, now: dt.datetime | None = None) -> str:
    """``RESET`` or ``INVITE`` for a live token (the reset page checks the pasted token
    before asking for a password); raises ``InvalidToken`` otherwise. Uses nothing up."""
    return str(_live_token(token, now or utcnow()).purpose)


def redeem_token(
    token: str,
    new_password: str,
    *,
    address: str | None = None,
    source: Source = Source.PORTAL,
    now: dt.datetime | None = None,
) -> ClientSession | SecondFactorChallenge:
    """The reset page (or the invitation's set-password page): set ``new_password`` with
    a live token and log the client in at once.

    The password meets the policy (checked before the token is used, so a refused
    password does not spend it). Then, in one transaction: the token is used (a
    conditional UPDATE: of two concurrent redemptions exactly one wins), every other
    unused token of the client void, the password set (no forced change), the login
    throttles of the email cleared, audited ("reset_completed" / "invitation_accepted"),
    and for a reset "Password Reset Confirmation" queued. Returns a ``ClientSession``,
    or a ``SecondFactorChallenge`` when two-factor is on: a reset never bypasses it.

    Raises ``InvalidToken`` (unknown, used, expired, or the client is Closed),
    ``ValidationError({"password": ...})``, ``TooManyAttempts`` while the address waits
    after wrong tokens.
    """
    now = now or utcnow()
    address = address or client_address()
    throttle.before_attempt(TOKEN_REALM, address, now)
    try:
        row = _live_token(token, now)
        client = Client.get_or_none(Client.id == row.client_id)
        if client is None or client.status == ClientStatus.CLOSED:
            raise InvalidToken(INVALID_TOKEN)
    except InvalidToken:
        with writer():
            throttle.record_failure(TOKEN_REALM, address, now)
            _audit(None, "", address, "reset_token_refused")
        raise
    checked_new_password(client, new_password)
    new_hash = hash_password(new_password)
    with transaction():
        used = (
            PasswordResetToken.update(used_at=now)
            .where(
                (PasswordResetToken.id == row.id)
                & PasswordResetToken.used_at.is_null()
                & (PasswordResetToken.expires_at > now)
            )
            .execute()
        )
        if used != 1:
            raise InvalidToken(INVALID_TOKEN)
        void_tokens(client.id, now)
        Client.update(password_hash=new_hash, password_must_change=False).where(
            Client.id == client.id
        ).execute()
        throttle.record_success(throttle.CLIENT, client.email)
        throttle.record_success(RESET_REALM, client.email)
        throttle.record_success(TOKEN_REALM, address)
        action = "reset_completed" if row.purpose == RESET else "invitation_accepted"
        _audit(client, client.email, address, action)
        if row.purpose == RESET:
            queue("Password Reset Confirmation", [Notice(client.id)])
    from rules.accounts.client_login import login

    # The same door as every login: two-factor asked when on, time and address recorded.
    return login(client.email, new_password, address=address, source=source, now=now)


def _staff_target(client_id: int, actor: Actor) -> Client:
    require(actor, "client.password")
    client = Client.get_or_none(Client.id == client_id)
    if client is None:
        raise RuleError(f"no client {client_id}")
    if client.status == ClientStatus.CLOSED:
        raise RuleError(f"client {client_id} is Closed and cannot log in: reopen it first")
    return client


def _enabled(template_name: str) -> None:
    if get_template(template_name).disabled:
        raise RuleError(f"the email template {template_name!r} is disabled: nothing was changed")


def _last_email(client_id: int, template_name: str) -> int:
    row = (
        Email.select(Email.id)
        .where((Email.client == client_id) & (Email.template == template_name))
        .order_by(Email.id.desc())
        .first()
    )
    return int(row.id) if row else 0


def reset_and_send_password(client_id: int, actor: Actor, *, now: dt.datetime | None = None) -> int:
    """Reset & Send Password (PRODUCT.md §2, staff, from the profile): a new strong
    password (16 characters, about 90 bits), stored hashed and marked to be changed at
    the next login, emailed with "Automated Password Reset" (masked in the email log
    once delivered), unused reset links void, audited ("password_reset", no secret).
    Two-factor stays as it is. Returns the id of the queued email.

    Needs "client.password". Raises ``PermissionDenied``, ``RuleError`` for an unknown or
    Closed client or a disabled template; ``DatabaseBusy`` under another writer's lock.
    """
    now = now or utcnow()
    client = _staff_target(client_id, actor)
    template = "Automated Password Reset"
    _enabled(template)
    password = generate_password()
    new_hash = hash_password(password)
    with transaction():
        Client.update(password_hash=new_hash, password_must_change=True).where(
            Client.id == client.id
        ).execute()
        void_tokens(client.id, now)
        record(
            actor,
            "client",
            client.id,
            "password_reset",
            client_id=client.id,
            new_value="new password emailed",
        )
        queue(template, [Notice(client.id, extras=(("new_password", password),))])
        return _last_email(client.id, template)


def send_portal_invitation(client_id: int, actor: Actor, *, now: dt.datetime | None = None) -> int:
    """Send portal invitation (PRODUCT.md §2, staff): a set-password link for a client
    who has no password yet, by the reset tokens (purpose ``INVITE``), valid
    ``INVITE_LIFETIME``; earlier unused invitations stay valid until used or expired.
    Email "Portal Invitation", masked once delivered. Audited ("invitation_sent").
    Returns the id of the queued email.

    Needs "client.password". Raises ``PermissionDenied``, ``RuleError`` for an unknown or
    Closed client, one who already has a password, or a disabled template.
    """
    now = now or utcnow()
    client = _staff_target(client_id, actor)
    if client.password_hash:
        raise RuleError(
            f"client {client_id} already has a password: use Reset & Send Password instead"
        )
    _enabled(TEMPLATES[INVITE])
    with transaction():
        _issue(client.id, INVITE, now)
        record(actor, "client", client.id, "invitation_sent", client_id=client.id)
        return _last_email(client.id, TEMPLATES[INVITE])


def set_security_question(
    session: ClientSession,
    question_id: int | None,
    answer: str,
    current_password: str,
    *,
    now: dt.datetime | None = None,
) -> None:
    """The client sets (or, with ``question_id`` None, removes) the security question the
    forgotten-password flow asks. The answer is hashed like a password, after trimming
    and case folding (so "London " and "london" match later); 1-255 characters. Needs the
    current password. Audited ("security_question_set"), never the answer.

    Raises ``WrongPassword``, ``LoginRefused``, ``ValidationError`` for an unknown
    question or an empty or too long answer.
    """
    client = check_current_password(session, current_password, now=now)
    if question_id is None:
        with transaction():
            Client.update(security_question=None, security_answer_hash="").where(
                Client.id == client.id
            ).execute()
            record(
                session.actor,
                "client",
                client.id,
                "security_question_set",
                client_id=client.id,
                new_value="removed",
            )
        return
    question = SecurityQuestion.get_or_none(SecurityQuestion.id == question_id)
    if question is None:
        raise ValidationError({"security_question": "choose one of the questions offered"})
    key = _answer_key(answer)
    if not key:
        raise ValidationError({"security_answer": "an answer is required"})
    if len(key) > ANSWER_MAX:
        raise ValidationError({"security_answer": f"at most {ANSWER_MAX} characters"})
    answer_hash = hash_password(key)
    with transaction():
        Client.update(security_question=question.id, security_answer_hash=answer_hash).where(
            Client.id == client.id
        ).execute()
        record(
            session.actor,
            "client",
            client.id,
            "security_question_set",
            client_id=client.id,
            new_value=question.question,
        )
