"""A virtual client list: a ScrollView that reads only the rows it paints.

Rows come in pages of ``PAGE`` from ``store.client_list`` and are kept in a small
LRU cache (like toolong's log lines), so a million clients cost what one screen
costs. User text is drawn as plain segments: a name like ``[bold]`` shows as is.
"""

from __future__ import annotations

import asyncio
import time
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
from textual.widget import Widget

from store.client_list import PAGE, ListQuery, ListRow, fetch_page
from tui.terminal_text import visible_controls

CACHE_PAGES = 16
#: Rendered rows kept (a few screens' worth).
STRIP_CACHE = 512

STATUS_STYLES = {
    "Active": Style(color="green", bold=True),
    "Inactive": Style(color="yellow"),
    "Closed": Style(color="red", dim=True),
}


@dataclass(frozen=True)
class Column:
    title: str
    width: int
    #: The narrowest it gets when the terminal is narrow (``width`` when it never shrinks).
    least: int


COLUMNS = (
    Column("ID", 8, 8),
    Column("Name", 28, 12),
    Column("Company", 22, 8),
    Column("Email", 32, 12),
    Column("Status", 9, 9),
    Column("Group", 14, 10),
)

ROW_WIDTH = sum(c.width for c in COLUMNS)


def fit_columns(width: int) -> tuple[int, ...]:
    """Column widths for a list ``width`` cells wide: the full widths when they fit; in a
    narrower terminal (80x24 is the least staff get) name, company, email and group give
    up cells in proportion to their slack, down to their ``least``, so every column stays
    on screen (ellipsized) rather than Status and Group scrolling off to the right. Below
    the sum of the least widths the row is cropped."""
    widths = [c.width for c in COLUMNS]
    excess = ROW_WIDTH - width
    slack = [c.width - c.least for c in COLUMNS]
    total = sum(slack)
    if excess <= 0 or total == 0:
        return tuple(widths)
    take = min(excess, total)
    cuts = [take * s // total for s in slack]
    for i in sorted(range(len(COLUMNS)), key=lambda i: -slack[i]):  # the rounding left over
        if sum(cuts) == take:
            break
        if cuts[i] < slack[i]:
            cuts[i] += 1
    return tuple(w - c for w, c in zip(widths, cuts, strict=True))


def _cell(text: str, width: int) -> str:
    """Fit text to exactly ``width`` cells (wide CJK characters count twice); control
    characters are shown as symbols (``ControlPictures``) and measured as such."""
    if text.isascii() and text.isprintable():  # most cells: one character, one cell
        return text[: width - 2] + "… " if len(text) > width - 1 else text.ljust(width)
    text = visible_controls(text.replace("\n", " "))
    if cell_len(text) > width - 1:
        return set_cell_size(text, width - 2) + "… "
    return set_cell_size(text, width)


def header_text(widths: tuple[int, ...]) -> Text:
    return Text(
        "".join(_cell(c.title, w) for c, w in zip(COLUMNS, widths, strict=True)),
        style="bold underline",
        no_wrap=True,
        overflow="crop",
    )


class ClientHeader(Widget):
    """The column titles above a ``ClientTable``, at the widths the table fitted."""

    DEFAULT_CSS = """
    ClientHeader { height: 1; }
    """

    widths: reactive[tuple[int, ...]] = reactive(tuple(c.width for c in COLUMNS))

    def render(self) -> Text:
        return header_text(self.widths)


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

    def __init__(self, *, header: ClientHeader | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.header = header
        self.widths = tuple(c.width for c in COLUMNS)
        self.row_width = ROW_WIDTH
        self.query_spec = ListQuery()
        self.total = 0
        self._pages: OrderedDict[int, list[ListRow]] = OrderedDict()
        self._strips: dict[tuple[object, ...], Strip] = {}
        self.pages_read = 0
        #: The query whose rows a frame last drew, and perf_counter() when that frame was
        #: done (read by bench/tui.py: keystroke-to-repaint).
        self.painted_query: ListQuery | None = None
        self.painted_at = 0.0

    # -- data

    def set_query(self, query: ListQuery, total: int, first_page: list[ListRow] | None) -> None:
        """Show a new result set; ``first_page`` was fetched by the caller's worker.

        Only the lines whose row differs are repainted: consecutive keystrokes often show
        the same first rows ("dang", "dange"), and a line costs Textual's compositor about
        as much as it costs us to draw."""
        before = self._shown()
        self.query_spec = query
        self.total = total
        self._pages.clear()
        if first_page is not None:
            self._pages[0] = first_page
        self.cursor = 0
        if self.scroll_offset.y:
            self.scroll_to(y=0, animate=False)
        self._resize(total)
        after = self._shown()
        if before is None or after is None:
            self.refresh()
            return
        changed = [y for y, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
        for y in changed:
            self.refresh_lines(y)
        if not changed:  # what is on screen already shows these results
            self.painted_query = query
            asyncio.get_running_loop().call_soon(self._frame_done, query)

    def _shown(self) -> list[ListRow | None] | None:
        """The rows on screen, from the cached first page (None when that is not known
        without a read: scrolled down, or the page is not cached)."""
        page = self._pages.get(0)
        if page is None or self.scroll_offset.y:
            return None
        shown = min(len(page), self.total)
        return [page[y] if y < shown else None for y in range(self.size.height)]

    def _resize(self, total: int) -> None:
        """A new row count without a layout pass of the screen (a search's results differ
        in length at every keystroke): only the scrollbar, always shown, is updated; the
        caller repaints the lines that changed."""
        size = Size(self.row_width, total)
        if size != self.virtual_size:
            self.set_reactive(ClientTable.virtual_size, size)
            self._scroll_update(size)

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

    def on_resize(self) -> None:
        """Fit the columns to the width (``fit_columns``) and tell the header."""
        widths = fit_columns(self.size.width)
        if widths != self.widths:
            self.widths = widths
            self.row_width = sum(widths)
            self._resize(self.total)
            self.refresh()
        if self.header is not None:
            self.header.widths = widths

    def render_lines(self, crop: Region) -> list[Strip]:
        lines = self._plain_lines(crop) if self._plain_box() else super().render_lines(crop)
        if self.painted_query != self.query_spec:
            self.painted_query = self.query_spec
            # Once the frame drawing these rows is written out (it runs without yielding).
            asyncio.get_running_loop().call_soon(self._frame_done, self.query_spec)
        return lines

    def _plain_box(self) -> bool:
        """No border, padding, outline, tint, hatch or opacity: what Textual's styles cache
        does to each line (``_styles_cache.render_line``) leaves our lines as they are."""
        styles = self.styles
        return (
            styles.gutter == (0, 0, 0, 0)
            and not any(edge for edge, _ in styles.outline)
            and not styles.tint.a
            and self.opacity == 1.0
            and styles.text_opacity == 1.0
            and not styles.has_rule("hatch")
        )

    def _plain_lines(self, crop: Region) -> list[Strip]:
        """The lines Textual's styles cache would return for a plain box (``_plain_box``),
        without its per-line pass (~40 us a line, a fifth of a keystroke's repaint) and
        with the rows' strips themselves, so the line filters' results cached on a strip
        are reused whenever the row is drawn again."""
        _, background = self.background_colors
        filters = self.get_line_filters()
        lines = []
        for y in crop.line_range:
            strip = self.render_line(y)
            for line_filter in filters:
                strip = strip.apply_filter(line_filter, background)
            lines.append(strip)
        if crop.column_span != (0, self.region.width):
            x1, x2 = crop.column_span
            lines = [line.crop(x1, x2) for line in lines]
        return lines

    def _frame_done(self, query: ListQuery) -> None:
        if self.painted_query == query:
            self.painted_at = time.perf_counter()

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        row = self.row(index)
        width = self.size.width
        if row is None:
            return Strip.blank(width)
        selected = index == self.cursor
        # A keystroke's results share most rows with the previous one's, and a cursor move
        # changes two lines: strips already drawn are reused, not drawn again.
        key = (
            row,
            selected and (2 if self.has_focus else 1),
            width,
            self.widths,
            self.scroll_offset.x,
        )
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._draw(row, selected, width)
            if len(self._strips) > STRIP_CACHE:
                self._strips.pop(next(iter(self._strips)))
        return strip

    def _draw(self, row: ListRow, selected: bool, width: int) -> Strip:
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
            Segment(_cell(text, column_width), base + style)
            for (text, style), column_width in zip(cells, self.widths, strict=True)
        ]
        x = self.scroll_offset.x
        row_width = self.row_width
        if x == 0 and width >= row_width:  # the usual case: one strip, not three
            segments.append(Segment(" " * (width - row_width), base))
            return Strip(segments, width)
        return Strip(segments, row_width).crop(x, x + width).extend_cell_length(width, base)

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
