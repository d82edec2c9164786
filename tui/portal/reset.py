"""The forgotten-password flow, step by step (PRODUCT.md §2): email -> the security
question when one is asked -> "check your email" -> paste the token -> new password ->
logged in. An invitation token (staff's "Send portal invitation") sets the first
password on the same pages.

The screens show whatever the rules answer: for an email that is no client's the rules
return a decoy question and the same messages, so these screens cannot tell the two
apart either.
"""

from __future__ import annotations

from textual.binding import Binding

from rules.accounts.client_login import ClientSession, SecondFactorChallenge
from rules.accounts.resets import (
    INVITE,
    InvalidToken,
    ResetStep,
    answer_security_question,
    redeem_token,
    request_reset,
    token_purpose,
)
from tui.portal.forms import Field
from tui.portal.login import DIFFERENT, LoginScreen, PortalScreen

PASTE = "Paste the token from the email (or the whole link) and press Enter."


def token_of(text: str) -> str:
    """The token in what was pasted: the token itself, or the link that carries it
    (``…/reset?token=TOKEN``)."""
    text = text.strip()
    if "token=" in text:
        text = text.split("token=", 1)[1].split("&", 1)[0]
    return text


class BackToLogin(PortalScreen):
    """Esc on the reset pages returns to the login."""

    def action_back(self) -> None:
        self.portal.show(LoginScreen())


class ForgotScreen(BackToLogin):
    TITLE = "Forgot your password?"
    INTRO = "Enter the email address of your account."
    FIELDS = (Field("email", "Email"),)

    def __init__(self, email: str = "") -> None:
        super().__init__()
        self.email = email

    def on_mount(self) -> None:
        self.field_input("email").value = self.email

    def submit(self) -> None:
        email = self.values()["email"]
        if not email.strip():
            self.say("Enter the email address of your account")
            return
        self.call_rule(lambda: request_reset(email), lambda step: self.answered(email, step))

    def answered(self, email: str, step: ResetStep) -> None:
        if step.question is not None:
            self.portal.show(SecurityAnswerScreen(email, step))
            return
        self.portal.deliver()
        self.portal.show(TokenScreen(note=step.message))


class SecurityAnswerScreen(BackToLogin):
    TITLE = "Security question"
    FIELDS = (Field("answer", "Your answer"),)

    def __init__(self, email: str, step: ResetStep) -> None:
        super().__init__()
        self.email = email
        self.step = step

    def intro(self) -> str:
        return f"{self.step.message}\n\n{self.step.question}"

    def submit(self) -> None:
        answer = self.values()["answer"]
        self.call_rule(lambda: answer_security_question(self.email, answer), self.sent)

    def sent(self, step: ResetStep) -> None:
        self.portal.deliver()
        self.portal.show(TokenScreen(note=step.message))


class TokenScreen(BackToLogin):
    """The reset page: the token from the email (a reset or an invitation)."""

    TITLE = "Reset your password"
    FIELDS = (Field("token", "Token"),)
    BINDINGS = [Binding("f2", "forgot", "Ask for a new link", id="portal.new_link")]

    def __init__(self, token: str = "", note: str = "", message: str = "") -> None:
        super().__init__()
        self.token = token
        self.note = note
        self.message = message

    def intro(self) -> str:
        if self.note:
            return f"{self.note}\n\nCheck your email. {PASTE}"
        return PASTE

    def on_mount(self) -> None:
        if self.message:
            self.say(self.message)
        if self.token:
            self.field_input("token").value = self.token
            self.submit()

    def submit(self) -> None:
        token = token_of(self.values()["token"])
        self.call_rule(lambda: token_purpose(token), lambda p: self.checked(token, p))

    def checked(self, token: str, purpose: str) -> None:
        self.portal.show(NewPasswordScreen(token, purpose))

    def action_forgot(self) -> None:
        self.portal.show(ForgotScreen())


class NewPasswordScreen(BackToLogin):
    TITLE = "Choose a new password"
    INTRO = "At least 10 characters; a few words you will remember are best."
    FIELDS = (
        Field("new_password", "New password", password=True),
        Field("repeat", "Repeat it", password=True),
    )

    def __init__(self, token: str, purpose: str) -> None:
        super().__init__()
        self.token = token
        self.purpose = purpose

    def heading(self) -> str:
        return "Welcome: set your password" if self.purpose == INVITE else self.TITLE

    def submit(self) -> None:
        v = self.values()
        if v["new_password"] != v["repeat"]:
            self.say(DIFFERENT)
            return
        self.call_rule(lambda: redeem_token(self.token, v["new_password"]), self.done)

    def done(self, result: ClientSession | SecondFactorChallenge) -> None:
        self.portal.deliver()  # "Password Reset Confirmation"
        self.portal.logged_in(result)

    def refused(self, error: BaseException) -> bool:
        if isinstance(error, InvalidToken):
            self.portal.show(TokenScreen(message=str(error).capitalize()))
            return True
        return False
