"""The client list: search as you type, filters, sort, and a virtual table."""

from __future__ import annotations

import asyncio
import gc
import time
from concurrent.futures import Future
from dataclasses import replace
from functools import partial

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Select
from textual.worker import Worker, WorkerState

from store.client_list import (
    SEARCH_CAP,
    SORTS,
    ListQuery,
    ListReader,
    ListRow,
    answer,
    count,
    fetch_page,
)
from store.models import ClientGroup
from store.models.enums import ClientStatus
from tui.background import failure_text
from tui.collector import collect_again
from tui.frames import PromptFrames
from tui.widgets.client_table import PAGE, ClientHeader, ClientTable
from tui.widgets.text_input import TextInput

COUNT_DELAY = 0.25
#: A search whose results take longer than this says "Searching…" meanwhile (saying it at
#: every keystroke cost a frame of its own, which the results then waited behind).
SEARCHING_DELAY = 0.1
#: Allocations between two young-generation collections the collector starts itself while
#: the list is shown (700 by default: several collections per keystroke). Only a safety
#: net: the list collects between frames (``collect_between_frames``).
GC_THRESHOLD = 100_000
#: Young objects that make a collection worth its time once a frame is painted (a
#: keystroke's search and repaint leave a few thousand).
YOUNG_BETWEEN_FRAMES = 4_000
YOUNG_DEFAULT = gc.get_threshold()[0]


def collect_between_frames() -> None:
    """Collect the young generation (and the middle one when it is due) right after a frame
    is painted, while the typist's next key is still on its way: a collection the collector
    starts by itself lands in the middle of a keystroke's search or repaint (3-6 ms for
    the 20,000 young objects it waited for)."""
    young, middle, _ = gc.get_count()
    if young >= YOUNG_BETWEEN_FRAMES:
        gc.collect(1 if middle >= gc.get_threshold()[1] else 0)


def clients_count(total: int) -> str:
    """The count as the status line says it: 1 client, 0 clients, 12,345 clients."""
    return f"{total:,} client" + ("" if total == 1 else "s")


class InfoLine(Widget):
    """One line of status; changing it repaints this line only (no layout pass)."""

    text: reactive[str] = reactive("")

    def render(self) -> Text:
        return Text(self.text, no_wrap=True, overflow="ellipsis")


