"""The client portal (``gobiller portal``, issue 12) driven as a client drives it: keys
through Pilot at 80×24 (the minimum terminal), often in one burst as a password manager
types them, on a real database; reset links caught by a real SMTP server; and one run
of the real command in a pseudo-terminal."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pyotp
from textual import events
from textual.app import App
from textual.keys import _character_to_key
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from rules.accounts import throttle
from rules.accounts.client_login import LOGIN_FAILED, ClientSession
from rules.accounts.passwords import hash_password
from rules.accounts.resets import (
    decoy_question,
    reset_and_send_password,
    send_portal_invitation,
)
from rules.accounts.totp import backup_codes_left
from rules.accounts.two_factor import begin_two_factor, confirm_two_factor
from rules.audit import SYSTEM_CLI
from rules.mail.delivery import flush, make_transport
from store.models import (
    AuditLog,
    Client,
    Currency,
    Email,
    Invoice,
    SecurityQuestion,
    Transaction,
    utcnow,
)
from store.models.enums import ClientStatus
from store.settings import load_settings
from tests.conftest import SmtpRecorder
from tests.tui.test_staff_app import settle
from tui.portal.app import PortalApp
from tui.portal.home import (
    BackupCodesScreen,
    EnrolScreen,
    HomeScreen,
    QuestionScreen,
    TwoFactorOnScreen,
)
from tui.portal.login import ForcedChangeScreen, LoginScreen, SecondFactorScreen
from tui.portal.reset import (
    ForgotScreen,
    NewPasswordScreen,
    SecurityAnswerScreen,
    TokenScreen,
)

SIZE = (80, 24)
PASSWORD = "plum orchard sunrise"
NEW_PASSWORD = "lantern meadow quietly"
ROOT = Path(__file__).resolve().parents[2]


def _client(n: int = 1, password: str | None = PASSWORD, **extra: Any) -> Client:
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True, "prefix": "$"})[0]
    return Client.create(
        first_name=f"Ana{n}",
        last_name="Núñez",
        company="[bold]Acme",
        email=f"ana{n}@example.com",
        currency=usd,
        password_hash=hash_password(password) if password else "",
        **extra,
    )


def _questions() -> list[SecurityQuestion]:
    return [
        SecurityQuestion.create(question=q)
        for q in ("Your first pet's name?", "The city you were born in?", "Your first school?")
    ]


#: Keys sent by name, and the character each carries.
NAMED_KEYS = {
    "tab": "\t",
    "enter": "\r",
    "escape": "\x1b",
    "shift+tab": None,
    "f2": None,
    "f3": None,
}


def _keys(*parts: str) -> list[tuple[str, str | None]]:
    """(key, character) pairs: a part that names a key ("tab", "enter", "f2") as is, any
    other part typed character by character."""
    keys: list[tuple[str, str | None]] = []
    for part in parts:
        if part in NAMED_KEYS:
            keys.append((part, NAMED_KEYS[part]))
        else:
            keys.extend((ch if ch.isalnum() else _character_to_key(ch), ch) for ch in part)
    return keys


async def burst(pilot: Pilot[None], *parts: str) -> None:
    """Send every key at once, as a fast typist or a password manager does: all are in
    the app's queue before the first is handled (``Pilot.press`` waits after each)."""
    app = pilot.app
    driver = app._driver
    assert driver is not None
    for key, char in _keys(*parts):
        event = events.Key(key, char)
        event.set_sender(app)
        driver.send_message(event)
    await settle(pilot)
    await settle(pilot)


