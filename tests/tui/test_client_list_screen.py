"""The client list at the least terminal staff get (80x24): every column, plain words."""

from __future__ import annotations

import gc
from typing import Any

from textual.pilot import Pilot

from rules.audit import SYSTEM_CLI, Actor
from rules.clients.profile import create_client
from store.models import ClientGroup, Currency
from store.models.enums import ActorType, Source
from tui.app import StaffApp
from tui.screens.client_list import ClientListScreen, InfoLine
from tui.widgets.client_table import ClientHeader, ClientTable

ADMIN = Actor(ActorType.STAFF, "admin", Source.TUI, 1, "admin")


async def _quiet(pilot: Pilot[None]) -> None:
    await pilot.pause()
    while any(w.is_running for w in pilot.app.workers):
        await pilot.pause(0.01)
    await pilot.pause()


def _client(first: str, last: str, email: str, group: str | None = None) -> None:
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    values = {
        "first_name": first,
        "last_name": last,
        "email": email,
        "currency_id": usd.id,
        "company": "Extremely Long Company Name Hosting Limited",
    }
    if group:
        values["group_id"] = ClientGroup.create(name=group).id
    create_client(values, SYSTEM_CLI)


async def test_every_column_shows_in_an_80_column_terminal(admin: str) -> None:
    """Name, company and email give up width (ellipsized), Status and Group stay on
    screen; the titles line up with the cells."""
    _client(
        "Maximilian-Alexander",
        "Vandenberghe-Oppenheimer",
        "maximilian.alexander.vandenberghe@example.com",
        group="Resellers",
    )
    for width in (80, 100, 140):
        app = StaffApp(lock_minutes=15, actor=ADMIN)
        async with app.run_test(size=(width, 24)) as pilot:
            await _quiet(pilot)
            table = app.screen.query_one(ClientTable)
            header = app.screen.query_one(ClientHeader)
            row = table.render_line(0).text
            titles = header.render().plain
            assert table.row_width <= table.size.width, width
            for title in ("ID", "Name", "Company", "Email", "Status", "Group"):
                assert title in titles, (width, titles)
            assert "Active" in row and "Resellers" in row, (width, row)
            assert row.index("Active") == titles.index("Status"), (width, row, titles)
            assert row.index("Resellers") == titles.index("Group"), (width, row, titles)
            if width == 80:
                assert "…" in row  # the long name, company and email are cut, visibly


async def test_the_count_says_1_client_not_1_clients(admin: str) -> None:
    _client("Ann", "Lee", "ann@example.com")
    app = StaffApp(lock_minutes=15, actor=ADMIN)
    async with app.run_test(size=(80, 24)) as pilot:
        await _quiet(pilot)
        await pilot.pause(0.3)
        await _quiet(pilot)
        assert app.screen.query_one(InfoLine).text.startswith("1 client · ")
        _client("Bob", "Lee", "bob@example.com")
        await pilot.press("slash", *"lee")
        await pilot.pause(0.5)
        await _quiet(pilot)
        assert app.screen.query_one(InfoLine).text.startswith("2 clients · ")


async def _drawn(pilot: Pilot[None], search: str) -> str:
    """What the terminal shows once the frame that drew ``search``'s rows is done, before
    its count arrives (the count repaints the whole list ``COUNT_DELAY`` later)."""
    table = pilot.app.screen.query_one(ClientTable)
    for _ in range(2000):
        drawn = table.painted_query
        if drawn is not None and drawn.search == search and table.painted_at:
            break
        await pilot.pause(0.002)
    else:
        raise AssertionError(f"the rows of {search!r} were never drawn")
    update = pilot.app.screen._compositor.render_update(full=True)
    return "\n".join("".join(strip.text for strip in line) for line in update.strips)


async def test_each_search_shows_exactly_its_rows_when_only_some_lines_change(admin: str) -> None:
    """A keystroke repaints only the lines whose row changed: what the terminal shows
    (the compositor's lines, cached or not) is each search's rows, none left over from the
    search before, and rows shared with the search before stay shown."""
    for first, last in (("Ann", "Able"), ("Bob", "Baker"), ("Cid", "Cole"), ("Dee", "Dale")):
        _client(first, last, f"{first.lower()}@example.com")
    names = ("Able", "Baker", "Cole", "Dale")
    app = StaffApp(lock_minutes=15, actor=ADMIN)
    async with app.run_test(size=(100, 24)) as pilot:
        await _quiet(pilot)
        await pilot.press("slash")
        await pilot.pause(0.3)  # the count's repaint is done
        await _quiet(pilot)
        await pilot.press("a")  # Ann Able: the first line is the same
        shown = await _drawn(pilot, "a")
        assert [name in shown for name in names] == [True, False, False, False], shown
        await pilot.press("backspace", "c")  # Cid Cole: the first line changes
        shown = await _drawn(pilot, "c")
        assert [name in shown for name in names] == [False, False, True, False], shown
        await pilot.press("backspace")  # every row again
        shown = await _drawn(pilot, "")
        assert all(name in shown for name in names), shown