class ClientListScreen(PromptFrames, Screen[None]):
    BINDINGS = [
        Binding("slash", "search", "Search", id="list.search"),
        Binding("n", "new_client", "New client", id="list.new"),
        Binding("s", "cycle_sort", "Sort", id="list.sort"),
        Binding("l", "app.email_log", "Email log", id="list.emaillog", show=False),
        Binding("m", "app.mass_mail", "Mass mail", id="list.massmail", show=False),
        Binding("f9", "app.settings", "Settings", id="list.settings", show=False),
        Binding("f10", "app.automation", "Automation", id="list.automation", show=False),
        Binding("f11", "app.reference", "Setup", id="list.reference", show=False),
        Binding("escape", "focus_table", "To list", show=False, id="list.escape"),
    ]

    class Results(Message):
        """The first page of a search, from the worker (shown before the count is known)."""

        def __init__(self, query: ListQuery, page: list[ListRow]) -> None:
            super().__init__()
            self.query = query
            self.page = page

    class Counted(Message):
        """How many clients the search matches (capped at SEARCH_CAP + 1)."""

        def __init__(self, query: ListQuery, total: int) -> None:
            super().__init__()
            self.query = query
            self.total = total

    def __init__(self) -> None:
        super().__init__()
        self.list_query = ListQuery()
        #: perf_counter() of the last search edit (read by bench/tui.py with
        #: ``repainted_at``: keystroke-to-repaint without the test harness).
        self.edited_at = 0.0
        #: Searches and counts run on one thread with one warm connection (``ListReader``).
        self.reader = ListReader()
        self._first_page: Future[list[ListRow]] | None = None
        #: The search whose read failed (said on the info line, not overwritten by "Searching…").
        self.failed_query: ListQuery | None = None
        self.collects_between_frames = False
        self.settled = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="list-bar"):
            yield TextInput(placeholder="/ search name, company, email, phone or id", id="search")
            yield Select(
                [(s.value, s.value) for s in ClientStatus], prompt="Any status", id="status"
            )
            yield Select(
                [(Text(g.name), g.id) for g in ClientGroup.select().order_by(ClientGroup.name)],
                prompt="Any group",
                id="group",
            )
        yield InfoLine(id="list-info")
        header = ClientHeader(id="list-header")
        yield header
        yield ClientTable(header=header, id="clients")
        yield Footer()

    def on_mount(self) -> None:
        # The plain list's first page is an index range scan (milliseconds even at a million
        # clients): read it here so the first frame already shows clients; count in a worker.
        first = fetch_page(self.list_query, 0, PAGE)
        self.table.set_query(self.list_query, len(first), first)
        self.table.focus()
        self.count_only(self.list_query)
        self.call_after_refresh(self._settle)

    def _settle(self) -> None:
        """Once the list is painted, move the app's long-lived objects out of the garbage
        collector's reach and let it run again (``collect_again``: full collections then
        scan only what typing creates, instead of pausing a keystroke's repaint for tens of
        milliseconds), collected between frames from now on. No ``gc.collect()`` first: a
        full collection of everything imported takes ~150 ms and held the first frame back
        (what little startup garbage is frozen with the rest stays). Then the reader warms
        the search's pages while nobody types."""
        collect_again()
        self.settled = True
        self._collect_between_frames(True)
        self.reader.warm()

    def _collect_between_frames(self, on: bool) -> None:
        """While the list is the screen shown, garbage is collected after frames and the
        collector's own threshold is only a safety net; other screens get the default."""
        self.collects_between_frames = on
        gc.set_threshold(GC_THRESHOLD if on else YOUNG_DEFAULT, *gc.get_threshold()[1:])

    def _on_timer_update(self) -> None:
        """A frame is painted (``PromptFrames``); once it shows the search's results (not
        while the reader is still searching), garbage is collected just after it."""
        super()._on_timer_update()
        if self.collects_between_frames and self.table.painted_query == self.list_query:
            asyncio.get_running_loop().call_soon(collect_between_frames)

    def on_unmount(self) -> None:
        self._collect_between_frames(False)
        self.reader.close()

    @work(exclusive=True, group="search", exit_on_error=False)
    async def count_only(self, query: ListQuery) -> None:
        self.post_message(self.Counted(query, await self.reader.ask(count, query)))

    @property
    def table(self) -> ClientTable:
        return self.query_one(ClientTable)

    @property
    def holds_keys(self) -> bool:
        """Keys for the table wait until it shows the results of the search typed before
        them (``KeysInOrder``): ``281`` Enter Enter typed in one go opens the first client of
        the results for ``281``, not of ``28``."""
        return self.table.has_focus and self.table.query_spec != self.list_query

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        self.edited_at = time.perf_counter()
        self.list_query = replace(self.list_query, search=event.value)
        self.refresh_results()

    @on(Input.Submitted, "#search")
    def search_submitted(self) -> None:
        self.table.focus()

    @on(Select.Changed, "#status")
    def status_changed(self, event: Select.Changed) -> None:
        value = None if event.value is Select.NULL else str(event.value)
        self.list_query = replace(self.list_query, status=value)
        self.refresh_results()

    @on(Select.Changed, "#group")
    def group_changed(self, event: Select.Changed) -> None:
        value = None if event.value is Select.NULL else int(str(event.value))
        self.list_query = replace(self.list_query, group_id=value)
        self.refresh_results()

    def refresh_results(self) -> None:
        # The read is queued now, before the frame that echoes the key is painted (the
        # reader searches while the loop paints; queued by the worker, it waited for that
        # frame, ~1 ms); the one queued by the key before is dropped if not started.
        if self._first_page is not None:
            self._first_page.cancel()
        self._first_page = self.reader.submit(fetch_page, self.list_query, 0, PAGE)
        self.load(self.list_query, self._first_page)
        self.set_timer(SEARCHING_DELAY, partial(self._searching, self.list_query))

    def _searching(self, query: ListQuery) -> None:
        if query == self.list_query and query not in (self.table.query_spec, self.failed_query):
            self.query_one(InfoLine).text = "Searching…"

    @work(exclusive=True, group="search", exit_on_error=False)
    async def load(self, query: ListQuery, first_page: Future[list[ListRow]]) -> None:
        """First page (queued on the list's reader thread by ``refresh_results``), then the
        count, read by the reader (never on the event loop); a newer search cancels this
        worker, and with it a read not started yet.

        An async worker awaiting the reader: a thread worker in between cost two more
        thread hops per keystroke, each waiting for the GIL while the loop painted."""
        self.post_message(self.Results(query, await answer(first_page)))
        # Count only once typing pauses: a count per keystroke would compete with the
        # next keystroke's page for the CPU.
        await asyncio.sleep(COUNT_DELAY)
        self.post_message(self.Counted(query, await self.reader.ask(count, query)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A search that failed (a damaged file, a term the database refused) is said on
        the info line; the list, the typed text and the app stay."""
        if event.state == WorkerState.ERROR and event.worker.group == "search":
            self.failed_query = self.list_query
            self.query_one(InfoLine).text = "Search failed: " + failure_text(
                event.worker.error or RuntimeError("unknown"), internal="nothing was changed"
            )

    def on_client_list_screen_results(self, message: Results) -> None:
        if message.query != self.list_query:
            return  # a stale answer to an older keystroke
        self.table.set_query(message.query, len(message.page), message.page)
        self.query_one(InfoLine).text = "counting…"
        self.paint_at_once()  # what the typist waits for: not behind the key's echo frame

    def on_client_list_screen_counted(self, message: Counted) -> None:
        if message.query != self.list_query:
            return
        self.table.set_total(message.total)
        capped = message.query.search.strip() and message.total > SEARCH_CAP
        shown = (
            f"{SEARCH_CAP:,}+ clients: refine the search"
            if capped
            else clients_count(message.total)
        )
        self.query_one(InfoLine).text = f"{shown} · sorted by {message.query.sort}"

    @property
    def repainted_at(self) -> float:
        """perf_counter() when the frame that drew the current search's rows was done; 0
        while they are not drawn yet."""
        table = self.table
        return table.painted_at if table.painted_query == self.list_query else 0.0

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_focus_table(self) -> None:
        self.table.focus()

    def action_cycle_sort(self) -> None:
        sort = SORTS[(SORTS.index(self.list_query.sort) + 1) % len(SORTS)]
        self.list_query = replace(self.list_query, sort=sort)
        self.refresh_results()

    def action_new_client(self) -> None:
        self.app.open_client(None)  # type: ignore[attr-defined]

    def on_client_table_opened(self, message: ClientTable.Opened) -> None:
        self.app.open_client(message.client_id)  # type: ignore[attr-defined]

    def on_screen_resume(self) -> None:
        if self.settled:  # back from the editor or another screen
            self._collect_between_frames(True)
        self.table.reload()

    def on_screen_suspend(self) -> None:
        self._collect_between_frames(False)
