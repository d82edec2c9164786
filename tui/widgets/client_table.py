"""A virtual client list: a ScrollView that reads only the rows it paints.

Rows come in pages of ``PAGE`` from ``store.client_list`` and are kept in a small
LRU cache (like toolong's log lines), so a million clients cost what one screen
costs. User text is drawn as plain segments: a name like ``[bold]`` shows as is.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from store.client_list import ListQuery, ListRow, fetch_page
from tui.terminal_text import visible_controls

PAGE = 200
CACHE_PAGES = 16

STATUS_STYLES = {
    "Active": Style(color="green", bold=True),
    "Inactive": Style(color="yellow"),
    "Closed": Style(color="red", dim=True),
}


@dataclass(frozen=True)
class Column:
    title: str
    width: int


COLUMNS = (
    Column("ID", 8),
    Column("Name", 28),
    Column("Company", 22),
    Column("Email", 32),
    Column("Status", 9),
    Column("Group", 14),
)


ROW_WIDTH = sum(c.width for c in COLUMNS)


def _cell(text: str, width: int) -> str:
    """Fit text to exactly ``width`` cells (wide CJK characters count twice); control
    characters are shown as symbols (``ControlPictures``) and measured as such."""
    text = visible_controls(text.replace("\n", " "))
    if cell_len(text) > width - 1:
        return set_cell_size(text, width - 2) + "… "
    return set_cell_size(text, width)


def header_text() -> Text:
    return Text("".join(_cell(c.title, c.width) for c in COLUMNS), style="bold underline")


class ClientTable(ScrollView, can_focus=True):
    """The list body; the header is a separate widget above it."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False, id="list.up"),
        Binding("down", "cursor(1)", "Down", show=False, id="list.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="list.pageup"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="list.pagedown"),
        Binding("home", "jump(0)", "First", show=False, id="list.home"),
        Binding("end", "jump(-1)", "Last", show=False, id="list.end"),
        Binding("enter", "open", "Open", id="list.open"),
    ]
    DEFAULT_CSS = """
    ClientTable { height: 1fr; overflow-y: scroll; }
    """

    cursor: reactive[int] = reactive(0)

    class Opened(Message):
        def __init__(self, client_id: int) -> None:
            super().__init__()
            self.client_id = client_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.query_spec = ListQuery()
        self.total = 0
        self._pages: OrderedDict[int, list[ListRow]] = OrderedDict()
        self.pages_read = 0

    # -- data

    def set_query(self, query: ListQuery, total: int, first_page: list[ListRow] | None) -> None:
        """Show a new result set; ``first_page`` was fetched by the caller's worker."""
        self.query_spec = query
        self.total = total
        self._pages.clear()
        if first_page is not None:
            self._pages[0] = first_page
        self.cursor = 0
        if self.scroll_offset.y:
            self.scroll_to(y=0, animate=False)
        self._resize(total)
        self.refresh()

    def _resize(self, total: int) -> None:
        """A new row count without a layout pass of the screen (a search's results differ
        in length at every keystroke): only the scrollbar, always shown, is updated."""
        size = Size(ROW_WIDTH, total)
        if size != self.virtual_size:
            self.set_reactive(ClientTable.virtual_size, size)
            self._scroll_update(size)
            self.refresh()

    def set_total(self, total: int) -> None:
        """The count arrived after the first page: extend the scroll range, keep the cursor."""
        self.total = total
        self._resize(total)
        self.refresh()

    def reload(self) -> None:
        """Drop cached pages (after an edit) and repaint."""
        self._pages.clear()
        self.refresh()

    def row(self, index: int) -> ListRow | None:
        if not 0 <= index < self.total:
            return None
        page_no = index // PAGE
        page = self._pages.get(page_no)
        if page is None:
            page = fetch_page(self.query_spec, page_no * PAGE, PAGE)
            self.pages_read += 1
            self._pages[page_no] = page
            while len(self._pages) > CACHE_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page_no)
        offset = index - page_no * PAGE
        return page[offset] if offset < len(page) else None

    @property
    def current(self) -> ListRow | None:
        return self.row(self.cursor)

    # -- painting

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        row = self.row(index)
        width = self.size.width
        if row is None:
            return Strip.blank(width)
        selected = index == self.cursor
        base = (
            Style(reverse=True)
            if selected and self.has_focus
            else (Style(bgcolor="grey23") if selected else Style())
        )
        name = f"{row.first_name} {row.last_name}"
        group_style = Style(color=row.group_colour) if row.group_colour else Style()
        cells = (
            (str(row.id), Style(dim=True)),
            (name, Style()),
            (row.company, Style()),
            (row.email, Style()),
            (row.status, STATUS_STYLES.get(row.status, Style())),
            (row.group_name, group_style),
        )
        segments = [
            Segment(_cell(text, column.width), base + style)
            for (text, style), column in zip(cells, COLUMNS, strict=True)
        ]
        x = self.scroll_offset.x
        if x == 0 and width >= ROW_WIDTH:  # the usual case: one strip, not three
            segments.append(Segment(" " * (width - ROW_WIDTH), base))
            return Strip(segments, width)
        return Strip(segments, ROW_WIDTH).crop(x, x + width).extend_cell_length(width, base)

    # -- keys

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_lines(old - self.scroll_offset.y)
        self.refresh_lines(new - self.scroll_offset.y)
        self.scroll_to_region(Region(0, new, 1, 1), animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        if self.total:
            self.cursor = max(0, min(self.total - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 1))

    def action_jump(self, where: int) -> None:
        if self.total:
            self.cursor = self.total - 1 if where < 0 else 0

    def action_open(self) -> None:
        row = self.current
        if row is not None:
            self.post_message(self.Opened(row.id))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
