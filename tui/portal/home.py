"""The logged-in client's screens: Home (profile in brief, unpaid invoices, read-only),
Change password, Security question, Two-factor (enrol with a QR code, new backup
codes, switch off) and the backup codes shown once (PRODUCT.md §2)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Static

from rules.accounts.client_login import ClientSession, LoginFailed, change_password
from rules.accounts.my_account import MyAccount, my_account
from rules.accounts.resets import security_questions, set_security_question
from rules.accounts.two_factor import (
    TwoFactorEnrolment,
    begin_two_factor,
    confirm_two_factor,
    disable_own_two_factor,
    new_backup_codes,
)
from tui.portal.forms import Field
from tui.portal.login import DIFFERENT, PortalScreen

#: The Select option that removes the security question.
NO_QUESTION = 0


class AccountScreen(PortalScreen):
    """A screen of a logged-in client: a client Closed (or removed) meanwhile is logged
    out with the login's one message."""

    def __init__(self, session: ClientSession) -> None:
        super().__init__()
        self.session = session

    def refused(self, error: BaseException) -> bool:
        if isinstance(error, LoginFailed) and not hasattr(error, "retry_after"):
            self.portal.log_out(str(error).capitalize())
            return True
        return False

    def action_back(self) -> None:
        self.app.pop_screen()


class HomeScreen(AccountScreen):
    TITLE = "Your client area"
    AUTO_FOCUS = "DataTable"
    BINDINGS = [
        Binding("escape", "back", "Back", id="portal.back", show=False),
        Binding("p", "password", "Password", id="portal.password"),
        Binding("s", "question", "Security question", id="portal.question"),
        Binding("t", "two_factor", "Two-factor", id="portal.two_factor"),
        Binding("l", "log_out", "Log out", id="portal.log_out"),
    ]

    def __init__(self, session: ClientSession) -> None:
        super().__init__(session)
        self.account: MyAccount | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="form", id="home"):
            yield from self.compose_title()
            yield Static("Loading…", id="profile", markup=False)
            yield Static("", id="unpaid-title", markup=False)
            yield DataTable(id="invoices", cursor_type="row", zebra_stripes=True)
            yield from self.compose_message()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#invoices", DataTable)
        table.add_columns("Invoice", "Date", "Due", "Total", "Balance")

    def on_screen_resume(self) -> None:
        """Each time Home is shown (after a change made on another screen), reloaded."""
        self.call_rule(lambda: my_account(self.session), self.show_account, note="Loading…")

    def show_account(self, account: MyAccount) -> None:
        self.account = account
        name = account.name + (f" ({account.company})" if account.company else "")
        security = (
            f"two-factor on ({account.backup_codes_left} backup codes left)"
            if account.two_factor
            else "two-factor off"
        )
        question = "security question set" if account.security_question else "no security question"
        self.query_one("#profile", Static).update(
            Text(
                f"{name}\n{account.email}\nStatus: {account.status}\n"
                f"Security: {security}; {question}"
            )
        )
        self.query_one("#unpaid-title", Static).update(
            Text(
                f"Unpaid invoices: {account.unpaid_count}, balance due {account.balance_due}"
                if account.unpaid_count
                else "No unpaid invoices."
            )
        )
        table = self.query_one("#invoices", DataTable)
        table.clear()
        for i in account.unpaid:
            table.add_row(
                Text(i.number),
                i.date.isoformat(),
                i.due_date.isoformat(),
                Text(i.total, justify="right"),
                Text(i.balance, justify="right"),
            )

    def action_password(self) -> None:
        self.app.push_screen(ChangePasswordScreen(self.session))

    def action_question(self) -> None:
        self.app.push_screen(QuestionScreen(self.session))

    def action_two_factor(self) -> None:
        if self.account is None:
            return
        if self.account.two_factor:
            self.app.push_screen(TwoFactorOnScreen(self.session))
        else:
            self.app.push_screen(EnrolScreen(self.session))

    def action_log_out(self) -> None:
        self.portal.log_out()

    def action_back(self) -> None:
        """Esc on Home does nothing (Log out is ``l``, quit ctrl+q)."""


class ChangePasswordScreen(AccountScreen):
    TITLE = "Change password"
    INTRO = "At least 10 characters. Esc goes back without changing anything."
    FIELDS = (
        Field("current", "Current password", password=True),
        Field("new_password", "New password", password=True),
        Field("repeat", "Repeat it", password=True),
    )

    def submit(self) -> None:
        v = self.values()
        if v["new_password"] != v["repeat"]:
            self.say(DIFFERENT)
            return
        self.call_rule(
            lambda: change_password(self.session, v["new_password"], current_password=v["current"]),
            self.changed,
        )

    def changed(self, session: ClientSession) -> None:
        self.portal.session = session
        self.portal.deliver()  # "Password Reset Confirmation"
        self.app.pop_screen()
        self.app.notify("Your password is changed.")


