"""Log in (email and password), the TOTP or backup code when two-factor is on, and the
password change forced after a staff Reset & Send Password (PRODUCT.md §2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Static

from rules.accounts.client_login import (
    ClientSession,
    LoginFailed,
    SecondFactorChallenge,
    SecondFactorFailed,
    change_password,
    login,
    verify_second_factor,
)
from tui.portal.forms import Field, FormScreen

if TYPE_CHECKING:
    from tui.portal.app import PortalApp

DIFFERENT = "The two new passwords are not the same"


class PortalScreen(FormScreen):
    """A portal form: title, an optional line of explanation, the fields, the message
    line, the keys in the footer."""

    INTRO = ""

    @property
    def portal(self) -> PortalApp:
        return cast("PortalApp", self.app)

    def intro(self) -> str:
        return self.INTRO

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield from self.compose_title()
            if self.intro():
                yield Static(self.intro(), classes="intro", markup=False)
            yield from self.compose_fields()
            yield from self.compose_message()
        yield Footer()


class LoginScreen(PortalScreen):
    TITLE = "Log in to your client area"
    FIELDS = (Field("email", "Email"), Field("password", "Password", password=True))
    BINDINGS = [
        Binding("f2", "forgot", "Forgot password", id="portal.forgot"),
        Binding("f3", "token", "I have a token", id="portal.token"),
    ]

    def __init__(self, message: str = "") -> None:
        super().__init__()
        self.message = message

    def intro(self) -> str:
        return "Enter moves to the next field and logs in. F2 if you forgot your password."

    def on_mount(self) -> None:
        if self.message:
            self.say(self.message, note=True)

    def submit(self) -> None:
        v = self.values()
        self.call_rule(lambda: login(v["email"], v["password"]), self.portal.logged_in)

    def action_forgot(self) -> None:
        from tui.portal.reset import ForgotScreen

        self.portal.show(ForgotScreen(email=self.values()["email"]))

    def action_token(self) -> None:
        from tui.portal.reset import TokenScreen

        self.portal.show(TokenScreen())


class SecondFactorScreen(PortalScreen):
    TITLE = "Two-factor authentication"
    INTRO = "Enter the 6-digit code from your authenticator app, or one of your backup codes."
    FIELDS = (Field("code", "Code"),)

    def __init__(self, challenge: SecondFactorChallenge) -> None:
        super().__init__()
        self.challenge = challenge

    def submit(self) -> None:
        code = self.values()["code"]
        self.call_rule(lambda: verify_second_factor(self.challenge, code), self.portal.logged_in)

    def refused(self, error: BaseException) -> bool:
        if (
            isinstance(error, SecondFactorFailed)
            and error.restart
            or isinstance(error, LoginFailed)
        ):
            self.portal.log_out(str(error)[:1].upper() + str(error)[1:])
            return True
        self.field_input("code").value = ""  # a wrong code is no use to correct
        return False

    def action_back(self) -> None:
        self.portal.log_out("")


class ForcedChangeScreen(PortalScreen):
    """After a staff Reset & Send Password: nothing else until the password is changed."""

    TITLE = "Choose a new password"
    INTRO = (
        "The password you logged in with was sent by email: choose your own now "
        "(at least 10 characters). Esc logs out."
    )
    FIELDS = (
        Field("new_password", "New password", password=True),
        Field("repeat", "Repeat it", password=True),
    )

    def __init__(self, session: ClientSession) -> None:
        super().__init__()
        self.session = session

    def submit(self) -> None:
        v = self.values()
        if v["new_password"] != v["repeat"]:
            self.say(DIFFERENT)
            return
        self.call_rule(lambda: change_password(self.session, v["new_password"]), self.changed)

    def changed(self, session: ClientSession) -> None:
        self.portal.deliver()  # "Password Reset Confirmation"
        self.portal.logged_in(session)

    def refused(self, error: BaseException) -> bool:
        if isinstance(error, LoginFailed):
            self.portal.log_out(str(error).capitalize())
            return True
        return False

    def action_back(self) -> None:
        self.portal.log_out()
