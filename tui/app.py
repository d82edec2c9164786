"""The staff app: login, the client list, the profile editor; locks when idle."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.filter import LineFilter
from textual.screen import Screen

from rules.audit import Actor
from rules.permissions import allowed
from store.client_list import ListQuery, fetch_page
from store.settings import load_settings
from tui.background import failure_text, off_loop
from tui.collector import collect_again
from tui.plain_notifications import PlainNotifications
from tui.screens.client_list import ClientListScreen
from tui.widgets.control_pictures import ControlPictures
from tui.widgets.keys_in_order import KeysInOrder

if TYPE_CHECKING:
    from tui.screens.login import LoginScreen

#: Seconds after which garbage is collected again even if no screen said it was painted.
STARTED_WITHIN = 1.0
#: Seconds a thread runs Python before another waiting for the interpreter gets it.
SWITCH_INTERVAL = 0.0005


class ClientFinder(Provider):
    """Command palette: find a client by name or email and open it."""

    async def search(self, query: str) -> Hits:
        app = self.app
        if not isinstance(app, StaffApp) or app.actor is None or len(query.strip()) < 2:
            return
        try:  # an indexed query, in a thread: the palette keeps taking keys meanwhile
            rows = await off_loop(fetch_page, ListQuery(search=query), 0, 20)
        except Exception as exc:  # a busy or failing database: said, the palette stays
            app.notify(failure_text(exc), severity="error")
            return
        matcher = self.matcher(query)
        for row in rows:
            label = f"#{row.id} {row.first_name} {row.last_name} <{row.email}>"
            yield Hit(
                max(matcher.match(label), 0.5),
                matcher.highlight(label),
                partial(app.open_client, row.id),
                help="Open client",
            )


class StaffApp(PlainNotifications, KeysInOrder, App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "GoBiller"
    COMMANDS = App.COMMANDS | {ClientFinder}
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit"),
        Binding("ctrl+l", "lock", "Lock", id="app.lock", show=False),
    ]

    def __init__(
        self,
        *,
        lock_minutes: float | None = None,
        actor: Actor | None = None,
        keymap: dict[str, str] | None = None,
    ) -> None:
        """``actor`` skips the login screen (benchmarks and snapshot tests); ``keymap`` maps
        binding ids to keys (the ``[keys]`` table of gobiller.toml)."""
        gc.disable()  # until the first screen is painted (``tui.collector``)
        # A thread that wakes (the list's reader with a keystroke's search, Textual's writer
        # with a frame) waits for the event loop's thread to hand over the interpreter at
        # most this long, not the default 5 ms: a frame written 5-30 ms late, a search
        # started only once the key's echo was painted.
        sys.setswitchinterval(SWITCH_INTERVAL)
        super().__init__()
        self.actor: Actor | None = actor
        if keymap:
            self.set_keymap(keymap)
        self.lock_seconds = 60 * (
            lock_minutes if lock_minutes is not None else load_settings().staff_lock_minutes
        )
        self.last_activity = time.monotonic()
        self.locked = False
        self.control_pictures = ControlPictures()

    def get_line_filters(self) -> Sequence[LineFilter]:
        """Textual's filters, then ``ControlPictures``: every line any widget draws passes
        here, so no control character from the data ever reaches the terminal."""
        return [*super().get_line_filters(), self.control_pictures]

    def on_mount(self) -> None:
        # Once the app's mount is over: a screen pushed during it is laid out and rendered
        # inside Textual's start-up batch, a frame never shown, then all again.
        if self.actor is None:
            from tui.screens.login import LoginScreen  # with the password hasher

            self.call_later(self.push_screen, LoginScreen())
        else:
            self.call_later(self.push_screen, ClientListScreen())
        self.set_interval(5, self.check_lock)
        self.set_timer(STARTED_WITHIN, collect_again)  # whichever screen came first

    def on_unmount(self) -> None:
        collect_again()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown):
            self.last_activity = time.monotonic()
        await super().on_event(event)

    def check_lock(self) -> None:
        if (
            self.actor
            and not self.locked
            and time.monotonic() - self.last_activity > self.lock_seconds
        ):
            minutes = self.lock_seconds / 60
            self.action_lock(f"Locked after {minutes:g} minute(s) of inactivity")

    def action_lock(self, reason: str = "Locked") -> None:
        """Cover every screen until the password is typed; the screens underneath, and
        their unsaved edits, stay as they are."""
        if self.actor is None or self.locked:
            return
        from rules.accounts.staff import check_password
        from tui.dialogs.password import LockScreen

        actor = self.actor
        self.locked = True

        def unlocked(_: None) -> None:
            self.locked = False
            self.last_activity = time.monotonic()

        self.push_screen(LockScreen(actor.name, partial(check_password, actor), reason), unlocked)

    async def action_quit(self) -> None:
        """Every way out (ctrl+q, the command palette's Quit) asks first when a screen
        holds unsaved edits, as Esc does in the editor."""
        self._quit_when_confirmed()

    @work(exclusive=True, group="quit")
    async def _quit_when_confirmed(self) -> None:
        unsaved = [s for s in self.screen_stack if getattr(s, "dirty", False)]
        if unsaved:
            from tui.dialogs.confirm import ConfirmDialog

            where = ", ".join(getattr(s, "unsaved_label", "a form") for s in unsaved)
            if not await self.push_screen_wait(
                ConfirmDialog(
                    "Unsaved changes",
                    f"Quit GoBiller and discard your unsaved changes ({where})?",
                    yes="Discard and quit",
                    no="Stay",
                )
            ):
                return
        self.exit()

    def on_login_screen_logged_in(self, message: LoginScreen.LoggedIn) -> None:
        self.actor = message.actor
        self.sub_title = f"{message.actor.name} ({message.actor.role})"
        self.switch_screen(ClientListScreen())

    # Screens beyond the list are imported when first opened: the list paints sooner.

    def open_client(self, client_id: int | None) -> None:
        from tui.screens.client_editor import ClientEditor

        if self.actor is not None:
            self.push_screen(ClientEditor(self.actor, client_id))

    def action_email_log(self) -> None:
        from tui.screens.email_log import EmailLogScreen

        if self.actor is not None:
            self.push_screen(EmailLogScreen())

    def action_mass_mail(self) -> None:
        from tui.screens.mass_mail import MassMailScreen

        if self.actor is None:
            return
        if not allowed(self.actor, "mail.send"):
            self.notify("Your role may not send mass mail", severity="error")
            return
        self.push_screen(MassMailScreen(self.actor))

    def action_settings(self) -> None:
        from tui.screens.settings import SettingsScreen

        if self.actor is None:
            return
        if not allowed(self.actor, "settings"):
            self.notify("Only admins change settings", severity="error")
            return
        self.push_screen(SettingsScreen(self.actor))

    def action_reference(self) -> None:
        from tui.screens.reference import ReferenceScreen

        if self.actor is None:
            return
        if not allowed(self.actor, "settings"):
            self.notify(
                "Only admins change currencies, groups, tax rules and fields", severity="error"
            )
            return
        self.push_screen(ReferenceScreen(self.actor))

    def action_catalogue(self) -> None:
        from tui.screens.catalogue import CatalogueScreen

        if self.actor is None:
            return
        if not allowed(self.actor, "settings"):
            self.notify("Only admins change the products catalogue", severity="error")
            return
        self.push_screen(CatalogueScreen(self.actor))

    def action_automation(self) -> None:
        from tui.screens.automation import AutomationScreen

        if self.actor is None:
            return
        if not allowed(self.actor, "settings"):
            self.notify("Only admins run the automation", severity="error")
            return
        self.push_screen(AutomationScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.actor is not None:
            yield SystemCommand(
                "Automation", "Recent cron runs, today's plan, run now", self.action_automation
            )
            yield SystemCommand("Settings", "Automation and General Settings", self.action_settings)
            yield SystemCommand(
                "Setup",
                "Currencies, client groups, tax rules, custom fields",
                self.action_reference,
            )
            yield SystemCommand(
                "Products",
                "Products and product addons, priced per currency and cycle",
                self.action_catalogue,
            )
            yield SystemCommand("Email log", "Every email sent or queued", self.action_email_log)
            yield SystemCommand(
                "Mass mail", "Compose and send to filtered clients", self.action_mass_mail
            )
            yield SystemCommand(
                "New client", "Open the editor for a new client", partial(self.open_client, None)
            )
            yield SystemCommand(
                "Lock", "Lock the app until the password is typed", self.action_lock
            )
