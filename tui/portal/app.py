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
from tui.background import thread_connection
from tui.plain_notifications import PlainNotifications
from tui.portal.forms import FormScreen
from tui.widgets.control_pictures import ControlPictures
from tui.widgets.keys_in_order import KeysInOrder


class PortalApp(PlainNotifications, KeysInOrder, App[None]):
    """The client portal. ``reset_token`` (``gobiller portal --reset-token``) opens the
    reset page with the token filled in and checked; ``flush`` delivers the outbox after
    a step that queued an email (a reset link, a confirmation), in a thread worker:
    an email that cannot leave now stays queued for the next cron run."""

    CSS_PATH = "portal.tcss"
    TITLE = "GoBiller client portal"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="portal.quit", priority=True),
        # Enter in a form field that is not the last moves on, as Tab does (keys typed in a
        # burst stay in order through ``KeysInOrder``, as in the staff app).
        Binding("enter", "enter", "Next field", id="portal.enter", show=False, priority=True),
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

    # ------------------------------------------------------------------ keys

    def action_enter(self) -> None:
        """Enter in a form field that is not the last: the next field. Enter in the last
        field (or anywhere else) goes on to the widget, which submits the form."""
        screen, focused = self.screen, self.focused
        if isinstance(screen, FormScreen) and isinstance(focused, Input):
            if screen.next_field((focused.id or "").removeprefix("f-")):
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
            self.run_worker(self._deliver, thread=True, exit_on_error=False, group="deliver")

    def _deliver(self) -> None:
        assert self.flush is not None
        with thread_connection():  # the worker thread's connection closes with it
            self.flush()
