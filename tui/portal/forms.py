"""The shape every portal screen shares: fields declared once, rules called in a thread
worker that posts a typed message back, and one handler that turns any refusal into a
message beside the form (the form keeps its values).

A screen lists its ``FIELDS``; ``compose_fields`` draws them (label and a one-line
input, in that order, so Tab follows the declaration) and ``values()`` reads them back.
``call_rule(call, then)`` runs ``call`` (a rules function with the values already read)
in a thread worker: no query ever runs on the event loop. Its result comes back as a
``RuleDone`` message and ``then(result)`` runs on the event loop; a failure arrives at
``on_worker_state_changed``, which shows ``RuleError``s as they are worded
(``TooManyAttempts``: "Too many attempts, try again in N s") and anything else as a
short line, never a crash.

Focus moves with ``Screen.set_focus`` (at once), never ``Widget.focus`` (which waits
behind keys already queued, so a burst such as email Tab password Enter would land in
the wrong field).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from rules.errors import RuleError, ValidationError
from tui.background import thread_connection
from tui.widgets.error_line import ErrorLine
from tui.widgets.text_input import TextInput

T = TypeVar("T")

#: Longest value an input takes (passwords may have 256 characters; tokens are 43).
INPUT_MAX = 300


@dataclass(frozen=True)
class Field:
    """One input of a form: its name (the widget id is ``f-<name>``), its label, whether
    it is secret (shown as dots), and a placeholder."""

    name: str
    label: str
    password: bool = False
    placeholder: str = ""
    #: A choice among options the screen loads (a ``Select``) instead of typed text.
    choice: bool = False


class RuleDone(Message, Generic[T]):
    """A rules call finished in its worker: ``then(result)`` runs on the event loop."""

    def __init__(self, then: Callable[[T], None], result: T) -> None:
        super().__init__()
        self.then = then
        self.result = result


def refusal_text(exc: BaseException) -> str:
    """What the message line says for a failed rules call: a ``RuleError`` as worded by
    the rules (first letter capitalised; a ``ValidationError`` field by field), anything
    else as one generic line (its detail goes to the log, never to the client)."""
    if isinstance(exc, ValidationError):
        text = "; ".join(
            f"{key.replace('_', ' ').capitalize()}: {reason}" for key, reason in exc.errors.items()
        )
    elif isinstance(exc, RuleError):
        text = str(exc)
    else:
        return "Something went wrong; nothing was changed. Please try again later."
    return text[:1].upper() + text[1:]


class FormScreen(Screen[None]):
    """A portal screen with a form. Subclasses set ``FIELDS`` and ``TITLE`` and implement
    ``submit`` (called by Enter in the last field, or by the screen's own keys)."""

    FIELDS: tuple[Field, ...] = ()
    TITLE = ""
    AUTO_FOCUS = "Input, Select"
    BINDINGS = [Binding("escape", "back", "Back", id="portal.back")]

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    # ------------------------------------------------------------------ drawing

    def heading(self) -> str:
        return self.TITLE

    def compose_title(self) -> ComposeResult:
        yield Static(self.heading(), classes="portal-title", markup=False)

    def compose_fields(self, fields: tuple[Field, ...] | None = None) -> ComposeResult:
        for field in self.FIELDS if fields is None else fields:
            with Horizontal(classes="field"):
                yield Label(field.label, classes="field-label", markup=False)
                if field.choice:
                    yield Select[int]([], id=f"f-{field.name}", compact=True, prompt="Choose")
                    continue
                yield TextInput(
                    id=f"f-{field.name}",
                    password=field.password,
                    placeholder=field.placeholder,
                    max_length=INPUT_MAX,
                    compact=True,
                    select_on_focus=False,
                )

    def compose_message(self) -> ComposeResult:
        yield ErrorLine(id="form-message")

    # ------------------------------------------------------------------ values and focus

    def field_input(self, name: str) -> Input:
        return self.query_one(f"#f-{name}", Input)

    def field_choice(self, name: str) -> Select[int]:
        return self.query_one(f"#f-{name}", Select)

    def values(self) -> dict[str, str]:
        """Every field's current text, by name (a choice: its option's value as text,
        "" when none is chosen)."""
        found: dict[str, str] = {}
        for f in self.FIELDS:
            if f.choice:
                value = self.field_choice(f.name).value
                found[f.name] = "" if value is Select.BLANK else str(value)
            else:
                found[f.name] = self.field_input(f.name).value
        return found

    def focus_field(self, name: str) -> None:
        """Focus a field at once (see the module's note on bursts)."""
        self.set_focus(self.query_one(f"#f-{name}"))

    def next_field(self, current: str) -> bool:
        """Focus the field after ``current``; False when ``current`` is the last."""
        names = [f.name for f in self.FIELDS]
        if current in names and names.index(current) < len(names) - 1:
            self.focus_field(names[names.index(current) + 1])
            return True
        return False

    def say(self, text: str, *, note: bool = False) -> None:
        """Show ``text`` in the message line (as typed: never read as markup); a ``note``
        ("Checking…") is drawn quietly, a refusal as an error."""
        line = self.query_one("#form-message", ErrorLine)
        line.update(text)
        line.set_class(note, "-note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter moves to the next field; in the last one it submits the form."""
        event.stop()
        if not self.next_field((event.input.id or "").removeprefix("f-")):
            self.submit()

    def on_select_changed(self, event: Select.Changed) -> None:
        """A choice made moves on to the next field, as Enter does in an input."""
        event.stop()
        if event.select.has_focus and event.value is not Select.BLANK:
            self.next_field((event.select.id or "").removeprefix("f-"))

    def submit(self) -> None:  # pragma: no cover - every form defines it
        raise NotImplementedError

    def action_back(self) -> None:
        """Esc: the screen this one came from (subclasses say which)."""

    # ------------------------------------------------------------------ rules calls

    def call_rule(
        self, call: Callable[[], T], then: Callable[[T], None], *, note: str = "Checking…"
    ) -> None:
        """Run ``call`` in a thread worker; ``then(result)`` on the event loop afterwards.
        A second submit while one runs is ignored (its keys stay in the fields)."""
        if self.busy:
            return
        self.busy = True
        self.say(note, note=True)

        def work() -> None:
            with thread_connection():  # the worker thread's connection closes with it
                result = call()
            self.post_message(RuleDone(then, result))

        self.run_worker(work, thread=True, exit_on_error=False, group="rules")

    def on_rule_done(self, message: RuleDone[Any]) -> None:
        message.stop()
        self.busy = False
        self.say("")
        message.then(message.result)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed rules call ends up: its reason beside the form."""
        if event.worker.group != "rules" or event.state != WorkerState.ERROR:
            return
        self.busy = False
        error = event.worker.error
        assert error is not None
        if not isinstance(error, RuleError):
            self.log.error("portal rules call failed", error)
        if not self.refused(error):
            self.say(refusal_text(error))

    def refused(self, error: BaseException) -> bool:
        """A screen's own handling of a refusal (e.g. go back to the login); True when
        handled. The default shows the message."""
        return False
