"""A text box whose typing repaints the box only, not a layout pass of the screen."""

from __future__ import annotations

from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input


class TextInput(Input):
    """Textual's ``Input``, without a layout of the whole screen at every keystroke.

    ``Input`` keeps its ``virtual_size`` at the width of its text, and a widget's
    ``virtual_size`` is declared ``layout=True``: each typed character arranged every
    widget of the screen again (3-7 ms on the client list, before the search even
    started). A box's text width only decides how far it scrolls sideways, which
    ``Input`` computes from ``virtual_size`` itself (its horizontal scrollbar is 0 cells
    high, so no gutter ever appears or goes): a repaint of the box is enough. A box sized
    ``width: auto`` still asks for its layout (``Input`` does that separately).
    """

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)
