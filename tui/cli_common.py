"""What every ``gobiller`` command module shares: the option types and the two ways a
command answers (a result, or one refusal line), so ``tui.cli`` and the command groups
it adds (``cli_accounts``, ``cli_invoices``, ``cli_pdf``, ``cli_services``) speak alike
(PRODUCT.md §5). Never imports Textual, peewee or the rules at import time.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, NoReturn

import click

#: A record id on the command line (a client, an email): positive and within the 64-bit
#: integer columns of SQLite and PostgreSQL, so a longer number is refused as a usage
#: error rather than overflowing the database driver.
RECORD_ID = click.IntRange(1, 2**63 - 1)


class DateParam(click.ParamType):
    """A ``YYYY-MM-DD`` option inside the plausible window (``rules.dates``): a date such
    as 0001-01-01 is refused with the reason, before anything runs."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.date):
            return value
        from rules.dates import parse_date

        try:
            return parse_date(value)
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


DATE = DateParam()


def emit(as_json: bool, data: Any, text: str) -> None:
    """A command's answer: ``data`` as one JSON object with ``--json``, else ``text``."""
    click.echo(json.dumps(data, ensure_ascii=False) if as_json else text)


def refuse(as_json: bool, message: str, code: int) -> NoReturn:
    """One clear line (``{"error": ...}`` on standard output with --json, else ``Error:
    ...`` on standard error), and exit ``code`` (``tui.exits.Exit``)."""
    if as_json:
        click.echo(json.dumps({"error": message}, ensure_ascii=False))
    else:
        click.echo(f"Error: {message}", err=True)
    sys.exit(code)