def text_of(app: App[None], selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def message(app: App[None]) -> str:
    return text_of(app, "#form-message")


def value(app: App[None], name: str) -> str:
    return app.screen.query_one(f"#f-{name}", Input).value


def fits(app: App[None]) -> None:
    """Every field and the message line are on the 80×24 screen, not cut off."""
    width, height = SIZE
    for widget in app.screen.query("Input, Select, #form-message"):
        region = widget.region
        assert region.width > 0 and region.height > 0, widget
        assert region.right <= width and region.bottom <= height - 1, (widget, region)


async def log_in(pilot: Pilot[None], email: str, password: str = PASSWORD) -> None:
    await burst(pilot, email, "tab", password, "enter")


# --------------------------------------------------------------------------- login


async def test_portal_login_burst_lands_in_each_field_and_opens_home(db: str) -> None:
    client = _client()
    invoice = Invoice.create(
        client=client,
        number="INV-7",
        date=dt.date(2026, 1, 1),
        due_date=dt.date(2026, 1, 15),
        payment_method="banktransfer",
        subtotal=12345,
        total=12345,
    )
    Transaction.create(client=client, invoice=invoice, gateway="banktransfer", amount_in=2345)
    Invoice.create(  # paid: not listed
        client=client,
        number="INV-8",
        date=dt.date(2026, 1, 2),
        due_date=dt.date(2026, 1, 16),
        payment_method="banktransfer",
        status="Paid",
        total=500,
    )
    app = PortalApp()
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, LoginScreen)
        assert app.focused is app.screen.query_one("#f-email", Input)  # focused at mount
        fits(app)
        # Enter between the fields, in one burst: the password must not land in Email.
        await burst(pilot, client.email, "enter", "not it at all", "enter")
        assert (value(app, "email"), value(app, "password")) == (client.email, "not it at all")
        assert message(app) == LOGIN_FAILED.capitalize()
        await burst(pilot, "shift+tab")  # back to Email: retype both with Tab between
        app.screen.query_one("#f-email", Input).value = ""
        app.screen.query_one("#f-password", Input).value = ""
        await log_in(pilot, client.email)
        assert isinstance(app.screen, HomeScreen)
        profile = text_of(app, "#profile")
        assert "Ana1 Núñez ([bold]Acme)" in profile and client.email in profile
        assert "Status: Active" in profile and "two-factor off" in profile
        assert text_of(app, "#unpaid-title") == "Unpaid invoices: 1, balance due $100.00"
        table = app.screen.query_one("#invoices", DataTable)
        assert table.row_count == 1
        assert [str(c) for c in table.get_row_at(0)] == [
            "INV-7",
            "2026-01-01",
            "2026-01-15",
            "$123.45",
            "$100.00",
        ]
        await pilot.press("l")  # Log out
        await settle(pilot)
        assert isinstance(app.screen, LoginScreen) and app.session is None
        assert value(app, "password") == ""  # a new, empty login form
    assert Client.get_by_id(client.id).last_login_at is not None


async def test_portal_closed_client_gets_the_wrong_password_message(db: str) -> None:
    closed = _client(2, status=ClientStatus.CLOSED)
    app = PortalApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, closed.email)  # the right password
        assert isinstance(app.screen, LoginScreen)
        closed_says = message(app)
        app.screen.query_one("#f-email", Input).value = ""
        app.screen.query_one("#f-password", Input).value = ""
        app.set_focus(app.screen.query_one("#f-email", Input))
        await log_in(pilot, "nobody@example.com")
        assert closed_says == message(app) == LOGIN_FAILED.capitalize()


async def test_portal_throttle_says_how_long_and_keeps_the_form(db: str) -> None:
    client = _client()
    for k in range(6, 0, -1):  # six failures, the last one just now: it waits 8 s
        throttle.record_failure(throttle.CLIENT, client.email, utcnow() - dt.timedelta(hours=k))
    throttle.record_failure(throttle.CLIENT, client.email)
    app = PortalApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, client.email)  # the right password, too soon
        said = message(app)
        assert re.fullmatch(r"Too many attempts, try again in \d+ s", said), said
        assert 1 <= int(said.split()[-2]) <= 16
        assert (value(app, "email"), value(app, "password")) == (client.email, PASSWORD)
        assert isinstance(app.screen, LoginScreen) and app.session is None
        fits(app)
    assert AuditLog.get(AuditLog.action == "login_refused").client_id == client.id


