"""What a keystroke costs the screen: no layout pass for a text box, frames not held back."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.screen import UPDATE_PERIOD
from textual.widgets import Footer, Input, Label, Select

from tui.frames import FrameClock
from tui.widgets.text_input import TextInput

TUI = Path(__file__).resolve().parents[2] / "tui"


class Form(App[None]):
    def __init__(self, box: type[Input]) -> None:
        super().__init__()
        self.box = box

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield self.box(id="box")
            yield Select([("a", 1)])
        yield Label("status")
        yield Footer()


async def test_typing_in_a_text_box_lays_out_nothing_and_still_scrolls_it() -> None:
    """Each character typed into Textual's ``Input`` arranged the whole screen again (its
    text width is a layout-affecting size); a ``TextInput`` repaints the box only, and
    still scrolls sideways to keep the cursor in view, as ``Input`` does."""
    app = Form(TextInput)
    async with app.run_test(size=(60, 10)) as pilot:
        box = app.query_one("#box", Input)
        box.focus()
        await pilot.pause()
        layouts = 0
        real = app.screen._refresh_layout

        def counted(*args: Any, **kwargs: Any) -> None:
            nonlocal layouts
            layouts += 1
            real(*args, **kwargs)

        app.screen._refresh_layout = counted  # type: ignore[method-assign]
        await pilot.press(*"typed at speed")
        await pilot.pause()
        assert box.value == "typed at speed"
        assert layouts == 0
        await pilot.press(*"x" * 60)
        await pilot.pause()
        assert box.scroll_x > 0
        cursor_x = box.cursor_screen_offset.x
        assert box.region.x <= cursor_x < box.region.right


def test_every_text_box_of_the_app_is_a_text_input() -> None:
    """The kind, everywhere: no screen builds a bare ``Input`` (each would lay the screen
    out again at every keystroke)."""
    bare = re.compile(r"(?<![\w.])Input\(")
    found = [
        f"{path.relative_to(TUI)}:{n}"
        for path in sorted(TUI.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if bare.search(line)
    ]
    assert found == []


class Painter:
    """Stands for a screen: records the loop time of each frame it is asked to paint."""

    is_running = True

    def __init__(self) -> None:
        self.frames: list[float] = []

    def _on_timer_update(self) -> None:
        self.frames.append(asyncio.get_running_loop().time())


async def _frames(painter: Painter, n: int) -> None:
    for _ in range(10_000):
        if len(painter.frames) >= n:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{n} frames were never painted")


async def test_a_frame_waits_at_most_one_period_and_results_not_at_all() -> None:
    """Textual's screen timer, resumed within a period of its last frame, painted one
    period *after* the next one (up to 17 ms at 120 fps): the next frame is due one period
    after the last, at once after an idle spell, and at once for what ``at_once`` asks
    (a search's results, not held behind the key's echo frame). Times are the loop's
    schedule, not a stopwatch."""
    loop = asyncio.get_running_loop()
    painter = Painter()
    clock = FrameClock(painter)
    clock.resume()
    assert clock._due is not None and clock._due.when() <= loop.time()
    await _frames(painter, 1)
    clock.resume()
    assert clock._due is not None
    assert 0 < clock._due.when() - painter.frames[0] <= UPDATE_PERIOD
    clock.resume()  # asked twice: one frame
    clock.at_once()
    assert clock._due is not None and clock._due.when() <= loop.time()
    await _frames(painter, 2)
    clock.resume()
    clock.pause()  # a layout painted meanwhile: no frame
    assert clock._due is None
    await asyncio.sleep(2 * UPDATE_PERIOD)
    assert len(painter.frames) == 2
    clock.resume()  # long after the last frame: at once
    assert clock._due is not None and clock._due.when() <= loop.time()
