"""Keys handled in the order they were typed, each after the one before has done its work.

Textual routes a key in two steps at two different times: the app forwards it to the widget
focused *when the app reads it* (into that widget's message queue), and bindings (Tab,
Backspace, Enter, arrows, ``/``) run only when the key has bubbled back up to the app.
When keys arrive in a burst (a fast typist, a password manager, a paste of keystrokes over
SSH) the app forwards the whole burst before the first key has bubbled back, so:

- ``admin`` Tab ``secret`` Enter: the Tab moves focus only after ``secret`` was already
  typed into Username;
- Backspace x8 then ``dvorak1`` in a search box: the printable keys are inserted at once by
  the Input while the Backspaces wait for their binding, then delete what was just typed;
- a key that opens a screen (Enter on a row) or moves focus (``widget.focus()`` is itself
  deferred through the app's queue) is followed by keys routed to the old screen or widget.

``KeysInOrder`` (mixed into the App before ``App``) takes every key (and paste) the driver
delivers into a backlog and releases them one at a time: the next key is released only
when the previous one has finished its journey (stopped by a widget, or bubbled to the app
and its bindings run), the focus and screen changes it caused have been applied, a screen
it pushed has mounted and focused its first field, and the current screen does not hold
keys (``holds_keys``: a screen waiting for an answer the next keys depend on, such as a
login being checked or search results not yet shown). Nothing is ever dropped: waits are
capped, after which keys flow as Textual would deliver them.

Keys typed before the app has put the terminal in raw mode (``gobiller`` then the login
typed at once) pass through the terminal's line mode, which turns Enter into a newline
(ctrl+j): it is released as Enter, as readline treats ctrl+j.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from textual import events, messages
from textual.app import App
from textual.message import Message
from textual.message_pump import MessagePump, active_message_pump

if TYPE_CHECKING:
    from textual.screen import Screen

#: Longest wait for one key's own handling (its handlers normally take microseconds).
JOURNEY_CAP = 2.0
#: Longest wait for the app to settle (queued focus changes, messages the key caused).
SETTLE_CAP = 1.0
#: Longest wait for a pushed screen to mount, or for a screen that holds keys.
SCREEN_CAP = 15.0


class _Journey:
    """Where one released key is, and whether its handling has finished."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.event: Message | None = None
        self.finished = asyncio.Event()
        self.app_visits = 0
        self.watched: list[MessagePump] = []

    def at_app(self, message: Message) -> None:
        """The app dispatched a message: the first visit of the key forwards it to a widget
        (or a priority binding takes it); the second is its bubbling back, bindings run."""
        if message is not self.event:
            return
        self.app_visits += 1
        if self.app_visits > 1 or not message.is_forwarded:
            self.finished.set()

    def at_pump(self, message: Message) -> None:
        if message is self.event:
            self.finished.set()

    def watch(self, pump: MessagePump) -> None:
        """Finish when ``pump`` has dispatched the key (called while it dispatches it)."""
        if pump in self.watched or not self.app.is_running:
            return
        self.watched.append(pump)
        try:
            pump.message_signal.subscribe(self.app, self.at_pump, immediate=True)
        except Exception:  # a pump that is closing: its dispatch ends without us
            self.finished.set()

    def close(self) -> None:
        for pump in self.watched:
            pump.message_signal.unsubscribe(self.app)
        self.watched.clear()


def _stopped(event: Message, journey: _Journey | None) -> None:
    """A handler stopped ``event``: its journey ends when the pump handling it is done."""
    pump = active_message_pump.get(None)
    if journey is not None and pump is not None and pump is not journey.app:
        journey.watch(pump)


class ReleasedKey(events.Key):
    """A key the backlog released; handled exactly as Textual's own ``Key``."""

    __slots__ = ("journey",)

    def __init__(self, original: events.Key, journey: _Journey) -> None:
        if original.key == "ctrl+j":  # Enter, as the terminal's line mode delivers it
            super().__init__("enter", "\r")
        else:
            super().__init__(original.key, original.character)
        self.time = original.time
        self.journey = journey

    def stop(self, stop: bool = True) -> ReleasedKey:
        super().stop(stop)
        if stop:
            _stopped(self, self.journey)
        return self


class ReleasedPaste(events.Paste):
    """A paste the backlog released; handled exactly as Textual's own ``Paste``."""

    def __init__(self, original: events.Paste, journey: _Journey) -> None:
        super().__init__(original.text)
        self.time = original.time
        self.journey = journey

    def stop(self, stop: bool = True) -> ReleasedPaste:
        super().stop(stop)
        if stop:
            _stopped(self, self.journey)
        return self


