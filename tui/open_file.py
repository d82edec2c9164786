"""Showing a file to the staff member at the terminal: the system viewer when there is
one, otherwise the file is kept where they can fetch it (issue 13: ``o`` on the Invoices
tab opens the invoice's PDF).

Headless (no Textual): the Invoices tab calls ``open_invoice_pdf`` in a thread worker
(it reads the database and writes a file) and shows ``Opened.message`` when it returns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from store.config import data_dir
from store.files import make_private_folder, write_atomically


def invoices_folder() -> Path:
    """Where invoice PDFs are saved: ``invoices/`` in GoBiller's data folder (private,
    0700, beside the database and the Maildir: the PDFs hold clients' names and
    addresses, so not a shared Downloads folder)."""
    return data_dir() / "invoices"


@dataclass(frozen=True)
class Opened:
    """Where the file was saved, and the viewer command started on it (None: no viewer,
    the file is only saved)."""

    path: Path
    viewer: str | None

    @property
    def message(self) -> str:
        """One line for the status bar."""
        if self.viewer:
            return f"Opened {self.path.name} with {self.viewer} (saved in {self.path.parent})"
        return f"No viewer on this terminal: saved to {self.path}"


def system_viewer(
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> str | None:
    """The command that opens a file with the desktop's viewer, or None when there is
    none to show it: ``open`` on macOS; ``xdg-open`` when installed and a display is
    reachable (``DISPLAY`` for X11, ``WAYLAND_DISPLAY``). Over plain SSH there is none."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        return "open" if which("open") else None
    if (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")) and which("xdg-open"):
        return "xdg-open"
    return None


def open_pdf(
    data: bytes,
    filename: str,
    *,
    folder: Path | None = None,
    viewer: str | None = None,
    find_viewer: Callable[[], str | None] = system_viewer,
) -> Opened:
    """Save ``data`` as ``folder/filename`` (default ``invoices_folder()``; replaced all at
    once, 0600) and start the system viewer on it, detached (it outlives the app and
    never writes on the terminal). ``viewer`` forces a command; ``find_viewer`` is asked
    otherwise. A viewer that cannot be started leaves the file saved, as without one.

    Raises ``store.files.FileWriteError`` (one line: "cannot write ...: disk full") when
    the file cannot be written, and ``OSError`` when the folder cannot be created.
    """
    folder = invoices_folder() if folder is None else folder
    make_private_folder(folder)
    path = folder / filename
    write_atomically(path, data)
    command = viewer or find_viewer()
    if command is None:
        return Opened(path, None)
    try:
        subprocess.Popen(
            [command, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not killed with the app, not reading its keys
        )
    except OSError:
        return Opened(path, None)
    return Opened(path, command)


def open_invoice_pdf(invoice_id: int, *, folder: Path | None = None) -> Opened:
    """Render invoice ``invoice_id``'s PDF (``rules.billing.invoice_pdf``) and
    ``open_pdf`` it as ``Invoice-<number>.pdf``. Call it in a thread worker with a
    connection (``tui.background.thread_connection``): it reads the database.

    Raises ``rules.billing.payments.InvoiceNotFound``, ``FileWriteError``, ``OSError``.
    """
    from rules.billing.invoice_pdf import invoice_pdf_attachment

    filename, data = invoice_pdf_attachment(invoice_id)
    return open_pdf(data, filename, folder=folder)
