"""``gobiller portal``: the client portal (issue 12, PRODUCT.md §2), the program an
OpenSSH ``Match User`` block's ``ForceCommand`` runs (README, "The client portal").

Only the command itself loads Textual, when it runs: ``gobiller --help`` and the
headless commands stay free of it.
"""

from __future__ import annotations

import os
from typing import Any

import click


@click.command("portal")
@click.option(
    "--reset-token",
    metavar="TOKEN",
    help="Open the reset page with this token from a reset or invitation email.",
)
@click.pass_obj
def portal(obj: Any, reset_token: str | None) -> None:
    """The client portal: log in, forgotten password, invitation, password, security
    question and two-factor, unpaid invoices. Keyboard only; 80x24 or larger."""
    obj.open()
    os.environ.setdefault("TEXTUAL_FPS", "120")
    from tui.cli import flush_outbox
    from tui.portal.app import PortalApp

    PortalApp(reset_token=reset_token, flush=lambda: flush_outbox(obj)).run()
