"""Mass mail: choose recipients, compose, preview the count and one sample, then send.

The message is a template (Jinja2, sandboxed): the composition is checked and
saved into it before any preview, so what is previewed is what is sent.

The choices, the template, the preview and the send are read and written in worker
threads (no query on the event loop); a failure is shown on the error line and what
was typed stays.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Checkbox, Footer, Input, Label, Select, Static, TextArea
from textual.worker import Worker, WorkerState

from rules.audit import Actor
from rules.errors import RuleError
from rules.mail.massmail import MassMailFilter, Preview, preview, send_mass_mail
from rules.mail.templates import get_template, save_template
from store.models import ClientGroup, Currency, EmailTemplate
from tui.background import failure_text, off_loop, thread_connection
from tui.dialogs.confirm import ConfirmDialog
from tui.widgets.error_line import ErrorLine
from tui.widgets.text_input import TextInput


class MassMailScreen(Screen[None]):
    BINDINGS = [
        Binding("f5", "preview", "Preview", id="massmail.preview"),
        Binding("ctrl+s", "send", "Send", id="massmail.send"),
        Binding("escape", "app.pop_screen", "Back", id="massmail.back"),
    ]

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor

    def compose(self) -> ComposeResult:
        yield Static("Mass mail · f5 preview · ctrl+s send", id="editor-title")
        with VerticalScroll(id="profile-form"):
            yield Static("Recipients", classes="section")
            for name, label, widget in (
                (
                    "status",
                    "Statuses (comma-separated)",
                    TextInput("Active", id="mm-status", compact=True),
                ),
                (
                    "group",
                    "Client group",
                    Select(
                        [],
                        prompt="Any group",
                        id="mm-group",
                        compact=True,
                    ),
                ),
                (
                    "country",
                    "Countries (ISO, comma-separated)",
                    TextInput(id="mm-country", compact=True),
                ),
                (
                    "currency",
                    "Currency",
                    Select(
                        [],
                        prompt="Any currency",
                        id="mm-currency",
                        compact=True,
                    ),
                ),
                (
                    "has_active_product",
                    "Has an active product",
                    Select(
                        [("yes", "yes"), ("no", "no")],
                        prompt="Either",
                        id="mm-active",
                        compact=True,
                    ),
                ),
                (
                    "created_from",
                    "Created from (YYYY-MM-DD)",
                    TextInput(id="mm-created_from", compact=True),
                ),
                (
                    "created_to",
                    "Created to (YYYY-MM-DD)",
                    TextInput(id="mm-created_to", compact=True),
                ),
            ):
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    yield widget
                del name
            yield Checkbox("Marketing (skips clients who opted out)", value=True, id="mm-marketing")
            yield Static("Message", classes="section")
            with Horizontal(classes="field"):
                yield Label("Template", classes="field-label")
                yield Select(
                    [("Mass Mail", "Mass Mail")],  # every template comes with the first read
                    value="Mass Mail",
                    allow_blank=False,
                    id="mm-template",
                    compact=True,
                )
            with Horizontal(classes="field"):
                yield Label("Subject", classes="field-label")
                yield TextInput(id="mm-subject", compact=True)
            yield TextArea(id="mm-body")
            yield ErrorLine(id="mm-error")
            yield Static("Preview", classes="section")
            yield Static(
                "Press f5 to count the recipients and render a sample.",
                id="mm-preview",
                markup=False,
            )
        yield Footer()

    def on_mount(self) -> None:
        self.read_choices()

    @work(thread=True, group="massmail-read", exit_on_error=False)
    def read_choices(self) -> None:
        with thread_connection():
            groups = [g.name for g in ClientGroup.select().order_by(ClientGroup.name)]
            currencies = [c.code for c in Currency.select().order_by(Currency.code)]
            templates = [t.name for t in EmailTemplate.select().order_by(EmailTemplate.name)]
            template = get_template("Mass Mail")
        self.app.call_from_thread(self._show_choices, groups, currencies, templates, template)

    def _show_choices(
        self, groups: list[str], currencies: list[str], templates: list[str], template: Any
    ) -> None:
        self.query_one("#mm-group", Select).set_options([(Text(g), g) for g in groups])
        self.query_one("#mm-currency", Select).set_options([(c, c) for c in currencies])
        chooser = self.query_one("#mm-template", Select)
        with self.prevent(Select.Changed):
            if templates:
                chooser.set_options([(t, t) for t in templates])
            chooser.value = template.name
        self._show_template(template)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed read, preview or send is shown; the screen stays."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self._show_error(failure_text(event.worker.error))

    def _show_error(self, text: str) -> None:
        self.query_one("#mm-error", ErrorLine).say(text)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "mm-template" and event.value is not Select.NULL:
            self._load_template(str(event.value))

    @work(group="massmail-template", exclusive=True, exit_on_error=False)
    async def _load_template(self, name: str) -> None:
        self._show_template(await off_loop(get_template, name))

    def _show_template(self, template: Any) -> None:
        self.query_one("#mm-subject", Input).value = template.subject
        self.query_one("#mm-body", TextArea).text = template.body_text

    def _filter(self) -> MassMailFilter:
        pairs = []
        for key, selector in (
            ("status", "#mm-status"),
            ("country", "#mm-country"),
            ("created_from", "#mm-created_from"),
            ("created_to", "#mm-created_to"),
        ):
            value = self.query_one(selector, Input).value.strip()
            if value:
                pairs.append(f"{key}={value}")
        for key, selector in (
            ("group", "#mm-group"),
            ("currency", "#mm-currency"),
            ("has_active_product", "#mm-active"),
        ):
            choice = self.query_one(selector, Select).value
            if choice is not Select.NULL:
                pairs.append(f"{key}={choice}")
        return MassMailFilter.parse(pairs)

    async def _prepare(self) -> tuple[MassMailFilter, str, bool, Preview] | None:
        """Check filters and message, save the message into its template, preview (the
        rules run in a thread)."""
        self._show_error("")
        name = str(self.query_one("#mm-template", Select).value)
        marketing = self.query_one("#mm-marketing", Checkbox).value
        subject = self.query_one("#mm-subject", Input).value
        body = self.query_one("#mm-body", TextArea).text
        try:
            flt = self._filter()
            plan = await off_loop(self._check_and_preview, flt, name, subject, body, marketing)
        except RuleError as exc:
            self._show_error(str(exc))
            return None
        sample = plan.sample
        text = (
            f"{plan.count} recipient(s); {plan.skipped_opt_out} skipped (opted out), "
            f"{plan.skipped_closed} skipped (Closed)."
        )
        if sample is not None:
            text += f"\n\nTo: {plan.sample_to}\nSubject: {sample.subject}\n\n{sample.body_text}"
        self.query_one("#mm-preview", Static).update(text)
        return flt, name, marketing, plan

    def _check_and_preview(
        self, flt: MassMailFilter, name: str, subject: str, body: str, marketing: bool
    ) -> Preview:
        """In a worker thread: save an edited message into its template, then preview."""
        template = get_template(name)
        if (subject, body) != (template.subject, template.body_text):
            save_template(name, subject, body, template.body_html, self.actor)
        return preview(flt, name, marketing=marketing)

    @work(exclusive=True, group="massmail", exit_on_error=False)
    async def action_preview(self) -> None:
        await self._prepare()

    @work(exclusive=True, group="massmail", exit_on_error=False)
    async def action_send(self) -> None:
        prepared = await self._prepare()
        if prepared is None:
            return
        flt, name, marketing, plan = prepared
        if plan.count == 0:
            self.notify("No client matches these filters", severity="warning")
            return
        if not await self.app.push_screen_wait(
            ConfirmDialog(
                "Send mass mail",
                f"Queue {name!r} for {plan.count} client(s)? Delivery is "
                "rate-limited and runs with the next mail flush or cron run.",
                yes="Send",
            )
        ):
            return
        try:
            queued = await off_loop(send_mass_mail, flt, name, self.actor, marketing=marketing)
        except RuleError as exc:
            self._show_error(str(exc))
            return
        self.notify(f"Queued {queued} email(s)")
