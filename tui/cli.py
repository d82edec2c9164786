"""The ``gobiller`` command line.

With no sub-command it opens the staff app; every other sub-command is headless
and never imports Textual (a test checks ``sys.modules``), so cron and scripts
start fast on servers without a terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from store.config import ConfigError, load_config

SHOWN_ERRORS = 100


class Context:
    """What every sub-command needs: the resolved configuration, opened lazily."""

    def __init__(self, database_option: str | None) -> None:
        self.database_option = database_option
        self._opened = False

    def config(self) -> Any:
        try:
            return load_config(self.database_option)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc

    def open(self, *, upgrade: bool = True) -> str:
        """Open the database (applying pending migrations); return its URL."""
        from store.db import open_database
        from store.migrate import upgrade as run_upgrade

        url: str = self.config().database_url
        if not self._opened:
            try:
                open_database(url)
            except Exception as exc:  # driver errors differ per database
                raise click.ClickException(f"cannot open database {url}: {exc}") from exc
            self._opened = True
            if upgrade:
                run_upgrade()
        return url


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, ensure_ascii=False) if as_json else text)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database",
    "database",
    metavar="URL",
    help="Database URL (sqlite:///path or postgresql://user@host/db). "
    "Overrides GOBILLER_DATABASE and gobiller.toml.",
)
@click.pass_context
def main(ctx: click.Context, database: str | None) -> None:
    """GoBiller: terminal-native billing back office.

    With no command, opens the staff app. The database is chosen by --database,
    then GOBILLER_DATABASE, then [database] url in gobiller.toml (current folder,
    user config folder, /etc/gobiller/config.toml), then a SQLite file in the
    user data folder.
    """
    ctx.obj = Context(database)
    if ctx.invoked_subcommand is None:
        from store.models import Client

        url = ctx.obj.open()
        clients = Client.select().count()
        click.echo(
            f"Database ready: {url} ({clients} clients).\n"
            "The staff app is not built yet; use the sub-commands (gobiller --help)."
        )


@main.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def config_cmd(obj: Context, as_json: bool) -> None:
    """Show the configuration in force and where each part came from."""
    cfg = obj.config()
    data = {
        "database_url": cfg.database_url,
        "database_source": cfg.database_source,
        "config_file": str(cfg.config_file) if cfg.config_file else None,
    }
    _emit(as_json, data, "\n".join(f"{k}: {v}" for k, v in data.items()))


@main.group("db")
def db_group() -> None:
    """Database schema: apply and inspect migrations."""


@db_group.command("upgrade")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def db_upgrade(obj: Context, as_json: bool) -> None:
    """Apply every pending migration (each in its own transaction)."""
    from store.migrate import upgrade

    url = obj.open(upgrade=False)
    applied = upgrade()
    _emit(
        as_json,
        {"database_url": url, "applied": applied},
        f"Applied {len(applied)} migration(s) to {url}" + "".join(f"\n  {name}" for name in applied)
        if applied
        else f"{url} is up to date.",
    )


@db_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def db_status(obj: Context, as_json: bool) -> None:
    """List migrations and whether each is applied; exit 1 when some are pending."""
    from store.migrate import status

    url = obj.open(upgrade=False)
    rows = status()
    pending = [m.name for m in rows if not m.applied]
    _emit(
        as_json,
        {"database_url": url, "migrations": [m.__dict__ for m in rows], "pending": pending},
        "\n".join([url] + [f"  [{'x' if m.applied else ' '}] {m.name}" for m in rows]),
    )
    if pending:
        sys.exit(1)


@main.command("demo")
@click.option(
    "--clients",
    type=click.IntRange(1, 10_000_000),
    default=1000,
    show_default=True,
    help="How many clients to create.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Random seed: the same seed and date give the same data.",
)
@click.option(
    "--date",
    "today",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The date the data is built around (default: today).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def demo(obj: Context, clients: int, seed: int, today: dt.datetime | None, as_json: bool) -> None:
    """Fill an empty database with realistic demo data and a staff account 'admin'."""
    from rules.demo import generate_demo
    from rules.errors import RuleError

    url = obj.open()
    started = time.perf_counter()
    show = sys.stderr.isatty() and not as_json

    def progress(done: int) -> None:
        if show:
            click.echo(f"\r  {done:,} / {clients:,} clients", nl=False, err=True)

    try:
        result = generate_demo(
            clients, seed=seed, today=today.date() if today else None, progress=progress
        )
    except RuleError as exc:
        raise click.ClickException(str(exc)) from exc
    if show:
        click.echo("", err=True)
    seconds = round(time.perf_counter() - started, 2)
    text = (
        f"Created {result.clients:,} demo clients ({result.rows:,} rows) in {seconds} s in {url}."
    )
    if result.admin_password:
        text += f"\nStaff login: admin / {result.admin_password}"
    _emit(
        as_json,
        {
            "database_url": url,
            "clients": result.clients,
            "rows": result.rows,
            "seconds": seconds,
            "admin_password": result.admin_password,
        },
        text,
    )


@main.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.pass_obj
def export_cmd(obj: Context, file: Path, as_json: bool) -> None:
    """Write the interchange document (PRODUCT.md §5) to FILE ('-' for standard output)."""
    from rules.interchange import build_export, dumps, export_to

    obj.open()
    if str(file) == "-":
        click.echo(dumps(build_export()), nl=False)
        return
    count = export_to(file)
    _emit(as_json, {"file": str(file), "clients": count}, f"Exported {count:,} clients to {file}.")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def import_cmd(obj: Context, file: Path, as_json: bool) -> None:
    """Import an interchange document: every record is checked first; nothing is
    written unless all are valid, then everything is written in one transaction."""
    from rules.interchange import ImportError_, import_file

    obj.open()
    try:
        count = import_file(file)
    except ImportError_ as exc:
        if as_json:
            click.echo(
                json.dumps(
                    {"file": str(file), "imported": 0, "errors": exc.errors}, ensure_ascii=False
                )
            )
        else:
            click.echo(f"{file}: nothing imported, {len(exc.errors)} error(s):", err=True)
            for line in exc.errors[:SHOWN_ERRORS]:
                click.echo(f"  {line}", err=True)
            if len(exc.errors) > SHOWN_ERRORS:
                click.echo(
                    f"  ... and {len(exc.errors) - SHOWN_ERRORS} more (--json lists all)", err=True
                )
        sys.exit(1)
    _emit(
        as_json,
        {"file": str(file), "imported": count, "errors": []},
        f"Imported {count:,} clients from {file}.",
    )


@main.group("staff")
def staff_group() -> None:
    """Staff accounts."""


@staff_group.command("add")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["admin", "billing", "support"]),
    required=True,
    help="admin: everything; billing: all client work; support: view and contact details.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input instead of generating one.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def staff_add(obj: Context, username: str, role: str, password_stdin: bool, as_json: bool) -> None:
    """Create a staff member; prints a generated password unless --password-stdin."""
    from rules.audit import SYSTEM_CLI
    from rules.errors import RuleError
    from rules.passwords import generate_password
    from rules.staff import add_staff

    obj.open()
    password = sys.stdin.readline().rstrip("\n") if password_stdin else generate_password()
    try:
        add_staff(username, password, role, SYSTEM_CLI)
    except RuleError as exc:
        raise click.ClickException(str(exc)) from exc
    shown = None if password_stdin else password
    _emit(
        as_json,
        {"username": username, "role": role, "password": shown},
        f"Staff member {username} ({role}) created." + (f"\nPassword: {shown}" if shown else ""),
    )


if __name__ == "__main__":  # pragma: no cover
    main()
