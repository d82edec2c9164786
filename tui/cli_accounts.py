"""``gobiller client``: the staff's account actions on a client, headless (PRODUCT.md §2).

Thin callers of ``rules.accounts``: Reset & Send Password, untick two-factor (with a
reason), send a portal invitation. The emails are queued in the same transaction and
leave with the next ``gobiller mail flush`` or cron run. A refusal is one line (with
``--json``, ``{"error": ...}``) and the exit codes of ``tui.exits``, through the command
group of ``tui.cli``. Never imports Textual.
"""

from __future__ import annotations

from typing import Any

import click

from tui.cli_common import RECORD_ID as CLIENT_ID
from tui.cli_common import emit as _emit

QUEUED = "it leaves with the next `gobiller mail flush` or cron run"


@click.group("client")
def client_group() -> None:
    """Client accounts: reset password, two-factor, portal invitation."""


@client_group.command("reset-password")
@click.argument("client_id", type=CLIENT_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def reset_password(obj: Any, client_id: int, as_json: bool) -> None:
    """Reset & Send Password: email the client a new generated password, which they must
    change at their next login. The password is never printed."""
    from rules.accounts.resets import reset_and_send_password
    from rules.audit import SYSTEM_CLI
    from store.models import Email

    obj.open()
    email_id = reset_and_send_password(client_id, SYSTEM_CLI)
    to = Email.get_by_id(email_id).to if email_id else ""
    _emit(
        as_json,
        {"client": client_id, "email": email_id, "to": to, "must_change_password": True},
        f"New password for client {client_id} queued to {to} (email {email_id}); {QUEUED}. "
        "The client must change it at the next login.",
    )


@client_group.command("disable-2fa")
@click.argument("client_id", type=CLIENT_ID)
@click.option("--reason", required=True, help="Why (e.g. 'lost device, identity checked').")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def disable_2fa(obj: Any, client_id: int, reason: str, as_json: bool) -> None:
    """Switch two-factor authentication off for a client who lost the device; the client
    is emailed "Two-Factor Disabled" with the reason. It cannot be switched on here."""
    from rules.accounts.two_factor import disable_two_factor
    from rules.audit import SYSTEM_CLI

    obj.open()
    disable_two_factor(client_id, reason, SYSTEM_CLI)
    _emit(
        as_json,
        {"client": client_id, "two_factor": False},
        f"Two-factor authentication is off for client {client_id}; the client is emailed "
        f"({QUEUED}).",
    )


@client_group.command("invite")
@click.argument("client_id", type=CLIENT_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def invite(obj: Any, client_id: int, as_json: bool) -> None:
    """Send portal invitation: a set-password link, valid 7 days, to a client who has no
    password yet."""
    from rules.accounts.resets import INVITE_LIFETIME, send_portal_invitation
    from rules.audit import SYSTEM_CLI
    from store.models import Email

    obj.open()
    email_id = send_portal_invitation(client_id, SYSTEM_CLI)
    to = Email.get_by_id(email_id).to if email_id else ""
    days = INVITE_LIFETIME.days
    _emit(
        as_json,
        {"client": client_id, "email": email_id, "to": to, "valid_days": days},
        f"Portal invitation for client {client_id} queued to {to} (email {email_id}, link "
        f"valid {days} days); {QUEUED}.",
    )