# The handlers Textual looks up are named after the class: keep Textual's names.
ReleasedKey.handler_name = events.Key.handler_name
ReleasedPaste.handler_name = events.Paste.handler_name


#: Painting and layout bookkeeping: never moves the focus, so keys need not wait for it.
_PAINTING = (messages.Update, messages.Layout, messages.UpdateScroll, messages.Prompt)


def _waiting(node: MessagePump, events_too: bool) -> bool:
    """Does ``node`` have a queued message that could move the focus or change the screen?"""
    queued: deque[Message | None] = node._message_queue.values
    return any(
        not isinstance(m, _PAINTING) and (events_too or not isinstance(m, events.Event))
        for m in queued
    )


def _settled(app: App[Any]) -> bool:
    """Nothing is waiting that could move the focus or change the screen: in the app's own
    queue (``focus()`` and screen changes go through it), the screen's (its resume and
    auto focus), and widget messages on their way from the focused widget up to the
    screen (a Submitted bubbling up to a handler that moves the focus). Painting, and
    other widgets' queues (a footer, a cursor blinking), are not waited for."""
    if _waiting(app, events_too=True):
        return False
    try:
        screen = app.screen
    except Exception:
        return True
    if _waiting(screen, events_too=True):
        return False
    focused = screen.focused
    if focused is None:
        return True
    for node in focused.ancestors_with_self:
        if node is screen:
            break
        if _waiting(node, events_too=False):
            return False
    return True


class KeysInOrder(App[Any]):
    """App mixin: keys and pastes are handled strictly one after another (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key_backlog: deque[events.Key | events.Paste] = deque()
        self._key_releaser: asyncio.Task[None] | None = None
        self._keys_screen: Screen[Any] | None = None

    async def on_event(self, event: events.Event) -> None:
        if (
            isinstance(event, events.Key | events.Paste)
            and not event.is_forwarded
            and not isinstance(event, ReleasedKey | ReleasedPaste)
        ):
            self._key_backlog.append(event)
            if self._key_releaser is None or self._key_releaser.done():
                self._key_releaser = asyncio.create_task(self._release_keys())
            return
        await super().on_event(event)

    @property
    def keys_pending(self) -> int:
        """Keys typed and not yet handled (tests wait for 0)."""
        return len(self._key_backlog) + (
            0 if self._key_releaser is None or self._key_releaser.done() else 1
        )

    async def _release_keys(self) -> None:
        while self._key_backlog and not self._closing:
            try:
                await self._ready_for_key()
            except Exception as error:  # never strand the keys: deliver them unordered
                self.log.error("keys in order:", error)
            original = self._key_backlog.popleft()
            journey = _Journey(self)
            released: events.Key | events.Paste = (
                ReleasedKey(original, journey)
                if isinstance(original, events.Key)
                else ReleasedPaste(original, journey)
            )

            journey.event = released
            self.message_signal.subscribe(self, journey.at_app, immediate=True)
            try:
                self.post_message(released)
                with suppress(TimeoutError):
                    await asyncio.wait_for(journey.finished.wait(), JOURNEY_CAP)
            finally:
                self.message_signal.unsubscribe(self)
                journey.close()

    async def _ready_for_key(self) -> None:
        """Wait until what the previous key caused has happened (see the module)."""
        deadline = time.monotonic() + SCREEN_CAP
        while not self._closing:
            await self._settle()
            try:
                screen = self.screen
            except Exception:
                return
            if time.monotonic() > deadline:
                return
            if not screen.is_mounted:
                with suppress(TimeoutError):
                    await asyncio.wait_for(
                        screen._mounted_event.wait(), max(0.0, deadline - time.monotonic())
                    )
                continue
            if screen is not self._keys_screen:
                # A new or resumed screen: settle again, so that it has handled its
                # ScreenResume (auto focus) and the focus() calls of its on_mount.
                self._keys_screen = screen
                continue
            if getattr(screen, "holds_keys", False):
                await asyncio.sleep(0.002)
                continue
            return

    async def _settle(self) -> None:
        deadline = time.monotonic() + SETTLE_CAP
        await asyncio.sleep(0)
        while not _settled(self) and time.monotonic() < deadline:
            await asyncio.sleep(0)
