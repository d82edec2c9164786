"""Notifications that are never markup.

A notification quotes what people typed (a product named ``[/x]``, a path, a client's
name): read as Textual markup it would be styled, or refused with a ``MarkupError``
that closes nothing but loses the message. Both apps mix this in, so every
``notify`` (the app's, a screen's or a widget's, which all come here) shows its text as
it is.
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.notifications import SeverityLevel


class PlainNotifications(App[Any]):
    """App mixin: ``notify`` always shows its message as plain text."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """``App.notify`` with ``markup`` forced off (see the module)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)
