"""Frames painted as soon as one is due, at most ``TEXTUAL_FPS`` a second."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.screen import UPDATE_PERIOD


class FrameClock:
    """Stands in for a screen's update timer: the next frame is painted at once when the
    last one is a frame period old, else when it is.

    Textual's timer (``set_interval`` with ``skip``) resumed after a pause of less than a
    frame period waits for the period *after* the next one: results that arrive 5 ms after
    the frame that echoed a keystroke were painted 8-17 ms after that frame instead of 3-8
    ms, a frame's worth of latency added to half the keystrokes of the client list.

    ``at_once()`` paints the next frame without waiting for its period: for what a user
    waits on (a search's results), which would otherwise wait behind a frame that painted
    something else just before (the echo of the key, the search box restyled as it stops
    being empty). It adds at most one frame per call.
    """

    def __init__(self, screen: Any) -> None:
        self._screen = screen
        self._last = float("-inf")
        self._due: asyncio.TimerHandle | None = None
        self._at_once = False

    def at_once(self) -> None:
        """Paint the next frame as soon as something is to paint, whatever the period."""
        self._at_once = True
        if self._due is not None:
            self.pause()
            self.resume()

    def resume(self) -> None:
        """Paint when a frame is due (now, or one period after the last frame)."""
        if self._due is None:
            loop = asyncio.get_running_loop()
            due = loop.time() if self._at_once else self._last + UPDATE_PERIOD
            self._due = loop.call_at(max(loop.time(), due), self._tick)

    def pause(self) -> None:
        """No frame is needed (called by the frame itself and by a layout that painted)."""
        if self._due is not None:
            self._due.cancel()
            self._due = None

    def stop(self) -> None:
        self.pause()

    def _tick(self) -> None:
        self._due = None
        self._at_once = False
        self._last = asyncio.get_running_loop().time()
        screen = self._screen
        if not screen.is_running:
            return
        try:
            screen._on_timer_update()
        except Exception as error:  # as Textual's timer reports a failing callback
            screen.app._handle_exception(error)


class PromptFrames:
    """Mixed into a ``Screen`` (before it): its frames come from a ``FrameClock``."""

    _frame_clock: FrameClock | None = None

    @property
    def _update_timer(self) -> Any:  # Screen's own timer (a Timer), replaced
        if self._frame_clock is None:
            self._frame_clock = FrameClock(self)
        return self._frame_clock

    def paint_at_once(self) -> None:
        """The next frame is painted as soon as there is something to paint."""
        self._update_timer.at_once()
