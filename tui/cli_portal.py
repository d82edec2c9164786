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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Report a failure to start (configuration, database) as one JSON error.",
)
@click.pass_obj
def portal(obj: Any, reset_token: str | None, as_json: bool) -> None:
    """The client portal: log in, forgotten password, invitation, password, security
    question and two-factor, unpaid invoices. Keyboard only; 80x24 or larger. With
    ``--json``, a failure before the portal opens is one JSON error (as every command)."""
    obj.open()
    os.environ.setdefault("TEXTUAL_FPS", "120")
    from tui.cli import flush_outbox
    from tui.portal.app import PortalApp

    PortalApp(reset_token=reset_token, flush=lambda: flush_outbox(obj)).run()
