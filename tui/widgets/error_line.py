"""The line beside a field or form that says why it was refused."""

from __future__ import annotations

from textual.widgets import Static


class ErrorLine(Static):
    """Reasons quote what staff typed (``[bold]x`` is a valid name), so the text is
    always shown as is, never read as markup."""

    DEFAULT_CLASSES = "error"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)

    def say(self, text: str) -> None:
        """Show ``text`` (shown as is); an empty text hides the line."""
        self.update(text)
        self.set_class(bool(text), "-shown")
