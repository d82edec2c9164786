"""``gobiller portal``: the client portal (issue 12, PRODUCT.md §2), the program an
OpenSSH ``Match User`` block's ``ForceCommand`` runs for clients.

Keyboard only, 80×24 at least, nothing but Textual's own drawing (a plain xterm over a
slow link is enough). The screens are thin callers of ``rules.accounts``; this app holds
the logged-in ``ClientSession`` and moves between the screens:
Log in (-> code when two-factor is on -> forced password change after a staff reset) ->
Home (profile, unpaid invoices) -> Change password / Security question / Two-factor;
Forgot password (email -> security question -> "check your email") -> token -> new
password -> logged in; an invitation token sets the first password the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual.actions import SkipAction
from textual.app import App
from textual.binding import Binding
from textual.filter import LineFilter
from textual.screen import Screen
from textual.widgets import Input

from rules.accounts.client_login import ClientSession, SecondFactorChallenge
from tui.portal.forms import FormScreen
from tui.widgets.control_pictures import ControlPictures


class PortalApp(App[None]):
    """The client portal. ``reset_token`` (``gobiller portal --reset-token``) opens the
    reset page with the token filled in and checked; ``flush`` delivers the outbox after
    a step that queued an email (a reset link, a confirmation), in a thread worker:
    an email that cannot leave now stays queued for the next cron run."""

    CSS_PATH = "portal.tcss"
    TITLE = "GoBiller client portal"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="portal.quit", priority=True),
        # Focus moves are app-level priority bindings: they run as the key is read, so the
        # keys after them in a burst go to the new field (see ``action_enter``).
        Binding("tab", "next_field", "Next field", id="portal.next", show=False, priority=True),
        Binding(
            "shift+tab",
            "previous_field",
            "Previous field",
            id="portal.previous",
            show=False,
            priority=True,
        ),
        Binding("enter", "enter", "Next field", id="portal.enter", show=False, priority=True),
        # A newline is Enter typed before the terminal left line mode (keys sent as the
        # portal starts, e.g. by a password manager over SSH): the terminal turned it into
        # ctrl+j.
        Binding("ctrl+j", "newline", "Enter", id="portal.newline", show=False, priority=True),
    ]

    def __init__(
        self,
        *,
        reset_token: str | None = None,
        flush: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__()
        self.reset_token = reset_token
        self.flush = flush
        self.session: ClientSession | None = None
        self.control_pictures = ControlPictures()

    def get_line_filters(self) -> Sequence[LineFilter]:
        """As the staff app: no control character from the data reaches the terminal."""
        return [*super().get_line_filters(), self.control_pictures]

    async def on_mount(self) -> None:
        """The first screen is mounted (and its first field focused) before the first key
        is handled: keys typed at once (a password manager) land in its fields."""
        from tui.portal.login import LoginScreen
        from tui.portal.reset import TokenScreen

        first: Screen[None] = (
            TokenScreen(token=self.reset_token) if self.reset_token is not None else LoginScreen()
        )
        await self.push_screen(first)

    # ------------------------------------------------------------------ keys in a burst

    def action_next_field(self) -> None:
        self.screen.focus_next()

    def action_previous_field(self) -> None:
        self.screen.focus_previous()

    def action_enter(self) -> None:
        """Enter in a form field that is not the last: the next field, at once.

        Textual hands each key to the focused widget's queue as the app reads it, and a
        key a widget does not handle (Tab) or a message it posts (Input.Submitted) travels
        up through the queues of its parents, behind the keys read meanwhile: a focus
        change made there comes too late for "email Enter password", whose password
        would land in Email. A priority binding of the app runs before the next key is
        read. Enter in the last field (or anywhere else) goes on to the widget: the
        field's own queue holds its earlier keys, so the form is read complete.
        """
        screen, focused = self.screen, self.focused
        if isinstance(screen, FormScreen) and isinstance(focused, Input):
            if screen.next_field((focused.id or "").removeprefix("f-")):
                return
        raise SkipAction()

    def action_newline(self) -> None:
        """ctrl+j in a form field: as Enter (the submit queued behind the field's keys)."""
        screen, focused = self.screen, self.focused
        if isinstance(screen, FormScreen) and isinstance(focused, Input):
            if not screen.next_field((focused.id or "").removeprefix("f-")):
                focused.call_later(focused.action_submit)
            return
        raise SkipAction()

    # ------------------------------------------------------------------ moving around

    def show(self, screen: Screen[Any]) -> None:
        """Replace every screen by ``screen`` (the login steps never stack); the blank
        default screen stays at the bottom."""
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(screen)

    def logged_in(self, result: ClientSession | SecondFactorChallenge) -> None:
        """After a password (login or reset): the code screen, the forced password change
        or the home screen."""
        from tui.portal.home import HomeScreen
        from tui.portal.login import ForcedChangeScreen, SecondFactorScreen

        if isinstance(result, SecondFactorChallenge):
            self.show(SecondFactorScreen(result))
            return
        self.session = result
        self.sub_title = result.email
        if result.must_change_password:
            self.show(ForcedChangeScreen(result))
        else:
            self.show(HomeScreen(result))

    def log_out(self, message: str = "You are logged out.") -> None:
        from tui.portal.login import LoginScreen

        self.session = None
        self.sub_title = ""
        self.show(LoginScreen(message=message))

    def deliver(self) -> None:
        """Send what a step queued (a reset link) now rather than at the next cron run."""
        if self.flush is not None:
            self.run_worker(self.flush, thread=True, exit_on_error=False, group="deliver")