async def test_garbage_is_collected_between_frames_never_while_a_search_is_awaited(
    admin: str,
) -> None:
    """While the list is shown, the collector does not stop a keystroke's search or repaint
    (a young collection the collector started by itself took 3-20 ms in the bench, inside
    a keystroke): garbage is collected once the frame showing the results is painted. Other
    screens get the collector's default back."""
    for n in range(30):
        _client(f"Ann{n}", f"Lee{n}", f"ann{n}@example.com")
    app = StaffApp(lock_minutes=15, actor=ADMIN)
    async with app.run_test(size=(100, 24)) as pilot:
        await _quiet(pilot)
        screen = app.screen
        assert isinstance(screen, ClientListScreen)
        during_search: list[str] = []
        collections = 0

        def seen(phase: str, info: dict[str, Any]) -> None:
            nonlocal collections
            if phase == "start":
                collections += 1
                if screen.table.painted_query != screen.list_query:
                    during_search.append(screen.list_query.search)

        gc.callbacks.append(seen)
        try:
            await pilot.press("slash")
            for _ in range(8):
                await pilot.press(*"lee1", "backspace", "backspace", "backspace", "backspace")
                await _quiet(pilot)
        finally:
            gc.callbacks.remove(seen)
        assert collections > 0
        assert during_search == []
        await pilot.press("escape", "n")  # the editor: the collector's own pace again
        await _quiet(pilot)
        assert gc.get_threshold()[0] == 700


async def test_no_garbage_is_collected_before_the_first_screen_is_painted(admin: str) -> None:
    """Start-up collected garbage at the collector's own pace: a full collection of all
    that was imported (25-50 ms) and middle-generation ones landed before the list's first
    frame. None runs now until the first screen is painted; then the collector is on."""
    before_painted: list[int] = []
    app = StaffApp(lock_minutes=15, actor=ADMIN)

    def seen(phase: str, info: dict[str, Any]) -> None:
        screen = app.screen if app.is_running and app.screen_stack else None
        painted = isinstance(screen, ClientListScreen) and screen.settled
        if phase == "start" and not painted:
            before_painted.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        async with app.run_test(size=(100, 24)) as pilot:
            await _quiet(pilot)
            assert isinstance(app.screen, ClientListScreen) and app.screen.settled
            assert gc.isenabled()
    finally:
        gc.callbacks.remove(seen)
    assert before_painted == []


async def test_the_first_screen_is_rendered_once_in_a_frame_that_is_shown(
    admin: str, monkeypatch: Any
) -> None:
    """The list pushed while the app mounted was laid out and rendered inside Textual's
    start-up batch, a frame never written to the terminal, then rendered all again."""
    from textual.screen import Screen

    unseen: list[str] = []
    real = Screen._compositor_refresh

    def refresh(screen: Screen[Any]) -> None:
        if screen.app._batch_count:
            unseen.append(type(screen).__name__)
        real(screen)

    monkeypatch.setattr(Screen, "_compositor_refresh", refresh)
    app = StaffApp(lock_minutes=15, actor=ADMIN)
    async with app.run_test(size=(100, 24)) as pilot:
        await _quiet(pilot)
        assert isinstance(app.screen, ClientListScreen)
    assert "ClientListScreen" not in unseen


async def test_the_list_draws_its_lines_as_textuals_styles_cache_would(admin: str) -> None:
    """The table hands its rows' lines to the compositor itself (``_plain_lines``),
    without Textual's per-line styles pass; what it returns is segment for segment what
    that pass returns, for any crop, with and without focus, and with a control character
    in the data (the line filters still apply). A table with a border takes Textual's way."""
    from textual.geometry import Region
    from textual.widget import Widget

    from store.db import database, writer

    _client("Ann", "Able", "ann@example.com", group="Resellers")
    _client("Bob", "Baker", "bob@example.com")
    with writer():  # around the validators, as tests/tui/test_terminal_escapes.py does
        database.execute_sql(
            f"UPDATE client SET first_name = {database.param} WHERE first_name = 'Ann'",
            ("Ann\x1b]2;x\x07",),
        )
    app = StaffApp(lock_minutes=15, actor=ADMIN)
    async with app.run_test(size=(100, 24)) as pilot:
        await _quiet(pilot)
        table = app.screen.query_one(ClientTable)
        width = table.region.width
        for focused in (True, False):
            (table if focused else app.screen.query_one("#search")).focus()
            await _quiet(pilot)
            assert table._plain_box()
            for crop in (Region(0, 0, width, 4), Region(0, 1, width, 2), Region(7, 0, 30, 3)):
                ours = table.render_lines(crop)
                table._styles_cache.clear()
                textuals = Widget.render_lines(table, crop)
                assert [(list(s), s.cell_length) for s in ours] == [
                    (list(s), s.cell_length) for s in textuals
                ], (focused, crop)
                assert "\x1b" not in "".join(s.text for s in ours)
        table.styles.border = ("solid", "red")
        assert not table._plain_box()


async def test_a_search_that_fails_is_said_and_the_app_stays(admin: str, monkeypatch: Any) -> None:
    """Whatever makes a search fail (here a damaged file; before, a "²" typed as an id),
    the info line says so and the list, the typed text and the app stay."""
    from peewee import OperationalError

    import tui.screens.client_list as screen_module

    real = screen_module.fetch_page

    def failing(query: Any, offset: int, limit: int) -> Any:
        if "boom" in query.search:
            raise OperationalError("database disk image is malformed")
        return real(query, offset, limit)

    monkeypatch.setattr(screen_module, "fetch_page", failing)
    _client("Ann", "Lee", "ann@example.com")
    app = StaffApp(lock_minutes=15, actor=ADMIN)
    async with app.run_test(size=(80, 24)) as pilot:
        await _quiet(pilot)
        await pilot.press("slash", *"boom")
        await pilot.pause(0.5)
        await _quiet(pilot)
        assert app.is_running
        info = app.screen.query_one(InfoLine).text
        assert info.startswith("Search failed: ") and "malformed" in info, info
        await pilot.press(*["backspace"] * 4, "l", "e", "e")
        await pilot.pause(0.5)
        await _quiet(pilot)
        assert app.screen.query_one(InfoLine).text.startswith("1 client · ")