async def test_portal_login_with_totp_code_from_pyotp(db: str) -> None:
    client = _client()
    session = ClientSession(client.id, client.email, "local")
    enrolment = begin_two_factor(session)
    earlier = utcnow() - dt.timedelta(seconds=90)  # that step is used up by the enrolment
    backup = confirm_two_factor(
        session,
        enrolment.secret,
        pyotp.TOTP(enrolment.secret).at(earlier),
        PASSWORD,
        now=earlier,
    )
    app = PortalApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, client.email)
        assert isinstance(app.screen, SecondFactorScreen) and app.session is None
        assert app.focused is app.screen.query_one("#f-code", Input)
        fits(app)
        await burst(pilot, "000000", "enter")
        assert message(app) == "Invalid code" and value(app, "code") == ""
        await burst(pilot, pyotp.TOTP(enrolment.secret).now(), "enter")
        assert isinstance(app.screen, HomeScreen)
        assert "two-factor on (10 backup codes left)" in text_of(app, "#profile")
        await pilot.press("l")
        await settle(pilot)
        await log_in(pilot, client.email)  # again, with a backup code this time
        await burst(pilot, backup[0].upper(), "enter")
        assert isinstance(app.screen, HomeScreen)
        assert "(9 backup codes left)" in text_of(app, "#profile")
    assert backup_codes_left(client.id) == 9


async def test_portal_forced_change_after_staff_reset(db: str) -> None:
    client = _client()
    email = Email.get_by_id(reset_and_send_password(client.id, SYSTEM_CLI))
    sent = re.search(r"Password: (\S+)", email.body_text)
    assert sent is not None
    app = PortalApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, client.email, sent.group(1))
        assert isinstance(app.screen, ForcedChangeScreen)
        assert app.focused is app.screen.query_one("#f-new_password", Input)
        fits(app)
        await burst(pilot, NEW_PASSWORD, "tab", NEW_PASSWORD + "x", "enter")
        assert message(app) == "The two new passwords are not the same"
        assert value(app, "new_password") == NEW_PASSWORD  # kept
        app.screen.query_one("#f-repeat", Input).value = sent.group(1)
        app.screen.query_one("#f-new_password", Input).value = sent.group(1)
        await burst(pilot, "enter")
        assert message(app) == "Password: choose a new password, not the one we sent you"
        app.screen.query_one("#f-new_password", Input).value = ""
        app.screen.query_one("#f-repeat", Input).value = ""
        app.set_focus(app.screen.query_one("#f-new_password", Input))
        await burst(pilot, NEW_PASSWORD, "tab", NEW_PASSWORD, "enter")
        assert isinstance(app.screen, HomeScreen)
        assert app.session is not None and not app.session.must_change_password
    assert not Client.get_by_id(client.id).password_must_change


# --------------------------------------------------------------------------- resets


def _smtp_flush(smtp: Any) -> Any:
    config = smtp[1]
    return lambda: flush(make_transport(config, Path("/nonexistent"), load_settings()))


def _delivered_token(recorder: SmtpRecorder) -> str:
    for message_ in reversed(recorder.parsed()):
        body = message_.get_body(("plain",))
        assert body is not None
        found = re.search(r"reset\?token=([A-Za-z0-9_-]+)", body.get_content())
        if found:
            return found.group(1)
    raise AssertionError("no reset link was delivered")


