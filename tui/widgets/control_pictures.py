"""Control characters drawn as visible symbols, never sent to the terminal.

Text from the database is drawn by many widgets (the client list, tables, inputs,
dialogs, notifications), and a value written around the validators can hold
``ESC ] 2 ; … BEL``, which would retitle the staff member's terminal, or any other
escape sequence. Every line the app draws passes through one place, the app's line
filters, so ``ControlPictures`` there replaces each C0 and C1 control character and
DEL with a visible symbol (U+2400's control pictures: ``␛`` for ESC; ``�`` for C1),
whatever widget drew it. ``visible_controls`` (``tui.terminal_text``) does the same to
text before it is measured, where a widget lays text out itself (the client list).
"""

from __future__ import annotations

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

from tui.terminal_text import CONTROL, visible_controls


class ControlPictures(LineFilter):
    """The line filter that keeps control characters in drawn text off the terminal.

    Control characters take no cells in Textual's layout and their symbols take one, so
    a line that held any is cut back to the cells it was laid out in.
    """

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        if not any(CONTROL.search(text) for text, _, control in segments if not control):
            return segments
        length = Segment.get_line_length(segments)
        shown = [
            segment if segment.control else Segment(visible_controls(segment.text), segment.style)
            for segment in segments
        ]
        return Segment.adjust_line_length(shown, length, pad=True)