class QuestionScreen(AccountScreen):
    TITLE = "Security question"
    INTRO = (
        "Asked before a reset link is emailed when you forget your password. "
        "Answers are compared without case."
    )
    FIELDS = (
        Field("question", "Question", choice=True),
        Field("answer", "Answer"),
        Field("current", "Current password", password=True),
    )

    def on_mount(self) -> None:
        self.call_rule(security_questions, self.offer, note="Loading…")

    def offer(self, questions: list[tuple[int, str]]) -> None:
        options = [(text, qid) for qid, text in questions]
        self.field_choice("question").set_options([*options, ("(no question)", NO_QUESTION)])

    def submit(self) -> None:
        v = self.values()
        if not v["question"]:
            self.say("Choose a question (or “no question” to remove yours)")
            return
        chosen: int | None = int(v["question"]) or None
        self.call_rule(
            lambda: set_security_question(self.session, chosen, v["answer"], v["current"]),
            self.saved,
        )

    def saved(self, _: None) -> None:
        self.app.pop_screen()
        self.app.notify("Your security question is saved.")


class BackupCodesScreen(AccountScreen):
    """The ten backup codes, shown this once."""

    TITLE = "Your backup codes"
    BINDINGS = [Binding("enter", "back", "Done", id="portal.done")]

    def __init__(self, session: ClientSession, codes: list[str]) -> None:
        super().__init__(session)
        self.codes = codes

    def compose(self) -> ComposeResult:
        half = (len(self.codes) + 1) // 2
        rows = ["   ".join(self.codes[i::half][:2]) for i in range(half)]
        with Vertical(classes="form"):
            yield from self.compose_title()
            yield Static(
                "Two-factor authentication is on. Write these codes down or print them now:"
                " they are shown only this once. Each one logs you in once, in place of a"
                " code, if you lose your device.",
                classes="intro",
                markup=False,
            )
            yield Static("\n".join(rows), id="codes", markup=False)
            yield Static("Press Enter when they are safe.", classes="intro", markup=False)
        yield Footer()


class EnrolScreen(AccountScreen):
    """Switch two-factor on: the secret, the otpauth URI and its QR code, then a first
    code and the current password. Everything scrolls (PageUp/PageDown) when the QR code
    is taller than the terminal."""

    TITLE = "Switch on two-factor"
    FIELDS = (
        Field("code", "Code from the app"),
        Field("current", "Current password", password=True),
    )
    BINDINGS = [
        Binding("pageup", "scroll(-1)", "Scroll up", id="portal.scroll_up", show=False),
        Binding("pagedown", "scroll(1)", "Scroll down", id="portal.scroll_down", show=False),
    ]

    def __init__(self, session: ClientSession) -> None:
        super().__init__(session)
        self.enrolment: TwoFactorEnrolment | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="enrol"):
            with Horizontal(id="enrol-row"):
                yield Static("", id="qr", markup=False)
                with Vertical(id="enrol-side"):
                    yield from self.compose_title()
                    yield Static(
                        "Scan the code with an authenticator app, or type this secret:",
                        classes="intro",
                        markup=False,
                    )
                    yield Static("", id="secret", markup=False)
                    yield from self.compose_fields()
                    yield from self.compose_message()
            yield Static("", id="uri", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.call_rule(lambda: begin_two_factor(self.session), self.shown, note="Loading…")

    def shown(self, enrolment: TwoFactorEnrolment) -> None:
        self.enrolment = enrolment
        self.query_one("#qr", Static).update(enrolment.qr_text.rstrip("\n"))
        secret = enrolment.secret
        self.query_one("#secret", Static).update(
            " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        )
        self.query_one("#uri", Static).update(f"otpauth URI: {enrolment.uri}")

    def action_scroll(self, direction: int) -> None:
        scroll = self.query_one("#enrol", VerticalScroll)
        if direction < 0:
            scroll.scroll_page_up()
        else:
            scroll.scroll_page_down()

    def submit(self) -> None:
        if self.enrolment is None:
            return
        v = self.values()
        secret = self.enrolment.secret
        self.call_rule(
            lambda: confirm_two_factor(self.session, secret, v["code"], v["current"]),
            self.enabled,
        )

    def enabled(self, codes: list[str]) -> None:
        self.app.switch_screen(BackupCodesScreen(self.session, codes))


class TwoFactorOnScreen(AccountScreen):
    TITLE = "Two-factor authentication is on"
    INTRO = (
        "Type your current password, then F2 for ten new backup codes (the old ones stop "
        "working) or F3 to switch two-factor off."
    )
    FIELDS = (Field("current", "Current password", password=True),)
    BINDINGS = [
        Binding("f2", "new_codes", "New backup codes", id="portal.new_codes"),
        Binding("f3", "switch_off", "Switch off", id="portal.switch_off"),
    ]

    def submit(self) -> None:
        self.say("Press F2 for new backup codes or F3 to switch two-factor off")

    def action_new_codes(self) -> None:
        current = self.values()["current"]
        self.call_rule(lambda: new_backup_codes(self.session, current), self.renewed)

    def renewed(self, codes: list[str]) -> None:
        self.app.switch_screen(BackupCodesScreen(self.session, codes))

    def action_switch_off(self) -> None:
        current = self.values()["current"]
        self.call_rule(lambda: disable_own_two_factor(self.session, current), self.switched_off)

    def switched_off(self, _: None) -> None:
        self.app.pop_screen()
        self.app.notify("Two-factor authentication is off.")
