"""Text for a terminal, with control characters as visible symbols.

A value written around the validators can hold an escape sequence (``ESC ] 2 ; …
BEL`` retitles the terminal, ``ESC [ 2 J`` clears it). Whatever GoBiller prints or
draws shows each C0 and C1 control character and DEL as a symbol instead (U+2400's
control pictures, ``␛`` for ESC; ``�`` for C1). No Textual or Rich here: the headless
commands use it too (``tui.cli``), the staff app through ``tui.widgets.control_pictures``.
"""

from __future__ import annotations

import io
import re
import sys
from typing import TextIO

_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)}
_PICTURES[0x7F] = "\u2421"  # ␡
_PICTURES.update({code: "\ufffd" for code in range(0x80, 0xA0)})
_VISIBLE = str.maketrans(_PICTURES)
#: The line structure a command's own output uses (and ``\r`` for its progress line).
_LINES = str.maketrans(
    {code: picture for code, picture in _PICTURES.items() if code not in (9, 10, 13)}
)
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def visible_controls(text: str) -> str:
    """``text`` with every C0/C1 control character and DEL replaced by a visible symbol."""
    return text.translate(_VISIBLE) if CONTROL.search(text) else text


class VisibleControls(io.TextIOBase):
    """A terminal stream that shows control characters as symbols, except the tab,
    newline and carriage return a command writes itself."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(text.translate(_LINES))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stream.encoding


def show_controls_visibly() -> None:
    """From here on, what this process prints to a terminal shows control characters as
    symbols (output to a pipe or a file is left exact, for scripts)."""
    if sys.stdout.isatty() and not isinstance(sys.stdout, VisibleControls):
        sys.stdout = VisibleControls(sys.stdout)
    if sys.stderr.isatty() and not isinstance(sys.stderr, VisibleControls):
        sys.stderr = VisibleControls(sys.stderr)