async def _until(pilot: Pilot[None], check: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def test_portal_forgotten_password_with_question_and_emailed_token(
    db: str, smtp_server: tuple[SmtpRecorder, Any]
) -> None:
    questions = _questions()
    client = _client()
    client.security_question = questions[1].id
    client.security_answer_hash = hash_password("london")
    client.save()
    app = PortalApp(flush=_smtp_flush(smtp_server))
    async with app.run_test(size=SIZE) as pilot:
        await burst(pilot, client.email)
        await burst(pilot, "f2")  # Forgot password, the email carried over
        assert isinstance(app.screen, ForgotScreen) and value(app, "email") == client.email
        fits(app)
        await burst(pilot, "enter")
        assert isinstance(app.screen, SecurityAnswerScreen)
        assert "The city you were born in?" in str(app.screen.query_one(".intro").render())
        fits(app)
        await burst(pilot, "Paris", "enter")
        assert message(app) == "That answer is not right" and value(app, "answer") == "Paris"
        app.screen.query_one("#f-answer", Input).value = ""
        await burst(pilot, "  London ", "enter")  # trimmed and case-folded
        assert isinstance(app.screen, TokenScreen)
        assert "Check your email" in str(app.screen.query_one(".intro").render())
        await _until(pilot, lambda: smtp_server[0].messages)  # delivered by the portal
        token = _delivered_token(smtp_server[0])
        link = f"https://billing.example.com/reset?token={token}"
        await burst(pilot, link, "enter")  # the whole link pasted
        assert isinstance(app.screen, NewPasswordScreen)
        fits(app)
        await burst(pilot, "short", "tab", "short", "enter")
        assert message(app).startswith("Password: ")
        app.screen.query_one("#f-new_password", Input).value = ""
        app.screen.query_one("#f-repeat", Input).value = ""
        app.set_focus(app.screen.query_one("#f-new_password", Input))
        await burst(pilot, NEW_PASSWORD, "tab", NEW_PASSWORD, "enter")
        assert isinstance(app.screen, HomeScreen)  # logged in at once
        await _until(pilot, lambda: len(smtp_server[0].messages) == 2)
    subjects = [m["Subject"] for m in smtp_server[0].parsed()]
    assert len(subjects) == 2
    assert Email.select().where(Email.template == "Password Reset Confirmation").count() == 1
    assert "reset_completed" in [a.action for a in AuditLog.select()]


async def test_portal_unknown_email_gets_the_decoy_question_and_no_email(db: str) -> None:
    _questions()
    app = PortalApp()
    async with app.run_test(size=SIZE) as pilot:
        await burst(pilot, "f2")
        await burst(pilot, "nobody@example.com", "enter")
        assert isinstance(app.screen, SecurityAnswerScreen)
        decoy = decoy_question("nobody@example.com")
        assert decoy and decoy in str(app.screen.query_one(".intro").render())
        await burst(pilot, "anything", "enter")
        assert message(app) == "That answer is not right"
    assert Email.select().count() == 0


async def test_portal_token_page_refuses_a_bad_token_and_keeps_it(db: str) -> None:
    app = PortalApp(reset_token="not-a-token")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, TokenScreen) and value(app, "token") == "not-a-token"
        assert message(app).startswith("This link is not valid, already used or expired")


async def test_portal_invitation_token_sets_the_first_password(db: str) -> None:
    client = _client(password=None)
    email = Email.get_by_id(send_portal_invitation(client.id, SYSTEM_CLI))
    found = re.search(r"reset\?token=([A-Za-z0-9_-]+)", email.body_text)
    assert found is not None
    app = PortalApp(reset_token=found.group(1))  # gobiller portal --reset-token TOKEN
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await settle(pilot)
        assert isinstance(app.screen, NewPasswordScreen)
        assert text_of(app, ".portal-title") == "Welcome: set your password"
        assert app.focused is app.screen.query_one("#f-new_password", Input)
        await burst(pilot, NEW_PASSWORD, "tab", NEW_PASSWORD, "enter")
        assert isinstance(app.screen, HomeScreen)
    assert "invitation_accepted" in [a.action for a in AuditLog.select()]


# --------------------------------------------------------------------------- security


async def test_portal_two_factor_enrolment_backup_codes_and_switch_off(db: str) -> None:
    client = _client()
    app = PortalApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, client.email)
        await pilot.press("t")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EnrolScreen) and screen.enrolment is not None
        assert app.focused is screen.query_one("#f-code", Input)
        secret = screen.enrolment.secret
        assert text_of(app, "#secret").replace(" ", "") == secret
        assert text_of(app, "#uri").startswith("otpauth URI: otpauth://totp/")
        qr = screen.query_one("#qr", Static)
        assert "█" in str(qr.render()) and qr.region.right <= SIZE[0]
        fits(app)
        code = pyotp.TOTP(secret).now()
        await burst(pilot, code, "tab", "wrong password", "enter")
        assert message(app) == "The current password is not right"
        assert value(app, "code") == code
        app.screen.query_one("#f-current", Input).value = ""
        app.set_focus(app.screen.query_one("#f-current", Input))
        await burst(pilot, PASSWORD, "enter")
        assert isinstance(app.screen, BackupCodesScreen)
        codes = app.screen.codes
        shown = text_of(app, "#codes")
        assert len(codes) == 10 and all(c in shown for c in codes)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        assert "two-factor on (10 backup codes left)" in text_of(app, "#profile")
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, TwoFactorOnScreen)
        await burst(pilot, PASSWORD, "f2")  # new backup codes
        assert isinstance(app.screen, BackupCodesScreen) and app.screen.codes != codes
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        await burst(pilot, PASSWORD, "f3")  # switch off
        assert isinstance(app.screen, HomeScreen)
        assert "two-factor off" in text_of(app, "#profile")
    assert Client.get_by_id(client.id).totp_secret == ""
    actions = [a.action for a in AuditLog.select()]
    assert {"2fa_enabled", "2fa_backup_codes", "2fa_disabled"} <= set(actions)


