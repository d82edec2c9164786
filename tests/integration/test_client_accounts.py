"""Client accounts (issue 12, PRODUCT.md §2 and the 2FA line of §1): login, throttling,
Reset & Send Password, the forgotten-password flow, portal invitations and two-factor,
on a real SQLite file and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import mailbox
import re
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from rules.accounts import throttle
from rules.accounts.client_login import (
    LOGIN_FAILED,
    ClientSession,
    LoginFailed,
    LoginRefused,
    SecondFactorChallenge,
    SecondFactorFailed,
    WrongPassword,
    change_password,
    login,
    verify_second_factor,
)
from rules.accounts.passwords import (
    PRODUCTION_PARAMETERS,
    hash_parameters,
    hash_password,
    needs_rehash,
)
from rules.accounts.resets import (
    RESET_LIFETIME,
    SENT_MESSAGE,
    InvalidToken,
    WrongAnswer,
    answer_security_question,
    decoy_question,
    redeem_token,
    request_reset,
    reset_and_send_password,
    send_portal_invitation,
    set_security_question,
    token_purpose,
)
from rules.accounts.site_secret import site_secret
from rules.accounts.throttle import TooManyAttempts
from rules.accounts.totp import accept_totp, backup_codes_left
from rules.accounts.two_factor import (
    begin_two_factor,
    confirm_two_factor,
    disable_two_factor,
)
from rules.audit import SYSTEM_CLI, Actor
from rules.errors import RuleError, ValidationError
from rules.mail.delivery import MaildirTransport, flush
from rules.mail.log import email_message
from rules.mail.templates import MASK
from store.db import database, is_sqlite, sqlite_file
from store.models import (
    AuditLog,
    Client,
    Currency,
    Email,
    PasswordResetToken,
    SecurityQuestion,
    TotpBackupCode,
)
from store.models.enums import ActorType, ClientStatus, Source

PASSWORD = "plum orchard sunrise"
NOW = dt.datetime(2026, 3, 2, 10, 0, 0)
ADDRESS = "198.51.100.7"


def _client(n: int = 1, password: str | None = PASSWORD, **extra: Any) -> Client:
    currency = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    extra.setdefault("password_hash", hash_password(password) if password else "")
    return Client.create(
        first_name=f"Ana{n}",
        last_name="Núñez",
        email=f"ana{n}@example.com",
        currency=currency,
        **extra,
    )


def _session(client: Client, now: dt.datetime = NOW) -> ClientSession:
    result = login(client.email, PASSWORD, address=ADDRESS, now=now)
    assert isinstance(result, ClientSession)
    return result


def _emails(template: str) -> list[Email]:
    return list(Email.select().where(Email.template == template).order_by(Email.id))


def _token_of(email: Email) -> str:
    found = re.search(r"reset\?token=([A-Za-z0-9_-]+)", email.body_text)
    assert found, email.body_text
    assert found.group(1) in email.body_text.replace(found.group(0), "")  # the token alone too
    return found.group(1)


def _audit_actions(client: Client | None = None) -> list[str]:
    query = AuditLog.select().order_by(AuditLog.id)
    if client is not None:
        query = query.where(AuditLog.client == client.id)
    return [row.action for row in query]


def _no_secret_in_audit(*secrets: str) -> None:
    for row in AuditLog.select():
        text = " ".join(str(v) for v in row.__data__.values())
        for secret in secrets:
            assert secret not in text, (row.action, secret)


def _questions() -> list[SecurityQuestion]:
    return [
        SecurityQuestion.create(question=q)
        for q in ("Your first pet's name?", "The city you were born in?", "Your first school?")
    ]


# --------------------------------------------------------------------------- hashing


def test_argon2_production_parameters_are_the_defaults_or_stronger(db: str) -> None:
    defaults = PasswordHasher()
    assert PRODUCTION_PARAMETERS.type.name == "ID"
    assert PRODUCTION_PARAMETERS.time_cost >= defaults.time_cost
    assert PRODUCTION_PARAMETERS.memory_cost >= defaults.memory_cost
    assert PRODUCTION_PARAMETERS.parallelism >= defaults.parallelism
    assert hash_parameters() != PRODUCTION_PARAMETERS  # the test configuration's cheap profile


def test_argon2_legacy_parameter_hash_is_upgraded_on_login(db: str) -> None:
    legacy = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    client = _client(password=None, password_hash=legacy)
    assert needs_rehash(legacy)
    _session(client)
    stored = Client.get_by_id(client.id).password_hash
    assert stored != legacy and not needs_rehash(stored)
    _session(client)  # the new hash still verifies


@pytest.mark.parametrize("stored", ["garbage", "$argon2id$v=19$m=1,t=1,p=1$xx$yy", "$2b$12$abc"])
def test_argon2_malformed_stored_hash_is_a_normal_login_failure(db: str, stored: str) -> None:
    client = _client(password=None, password_hash=stored)
    with pytest.raises(LoginFailed, match=LOGIN_FAILED):
        login(client.email, PASSWORD, address=ADDRESS, now=NOW)
    assert Client.get_by_id(client.id).password_hash == stored


# --------------------------------------------------------------------------- login


def test_login_refusals_closed_unknown_wrong_share_one_message(db: str) -> None:
    closed = _client(1, status=ClientStatus.CLOSED)
    _client(2)
    no_password = _client(3, password=None)
    messages = set()
    for email, password in (
        (closed.email, PASSWORD),  # the right password of a Closed client
        ("ana2@example.com", "wrong password here"),
        ("nobody@example.com", PASSWORD),
        (no_password.email, PASSWORD),
    ):
        with pytest.raises(LoginFailed) as refused:
            login(email, password, address=ADDRESS, now=NOW)
        messages.add(str(refused.value))
    assert messages == {LOGIN_FAILED}
    assert Client.get_by_id(closed.id).last_login_at is None
    assert _audit_actions().count("login_failed") == 4
    _no_secret_in_audit(PASSWORD, "wrong password here")


def test_login_records_time_and_ssh_address(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client()
    monkeypatch.setenv("SSH_CONNECTION", "203.0.113.9 52114 192.0.2.1 22")
    session = login("  ANA1@Example.COM ", PASSWORD, now=NOW)
    assert isinstance(session, ClientSession) and session.address == "203.0.113.9"
    row = Client.get_by_id(client.id)
    assert (row.last_login_at, row.last_login_ip) == (NOW, "203.0.113.9")
    monkeypatch.delenv("SSH_CONNECTION")
    login(client.email, PASSWORD, now=NOW + dt.timedelta(minutes=1))
    assert Client.get_by_id(client.id).last_login_ip == "local"
    last = AuditLog.select().order_by(AuditLog.id.desc()).get()
    assert (last.action, last.address, last.actor_type) == ("login", "local", "client")


def test_login_throttle_grows_never_locks_and_never_blocks_the_reset(db: str) -> None:
    client = _client()
    now = NOW
    waits = []
    for _ in range(7):
        try:
            login(client.email, "not the password", address=ADDRESS, now=now)
        except LoginRefused as exc:
            waits.append(exc.retry_after)
            now += dt.timedelta(seconds=exc.retry_after)
            with pytest.raises(LoginFailed):
                login(client.email, "not the password", address=ADDRESS, now=now)
        except LoginFailed:
            waits.append(0)
    assert waits == [0, 0, 0, 1, 2, 4, 8]  # growing, from the third failure on
    with pytest.raises(LoginRefused):  # even the right password waits its turn
        login(client.email, PASSWORD, address=ADDRESS, now=now)
    # While the login waits, the forgotten-password flow goes on, and its link logs in.
    step = request_reset(client.email, address=ADDRESS, now=now)
    assert step.question is None
    token = _token_of(_emails("Password Reset Validation")[-1])
    session = redeem_token(token, "a brand new passphrase", address=ADDRESS, now=now)
    assert isinstance(session, ClientSession)
    # ... and the right password, after the wait, always gets in again.
    later = now + throttle.MAX_DELAY
    assert isinstance(login(client.email, "a brand new passphrase", now=later), ClientSession)


# --------------------------------------------------------------------------- staff reset


def test_staff_reset_emails_a_password_that_must_be_changed(db: str) -> None:
    client = _client()
    staff = Actor(ActorType.STAFF, "billie", Source.TUI, 1, "billing")
    email_id = reset_and_send_password(client.id, staff, now=NOW)
    email = Email.get_by_id(email_id)
    assert email.template == "Automated Password Reset" and email.to == client.email
    new_password = re.search(r"Password: (\S+)", email.body_text).group(1)  # type: ignore[union-attr]
    assert len(new_password) >= 16
    assert new_password not in email_message(email_id).body_text  # never shown in the log
    assert MASK in email_message(email_id).body_text
    with pytest.raises(LoginFailed):
        login(client.email, PASSWORD, address=ADDRESS, now=NOW)
    session = login(client.email, new_password, address=ADDRESS, now=NOW)
    assert isinstance(session, ClientSession) and session.must_change_password
    with pytest.raises(ValidationError, match="not the one we sent"):
        change_password(session, new_password, now=NOW)
    with pytest.raises(ValidationError, match="password"):
        change_password(session, "password1", now=NOW)
    changed = change_password(session, "a fresh passphrase of mine", now=NOW)
    assert not changed.must_change_password
    with pytest.raises(WrongPassword):
        change_password(changed, "yet another passphrase")  # no longer forced: needs current
    again = login(client.email, "a fresh passphrase of mine", address=ADDRESS, now=NOW)
    assert isinstance(again, ClientSession) and not again.must_change_password
    assert "password_reset" in _audit_actions(client)
    _no_secret_in_audit(new_password, "a fresh passphrase of mine")
    support = Actor(ActorType.STAFF, "sam", Source.TUI, 2, "support")
    with pytest.raises(RuleError, match="may not"):
        reset_and_send_password(client.id, support)


def _delivered_secrets(first: int, box: Path, *, checkpoint: bool = True) -> list[bytes]:
    """Reset the passwords of three new clients and request a reset link for one; with
    ``checkpoint``, let the clear bodies reach the file (as SQLite's automatic checkpoint
    would; else they are only in the write-ahead log); deliver them to ``box``; return the
    passwords and the token, as the client received them."""
    clients = [_client(n) for n in range(first, first + 3)]
    for client in clients:
        reset_and_send_password(client.id, SYSTEM_CLI)
    request_reset(clients[0].email, address=ADDRESS)
    if checkpoint:
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    before = {m["Message-ID"] for m in mailbox.Maildir(str(box), create=True)}
    assert flush(MaildirTransport(box)).sent == 4
    secrets = []
    for message in mailbox.Maildir(str(box), create=False):
        if message["Message-ID"] in before:
            continue
        body = message.get_payload(decode=True).decode()
        found = re.search(r"Password: (\S+)", body) or re.search(r"\n  ([A-Za-z0-9_-]{43})\n", body)
        assert found, body
        secrets.append(found.group(1).encode())
    assert len(secrets) == 4
    database.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")  # the log is left as it is
    return secrets


def _file_bytes() -> bytes:
    file = Path(sqlite_file() or "")
    wal = Path(f"{file}-wal")
    return file.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_reset_password_is_nowhere_in_the_sqlite_file_once_delivered(
    db: str, tmp_path: Path, reopen: Callable[[str], str]
) -> None:
    if not is_sqlite():
        pytest.skip("SQLite's file only (PostgreSQL has no secure_delete)")
    box = tmp_path / "Maildir"
    # Control: with secure_delete off (the default of most SQLite builds), the masked
    # bodies' clear text stays in the file's free space, and this search finds it.
    database.execute_sql("PRAGMA secure_delete = 0")
    leaked = _delivered_secrets(1, box)
    assert any(secret in _file_bytes() for secret in leaked)
    reopen(db)  # GoBiller's own connection
    assert database.execute_sql("PRAGMA secure_delete").fetchone() == (1,)
    secrets = _delivered_secrets(10, box) + _delivered_secrets(20, box, checkpoint=False)
    stored = _file_bytes()
    for secret in secrets:
        assert secret not in stored
    seen: list[Any] = []
    other = threading.Thread(  # every connection, not only the first
        target=lambda: (
            seen.append(database.execute_sql("PRAGMA secure_delete").fetchone()),
            database.close(),
        )
    )
    other.start()
    other.join()
    assert seen == [(1,)]


# --------------------------------------------------------------------------- forgotten password


def test_forgotten_password_without_question_emails_a_link_that_logs_in(db: str) -> None:
    client = _client()
    step = request_reset(client.email, address=ADDRESS, now=NOW)
    assert (step.question, step.message) == (None, SENT_MESSAGE)
    request_reset(client.email, address=ADDRESS, now=NOW)  # asked twice: two links
    first, second = _emails("Password Reset Validation")
    assert "https://billing.example.com/reset?token=" in first.body_text
    token, other = _token_of(first), _token_of(second)
    stored = [t.token_hash for t in PasswordResetToken.select()]
    assert token not in "".join(stored) and len(stored) == 2 and all(len(h) == 64 for h in stored)
    assert token_purpose(token, now=NOW) == "reset"
    with pytest.raises(ValidationError):
        redeem_token(token, "short", address=ADDRESS, now=NOW)  # refused: the token stays usable
    session = redeem_token(token, "my new passphrase", address=ADDRESS, now=NOW)
    assert isinstance(session, ClientSession) and not session.must_change_password
    assert Client.get_by_id(client.id).last_login_at == NOW  # logged in at once
    for used in (token, other):  # single use, and the other link is void
        with pytest.raises(InvalidToken):
            redeem_token(used, "another passphrase", address=ADDRESS, now=NOW)
    assert len(_emails("Password Reset Confirmation")) == 1
    assert {"reset_requested", "reset_completed", "login"} <= set(_audit_actions(client))
    _no_secret_in_audit(token, other, "my new passphrase")


def test_reset_token_expires_after_2_hours(db: str) -> None:
    client = _client()
    request_reset(client.email, address=ADDRESS, now=NOW)
    token = _token_of(_emails("Password Reset Validation")[0])
    limit = NOW + RESET_LIFETIME
    assert token_purpose(token, now=limit - dt.timedelta(seconds=1)) == "reset"
    with pytest.raises(InvalidToken):
        redeem_token(
            token, "my new passphrase", address=ADDRESS, now=limit + dt.timedelta(seconds=1)
        )
    assert Client.get_by_id(client.id).password_hash != ""
    assert login(client.email, PASSWORD, address=ADDRESS, now=NOW)  # unchanged


def test_reset_token_race_exactly_one_redemption_wins(db: str) -> None:
    client = _client()
    request_reset(client.email, address=ADDRESS, now=NOW)
    token = _token_of(_emails("Password Reset Validation")[0])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def redeem(password: str) -> None:
        try:
            barrier.wait()
            redeem_token(token, password, address=ADDRESS, now=NOW)
            outcomes.append("won:" + password)
        except InvalidToken:
            outcomes.append("refused")
        finally:
            database.close()

    threads = [
        threading.Thread(target=redeem, args=(p,))
        for p in ("first passphrase", "second passphrase")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.split(":")[0] for o in outcomes) == ["refused", "won"], outcomes
    winner = next(o for o in outcomes if o.startswith("won")).split(":")[1]
    assert isinstance(login(client.email, winner, address=ADDRESS, now=NOW), ClientSession)
    assert _audit_actions(client).count("reset_completed") == 1


def test_security_question_answer_is_trimmed_and_case_folded(db: str) -> None:
    questions = _questions()
    client = _client()
    session = _session(client)
    set_security_question(session, questions[1].id, "  São Paulo ", PASSWORD, now=NOW)
    assert "Paulo" not in Client.get_by_id(client.id).security_answer_hash
    step = request_reset(client.email, address=ADDRESS, now=NOW)
    assert step.question == questions[1].question
    assert _emails("Password Reset Validation") == []  # not before the answer
    with pytest.raises(WrongAnswer):
        answer_security_question(client.email, "Rio", address=ADDRESS, now=NOW)
    assert _emails("Password Reset Validation") == []
    done = answer_security_question(client.email, "SÃO PAULO", address=ADDRESS, now=NOW)
    assert done.message == SENT_MESSAGE
    assert len(_emails("Password Reset Validation")) == 1
    _no_secret_in_audit("Paulo", "PAULO", "Rio")


def test_unknown_email_gets_the_same_answers_a_decoy_question_and_no_email(db: str) -> None:
    questions = _questions()
    known = _client()
    session = _session(known)
    set_security_question(session, questions[0].id, "Rex", PASSWORD, now=NOW)
    hours = iter(range(1, 100))

    def later() -> dt.datetime:  # apart enough for the reset throttle never to wait
        return NOW + dt.timedelta(hours=next(hours))

    for email in ("stranger@example.org", "Stranger@Example.org"):
        step = request_reset(email, address=ADDRESS, now=later())
        assert step.question == decoy_question("stranger@example.org")
        assert step.question in {q.question for q in questions}
        with pytest.raises(WrongAnswer) as wrong:
            answer_security_question(email, "Rex", address=ADDRESS, now=later())
    with pytest.raises(WrongAnswer) as known_wrong:
        answer_security_question(known.email, "Fido", address=ADDRESS, now=later())
    assert str(wrong.value) == str(known_wrong.value)
    known_step = request_reset(known.email, address=ADDRESS, now=later())
    assert type(known_step) is type(step) and known_step.message == step.message
    picked = {decoy_question(f"user{n}@example.net") for n in range(60)}
    assert len(picked) == 3  # spread over the questions, by the site's secret
    assert Email.select().count() == 0 and PasswordResetToken.select().count() == 0
    # A Closed client is treated as no client: a decoy where a question is asked, no email.
    closed = _client(2, status=ClientStatus.CLOSED)
    assert request_reset(closed.email, address=ADDRESS, now=NOW).question == decoy_question(
        closed.email
    )
    assert Email.select().count() == 0


def test_unknown_email_without_questions_gets_the_sent_message_and_no_email(db: str) -> None:
    _client()
    known = request_reset("ana1@example.com", address=ADDRESS, now=NOW)
    unknown = request_reset("nobody@example.com", address=ADDRESS, now=NOW)
    assert known == unknown
    assert [e.to for e in Email.select()] == ["ana1@example.com"]


def _median_seconds(emails: list[str], call: Callable[[str], object]) -> float:
    times = []
    for email in emails:
        started = time.perf_counter()
        try:
            call(email)
        except WrongAnswer:
            pass
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _same_timing(known: list[str], call: Callable[[str], object]) -> None:
    strangers = [f"stranger{n}@example.org" for n in range(len(known))]
    _median_seconds(known[:3] + strangers[:3], call)  # warm up
    known_time = _median_seconds(known[3:], call)
    unknown_time = _median_seconds(strangers[3:], call)
    assert abs(known_time - unknown_time) < 0.010, (known_time, unknown_time)


def test_unknown_email_timing_matches_a_known_one(db: str) -> None:
    """Median times of known and unknown emails within 10 ms, at each step."""
    site_secret()
    without_question = [_client(n).email for n in range(1, 32)]
    _same_timing(without_question, lambda e: request_reset(e, address=ADDRESS, now=NOW))
    assert len(_emails("Password Reset Validation")) == 31
    questions = _questions()
    known = [_client(n) for n in range(100, 132)]
    Client.update(
        security_question=questions[0].id, security_answer_hash=hash_password("rex")
    ).where(Client.id.in_([c.id for c in known])).execute()
    emails = [c.email for c in known]
    later = NOW + dt.timedelta(hours=1)
    _same_timing(emails, lambda e: request_reset(e, address=ADDRESS, now=later))
    later += dt.timedelta(hours=1)
    _same_timing(emails, lambda e: answer_security_question(e, "wrong", address=ADDRESS, now=later))


def test_reset_requests_are_throttled_per_email_without_locking(db: str) -> None:
    client = _client()
    now = NOW
    for _ in range(3):
        request_reset(client.email, address=ADDRESS, now=now)
    with pytest.raises(TooManyAttempts) as waiting:
        request_reset(client.email, address=ADDRESS, now=now)
    with pytest.raises(TooManyAttempts) as stranger_waiting:
        for _ in range(4):
            request_reset("nobody@example.com", address=ADDRESS, now=now)
    assert waiting.value.retry_after == stranger_waiting.value.retry_after == 1
    request_reset(client.email, address=ADDRESS, now=now + dt.timedelta(seconds=1))
    assert len(_emails("Password Reset Validation")) == 4
    assert isinstance(login(client.email, PASSWORD, address=ADDRESS, now=now), ClientSession)


# --------------------------------------------------------------------------- invitation


def test_portal_invitation_sets_a_first_password_within_7_days(db: str) -> None:
    client = _client(password=None)
    email_id = send_portal_invitation(client.id, SYSTEM_CLI, now=NOW)
    email = Email.get_by_id(email_id)
    assert email.template == "Portal Invitation" and email.to == client.email
    token = _token_of(email)
    assert token not in email_message(email_id).body_text
    assert token_purpose(token, now=NOW + dt.timedelta(days=6)) == "invite"
    with pytest.raises(InvalidToken):
        token_purpose(token, now=NOW + dt.timedelta(days=7, seconds=1))
    session = redeem_token(token, "my first passphrase", address=ADDRESS, now=NOW)
    assert isinstance(session, ClientSession)
    assert _emails("Password Reset Confirmation") == []
    with pytest.raises(RuleError, match="already has a password"):
        send_portal_invitation(client.id, SYSTEM_CLI, now=NOW)
    closed = _client(2, password=None, status=ClientStatus.CLOSED)
    with pytest.raises(RuleError, match="Closed"):
        send_portal_invitation(closed.id, SYSTEM_CLI, now=NOW)


# --------------------------------------------------------------------------- two-factor


def _enrol(client: Client, now: dt.datetime = NOW) -> tuple[str, list[str]]:
    session = _session(client, now)
    enrolment = begin_two_factor(session)
    assert enrolment.uri.startswith("otpauth://totp/") and enrolment.secret in enrolment.uri
    assert enrolment.qr_text.count("\n") > 10 and "█" in enrolment.qr_text
    assert max(len(line) for line in enrolment.qr_text.splitlines()) <= 60
    code = pyotp.TOTP(enrolment.secret).at(now)
    with pytest.raises(WrongPassword):
        confirm_two_factor(session, enrolment.secret, code, "not my password", now=now)
    codes = confirm_two_factor(session, enrolment.secret, code, PASSWORD, now=now)
    assert len(codes) == 10 == len(set(codes))
    return enrolment.secret, codes


def test_totp_accepts_one_step_either_side_each_step_once(db: str) -> None:
    client = _client()
    secret, _ = _enrol(client, NOW - dt.timedelta(minutes=10))
    totp = pyotp.TOTP(secret)
    for offset, accepted in ((-60, False), (60, False), (-30, True), (0, True), (30, True)):
        challenge = login(client.email, PASSWORD, address=ADDRESS, now=NOW)
        assert isinstance(challenge, SecondFactorChallenge)
        code = totp.at(NOW + dt.timedelta(seconds=offset))
        if accepted:
            assert isinstance(verify_second_factor(challenge, code, now=NOW), ClientSession)
        else:
            with pytest.raises(SecondFactorFailed):
                verify_second_factor(challenge, code, now=NOW)
    challenge = login(client.email, PASSWORD, address=ADDRESS, now=NOW)
    assert isinstance(challenge, SecondFactorChallenge)
    with pytest.raises(SecondFactorFailed):  # every step of the window is used now
        verify_second_factor(challenge, totp.at(NOW), now=NOW)
    assert "login_2fa_failed" in _audit_actions(client)


def test_totp_two_logins_racing_one_code_one_wins(db: str) -> None:
    client = _client()
    secret, _ = _enrol(client, NOW - dt.timedelta(minutes=10))
    code = pyotp.TOTP(secret).at(NOW)
    barrier = threading.Barrier(2)
    won: list[bool] = []

    def race() -> None:
        try:
            barrier.wait()
            won.append(accept_totp(client.id, secret, code, NOW))
        finally:
            database.close()

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False, True]


def test_totp_backup_codes_are_single_use(db: str) -> None:
    client = _client()
    _, codes = _enrol(client)
    assert backup_codes_left(client.id) == 10
    assert all(c not in h.code_hash for c in codes for h in TotpBackupCode.select())
    challenge = login(client.email, PASSWORD, address=ADDRESS, now=NOW)
    assert isinstance(challenge, SecondFactorChallenge)
    session = verify_second_factor(challenge, codes[3].upper().replace("-", " "), now=NOW)
    assert isinstance(session, ClientSession)
    challenge = login(client.email, PASSWORD, address=ADDRESS, now=NOW)
    assert isinstance(challenge, SecondFactorChallenge)
    with pytest.raises(SecondFactorFailed):
        verify_second_factor(challenge, codes[3], now=NOW)
    assert backup_codes_left(client.id) == 9


def test_totp_wrong_codes_void_the_challenge(db: str) -> None:
    client = _client()
    _enrol(client, NOW - dt.timedelta(minutes=10))
    challenge = login(client.email, PASSWORD, address=ADDRESS, now=NOW)
    assert isinstance(challenge, SecondFactorChallenge)
    for attempt in range(3):
        with pytest.raises(SecondFactorFailed) as failed:
            verify_second_factor(challenge, "000000", now=NOW)
        assert failed.value.restart == (attempt == 2)
    assert Client.get_by_id(client.id).last_login_at == NOW - dt.timedelta(minutes=10)


def test_totp_kept_across_resets(db: str) -> None:
    client = _client()
    secret, _ = _enrol(client, NOW - dt.timedelta(minutes=10))
    request_reset(client.email, address=ADDRESS, now=NOW)
    token = _token_of(_emails("Password Reset Validation")[0])
    result = redeem_token(token, "my new passphrase", address=ADDRESS, now=NOW)
    assert isinstance(result, SecondFactorChallenge)  # still asks for the code
    assert Client.get_by_id(client.id).totp_secret == secret
    with pytest.raises(SecondFactorFailed):
        verify_second_factor(
            result, "123456" if pyotp.TOTP(secret).at(NOW) != "123456" else "654321", now=NOW
        )
    reset_and_send_password(client.id, SYSTEM_CLI, now=NOW)  # staff reset keeps it too
    assert Client.get_by_id(client.id).totp_secret == secret
    assert backup_codes_left(client.id) == 10


def test_totp_staff_untick_with_reason_emails_and_audits(db: str) -> None:
    client = _client()
    _enrol(client)
    support = Actor(ActorType.STAFF, "sam", Source.TUI, 2, "support")
    with pytest.raises(RuleError, match="may not"):
        disable_two_factor(client.id, "lost device", support)
    with pytest.raises(RuleError, match="reason"):
        disable_two_factor(client.id, "   ", SYSTEM_CLI)
    disable_two_factor(client.id, "lost device, identity checked by phone", SYSTEM_CLI)
    row = Client.get_by_id(client.id)
    assert (row.totp_secret, backup_codes_left(client.id)) == ("", 0)
    assert TotpBackupCode.select().count() == 0
    [email] = _emails("Two-Factor Disabled")
    assert "lost device, identity checked by phone" in email.body_text
    audit = AuditLog.get(AuditLog.action == "2fa_disabled")
    assert audit.new_value == "lost device, identity checked by phone"
    with pytest.raises(RuleError, match="not on"):
        disable_two_factor(client.id, "again", SYSTEM_CLI)
    assert isinstance(login(client.email, PASSWORD, address=ADDRESS, now=NOW), ClientSession)


# --------------------------------------------------------------------------- site secret, CLI


def test_site_secret_is_made_once_and_never_exported(db: str, tmp_path: Path) -> None:
    from rules.interchange.export import export_to

    secret = site_secret()
    assert len(secret) == 32 and site_secret() == secret
    _client()
    export_to(tmp_path / "doc.json")
    text = (tmp_path / "doc.json").read_text()
    assert secret.hex() not in text and "site_secret" not in text


def test_client_commands_speak_json_and_refuse_in_one_line(db: str) -> None:
    from tui.cli import main

    client = _client()
    fresh = _client(2, password=None)
    runner = CliRunner()

    def gobiller(*args: str) -> tuple[int, Any]:
        result = runner.invoke(main, ["--database", db, *args, "--json"])
        assert "Traceback" not in result.output
        return result.exit_code, json.loads(result.output)

    code, out = gobiller("client", "reset-password", str(client.id))
    assert code == 0 and out["to"] == client.email and out["must_change_password"]
    code, out = gobiller("client", "invite", str(fresh.id))
    assert code == 0 and out["valid_days"] == 7
    code, out = gobiller("client", "invite", str(client.id))
    assert code == 1 and "already has a password" in out["error"]
    code, out = gobiller("client", "disable-2fa", str(client.id), "--reason", "lost phone")
    assert code == 1 and "not on" in out["error"]
    code, out = gobiller("client", "reset-password", "999999")
    assert code == 1 and out == {"error": "no client 999999"}
    result = runner.invoke(main, ["--database", db, "client", "disable-2fa", "1"])
    assert result.exit_code == 64 and "--reason" in result.output