async def test_portal_change_password_and_security_question(db: str) -> None:
    questions = _questions()
    client = _client()
    app = PortalApp()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, client.email)
        await pilot.press("p")
        await settle(pilot)
        fits(app)
        await burst(pilot, PASSWORD, "tab", NEW_PASSWORD, "tab", NEW_PASSWORD, "enter")
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("s")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QuestionScreen)
        assert app.focused is screen.query_one("#f-question", Select)
        fits(app)
        screen.query_one("#f-question", Select).value = questions[2].id
        app.set_focus(screen.query_one("#f-answer", Input))
        await burst(pilot, "Hill Street", "tab", PASSWORD, "enter")  # the old password
        assert message(app) == "The current password is not right"
        app.screen.query_one("#f-current", Input).value = NEW_PASSWORD
        await burst(pilot, "enter")
        assert isinstance(app.screen, HomeScreen)
        assert "security question set" in text_of(app, "#profile")
    stored = Client.get_by_id(client.id)
    assert stored.security_question_id == questions[2].id


# --------------------------------------------------------------------------- real terminal


def _read_until(fd: int, pattern: bytes, seconds: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + seconds
    while pattern not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{pattern!r} never appeared; last output: {seen[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 1 << 16)
            except OSError:
                break
    return seen


def test_portal_in_a_pseudo_terminal_burst_logs_in(tmp_path: Path) -> None:
    """The real ``gobiller portal`` in an 80×24 pseudo-terminal: email Tab password Enter
    written in one go reach the home screen."""
    from store.db import close_database, open_database
    from store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'portal.sqlite3'}"
    close_database()
    open_database(url)
    upgrade()
    client = _client()
    close_database()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command as sshd's ForceCommand would run it
        os.environ.update(TERM="xterm-256color", PYTHONPATH=str(ROOT))
        os.execv(
            sys.executable,
            [sys.executable, "-m", "tui.cli", "--database", url, "portal"],
        )
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        _read_until(fd, b"Log in to your client area")
        os.write(fd, f"{client.email}\t{PASSWORD}\r".encode())
        _read_until(fd, b"Your client area")
        os.write(fd, b"\x11")  # ctrl+q
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                assert os.waitstatus_to_exitcode(status) == 0
                break
            try:
                select.select([fd], [], [], 0.2)
                os.read(fd, 1 << 16)
            except OSError:
                pass
        else:
            raise AssertionError("ctrl+q did not end the portal")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def test_portal_home_summary_costs_the_same_queries_for_any_number_of_invoices(
    db: str,
) -> None:
    from playhouse.test_utils import assert_query_count

    from rules.accounts.my_account import my_account

    counts = []
    for n, invoices in ((1, 1), (2, 30)):
        client = _client(n)
        for k in range(invoices):
            Invoice.create(
                client=client,
                number=f"INV-{n}-{k}",
                date=dt.date(2026, 1, 1),
                due_date=dt.date(2026, 1, 15),
                payment_method="banktransfer",
                total=1000,
            )
        session = ClientSession(client.id, client.email, "local")
        with assert_query_count(2):  # the client (with currency and question), its invoices
            account = my_account(session)
        counts.append(account.unpaid_count)
    assert counts == [1, 30]
