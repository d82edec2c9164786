"""The ``gobiller`` command line.

With no sub-command it opens the staff app; every other sub-command is headless
and never imports Textual (a test checks ``sys.modules``), so cron and scripts
start fast on servers without a terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from store.config import ConfigError, hide_password, load_config
from tui.cli_accounts import client_group
from tui.cli_common import DATE, RECORD_ID
from tui.cli_common import emit as _emit
from tui.cli_common import refuse as _refuse
from tui.cli_invoices import invoice_group
from tui.cli_portal import portal
from tui.cli_services import service_group
from tui.exits import Exit, failure, show_traceback

SHOWN_ERRORS = 100
#: ``store.models.enums.EmailStatus`` spelled out: importing it would load peewee and every
#: model for ``gobiller --help`` (a test checks the two agree).
EMAIL_STATUSES = ("queued", "sending", "sent", "failed", "skipped")


class Context:
    """What every sub-command needs: the resolved configuration, opened lazily."""

    def __init__(self, database_option: str | None) -> None:
        self.database_option = database_option
        self._opened = False

    def config(self) -> Any:
        """The configuration in force; raises ``ConfigError`` (exit 78) when unreadable."""
        return load_config(self.database_option)

    def open(self, *, upgrade: bool = True) -> str:
        """Open the database and return its URL; with ``upgrade``, refuse a schema this
        version does not know (``SchemaMismatch``, exit 78) and apply pending migrations.

        Raises ``ConfigError`` for a URL it cannot use and a ``store.faults`` fault naming
        why the database cannot be opened (exit 65, 69 or 74: ``tui.exits``).
        """
        from peewee import ImproperlyConfigured

        from store.db import open_database
        from store.faults import fault_of
        from store.migrate import check_tables
        from store.migrate import upgrade as run_upgrade

        url: str = self.config().database_url
        if not self._opened:
            try:
                open_database(url)
            except ValueError as exc:
                raise ConfigError(f"cannot use database {hide_password(url)}: {exc}") from exc
            except ImproperlyConfigured as exc:  # peewee: the PostgreSQL driver is missing
                raise ConfigError(
                    f"cannot use database {hide_password(url)}: the PostgreSQL driver is not "
                    "installed (pip install 'gobiller[postgres]')"
                ) from exc
            except Exception as exc:  # driver errors differ per database
                if _bad_connection_option(exc):
                    raise ConfigError(f"cannot use database {hide_password(url)}: {exc}") from exc
                fault = fault_of(exc)
                if fault is None:
                    raise
                raise type(fault)(f"cannot open database {hide_password(url)}: {fault}") from exc
            self._opened = True
            if upgrade:
                run_upgrade()
                check_tables()
        return url


def _bad_connection_option(exc: Exception) -> bool:
    """Whether ``exc`` is the PostgreSQL driver refusing the URL itself (an unknown
    connection option such as ``?sslmod=``): the configuration, not the server."""
    from peewee import ProgrammingError

    cause = exc.__cause__ or exc.__context__
    psycopg2 = sys.modules.get("psycopg2")
    return (
        psycopg2 is not None
        and isinstance(exc, ProgrammingError)
        and isinstance(cause, psycopg2.ProgrammingError)
        and "invalid dsn" in str(exc)
    )


def _version() -> str:
    """The installed package's version (``importlib.metadata``), as ``pip`` knows it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gobiller")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``gobiller --version``."""
    if value and not ctx.resilient_parsing:
        click.echo(f"gobiller {_version()}")
        ctx.exit(0)


def _report(exc: BaseException, as_json: bool) -> int:
    """Say in one line why a command failed (``{"error": ...}`` on standard output with
    ``--json``, ``Error: ...`` on standard error otherwise); return its sysexits code."""
    database_file = None
    if "store.db" in sys.modules:
        from store.db import sqlite_file

        database_file = sqlite_file()
    code, message = failure(exc, database_file)
    show_traceback(exc)
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        exc.show()  # a group named alone: its help, as click shows it
        return int(code)
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        message += f" (see '{exc.ctx.command_path} --help')"
    if as_json:
        click.echo(json.dumps({"error": message}, ensure_ascii=False))
    else:
        click.echo(f"Error: {message}", err=True)
    return int(code)


def _check_arguments(argv: list[str]) -> None:
    """Refuse an argument that is not UTF-8 text: Python decodes such bytes to lone
    surrogates, which no database, file or terminal can take (UnicodeEncodeError
    wherever the value goes). Raises ``click.UsageError`` naming it in ASCII."""
    from store.text import surrogate_refusal

    for arg in argv:
        if surrogate_refusal(arg):
            raise click.UsageError(f"{ascii(arg)} is not UTF-8 text")


class CommandGroup(click.Group):
    """``gobiller``: whatever a command lets escape ends as one line and a sysexits code
    (``tui.exits``), never a traceback (PRODUCT.md §5)."""

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        if set(argv) == {"--version", "--json"}:  # click would refuse --json on the group
            _emit(True, {"version": _version()}, "")
            sys.exit(0)
        try:
            _check_arguments(argv)
            code = super().main(argv, prog_name, complete_var, False, **extra)
        except (Exception, KeyboardInterrupt) as exc:
            sys.exit(_report(exc, as_json="--json" in argv))
        sys.exit(code if isinstance(code, int) else 0)


@click.group(
    cls=CommandGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
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
    if ctx.invoked_subcommand is not None:
        from tui.terminal_text import show_controls_visibly

        show_controls_visibly()  # names, subjects and bodies from the database are printed
    if ctx.invoked_subcommand is None:
        ctx.obj.open()
        # Repaint at up to 120 frames a second (Textual's default is 60): a keystroke's
        # results reach the screen up to 8 ms sooner. TEXTUAL_FPS set by the user wins.
        os.environ.setdefault("TEXTUAL_FPS", "120")
        from tui.app import StaffApp  # only the app itself loads Textual

        keys = ctx.obj.config().table("keys")
        StaffApp(keymap={str(k): str(v) for k, v in keys.items()}).run()


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
        # Where mail goes: the SMTP server and how many sessions delivery holds open
        # (never the password), else the Maildir.
        "mail": cfg.smtp.shown() if cfg.smtp is not None else f"maildir {cfg.maildir}",
    }
    _emit(as_json, data, "\n".join(f"{k}: {v}" for k, v in data.items()))


@main.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def doctor(obj: Context, as_json: bool) -> None:
    """Check the installation, one line per check (OK, WARN or FAIL and why); exit 1
    when anything needs attention.

    Checks: database integrity (SQLite quick_check; PostgreSQL: the connection),
    migrations current, the daily rules ran in the last 24 hours, the cron lock, failed
    or stuck emails, files others can read, settings left at their defaults or
    incoherent. Never migrates nor creates the database.
    """
    from rules.doctor import healthy, run_checks

    checks = run_checks(obj.config())
    ok = healthy(checks)
    _emit(
        as_json,
        {"checks": [c.as_dict() for c in checks], "ok": ok},
        "\n".join(f"{c.status:<4} {c.name}: {c.detail}" for c in checks),
    )
    if not ok:
        sys.exit(1)


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
    """List migrations and whether each is applied; exit 1 when some are pending, 78 when
    the database has some this version does not know (a newer GoBiller upgraded it)."""
    from store.migrate import status

    url = obj.open(upgrade=False)
    rows = status()
    pending = [m.name for m in rows if not m.applied]
    unknown = [m.name for m in rows if not m.known]
    _emit(
        as_json,
        {
            "database_url": url,
            "migrations": [m.__dict__ for m in rows],
            "pending": pending,
            "unknown": unknown,
        },
        "\n".join(
            [url]
            + [
                f"  [{'x' if m.applied else ' '}] {m.name}"
                + ("" if m.known else "  (unknown to this version of GoBiller)")
                for m in rows
            ]
        ),
    )
    if unknown:
        sys.exit(Exit.CONFIG)
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
    type=DATE,
    default=None,
    help="The date the data is billed up to (default: today in the demo's timezone).",
)
@click.option(
    "--login-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also keep the staff login line in this file (readable by you only).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def demo(
    obj: Context,
    clients: int,
    seed: int,
    today: dt.date | None,
    login_file: Path | None,
    as_json: bool,
) -> None:
    """Fill an empty database with realistic demo data and a staff account 'admin'."""
    from rules.demo import generate_demo
    from rules.errors import RuleError
    from store.files import FileWriteError, write_atomically

    url = obj.open()
    started = time.perf_counter()
    show = sys.stderr.isatty() and not as_json

    def progress(done: int) -> None:
        if show:
            click.echo(f"\r  {done:,} / {clients:,} clients", nl=False, err=True)

    try:
        result = generate_demo(clients, seed=seed, today=today, progress=progress)
    except RuleError as exc:
        raise click.ClickException(str(exc)) from exc
    if show:
        click.echo("", err=True)
    seconds = round(time.perf_counter() - started, 2)
    text = (
        f"Created {result.clients:,} demo clients ({result.rows:,} rows) in {seconds} s in {url}."
    )
    login = f"Staff login: admin / {result.admin_password}" if result.admin_password else ""
    if login:
        text += f"\n{login}"
    data: dict[str, Any] = {
        "database_url": url,
        "clients": result.clients,
        "rows": result.rows,
        "seconds": seconds,
        "admin_password": result.admin_password,
    }
    problem = ""
    if login_file is not None and login:
        try:
            write_atomically(login_file, login + "\n")
        except FileWriteError as exc:
            problem = data["error"] = f"the demo is ready, but the login is not kept: {exc}"
    _emit(as_json, data, text)
    if problem:
        if not as_json:
            click.echo(f"Error: {problem}", err=True)
        sys.exit(1)


@main.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.pass_obj
def export_cmd(obj: Context, file: Path, as_json: bool) -> None:
    """Write the interchange document (PRODUCT.md §5) to FILE ('-' for standard output).

    FILE is replaced all at once (readable by you only): when writing fails (disk full,
    no such folder, no permission) the previous FILE is left as it was."""
    from rules.interchange.export import build_export, dumps, export_to
    from store.files import FileWriteError

    obj.open()
    if str(file) == "-":
        click.echo(dumps(build_export()), nl=False)
        return
    try:
        count = export_to(file)
    except FileWriteError as exc:
        _refuse(as_json, str(exc), Exit.REFUSED)
    _emit(as_json, {"file": str(file), "clients": count}, f"Exported {count:,} clients to {file}.")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def import_cmd(obj: Context, file: Path, as_json: bool) -> None:
    """Import an interchange document: every record is checked first; nothing is
    written unless all are valid, then everything is written in one transaction."""
    from rules.interchange.importer import import_file
    from rules.interchange.schema import ImportError_

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
    from rules.accounts.passwords import generate_password
    from rules.accounts.staff import add_staff
    from rules.audit import SYSTEM_CLI
    from rules.errors import RuleError

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


@main.group("mail")
def mail_group() -> None:
    """Email: deliver the outbox, browse the email log, templates and mass mail.

    Without SMTP configured (GOBILLER_SMTP_URL or [smtp] in gobiller.toml), mail is
    delivered into the local Maildir ([mail] maildir, default in the data folder).
    """


def _transport(obj: Context) -> Any:
    from rules.mail.delivery import transport_for
    from store.settings import load_settings

    return transport_for(obj.config(), load_settings())


def flush_outbox(obj: Context, *, wait: bool = False) -> Any:
    """Deliver the outbox (also the last step of every cron run)."""
    from rules.mail.delivery import flush

    return flush(_transport(obj), wait=wait)


@mail_group.command("flush")
@click.option("--wait", is_flag=True, help="Keep pacing rate-limited mass mail until none is left.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def mail_flush(obj: Context, wait: bool, as_json: bool) -> None:
    """Deliver every queued email that is due; exit 1 if any failed or the mail server
    refused us (unreachable, login refused: the emails wait in the queue)."""
    obj.open()
    result = flush_outbox(obj, wait=wait)
    data = {
        "sent": result.sent,
        "retried": result.retried,
        "failed": result.failed,
        "skipped": result.skipped,
        "deferred": result.deferred,
        "session_error": result.session_error,
        "errors": result.errors,
    }
    text = (
        f"sent {result.sent}, retrying {result.retried}, failed {result.failed}, "
        f"skipped (no longer wanted) {result.skipped}, held by the rate limit {result.deferred}"
    )
    _emit(as_json, data, "\n".join([text, *result.errors]))
    if result.failed or result.session_error:
        sys.exit(1)


@mail_group.command("list")
@click.option("--client", "client_id", type=RECORD_ID, help="Only this client's emails.")
@click.option("--status", type=click.Choice(EMAIL_STATUSES))
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def mail_list(
    obj: Context, client_id: int | None, status: str | None, limit: int, as_json: bool
) -> None:
    """The email log, newest first: date, template, to, subject, status, last error."""
    from rules.mail.log import email_log

    obj.open()
    rows = email_log(client_id=client_id, status=status, limit=limit)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], ensure_ascii=False))
        return
    for r in rows:
        error = f"  ({r.last_error})" if r.last_error else ""
        click.echo(
            f"{r.id:>7} {r.created_at:%Y-%m-%d %H:%M} {r.status:<7} {r.template:<30} "
            f"{r.to:<30} {r.subject}{error}"
        )


@mail_group.command("show")
@click.argument("email_id", type=RECORD_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def mail_show(obj: Context, email_id: int, as_json: bool) -> None:
    """Print one email as it was (or will be) sent."""
    from rules.errors import RuleError
    from rules.mail.log import email_message

    obj.open()
    try:
        message = email_message(email_id)
    except RuleError as exc:
        _refuse(as_json, str(exc), Exit.REFUSED)
    if as_json:
        click.echo(json.dumps(message.as_dict(), ensure_ascii=False))
        return
    entry = message.entry
    reason = f" ({entry.last_error})" if entry.last_error else ""
    click.echo(f"To: {entry.to}\nSubject: {entry.subject}\nStatus: {entry.status}{reason}\n")
    click.echo(message.body_text)


@mail_group.command("resend")
@click.argument("email_id", type=RECORD_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def mail_resend(obj: Context, email_id: int, as_json: bool) -> None:
    """Queue a copy of a logged email (not marketing email to a client who may no longer
    receive it: opted out or Closed)."""
    from rules.audit import SYSTEM_CLI
    from rules.errors import RuleError
    from rules.mail.delivery import resend

    obj.open()
    try:
        copy = resend(email_id, SYSTEM_CLI)
    except RuleError as exc:
        _refuse(as_json, str(exc), Exit.REFUSED)
    _emit(
        as_json,
        {"resent": email_id, "id": copy.id, "to": copy.to},
        f"Queued email {copy.id} to {copy.to}.",
    )


@mail_group.command("template")
@click.argument("name")
@click.option("--subject", help="New subject (Jinja2).")
@click.option("--body-file", type=click.File("r", encoding="utf-8"), help="New plain-text body.")
@click.option("--html-file", type=click.File("r", encoding="utf-8"), help="New HTML part.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def mail_template(
    obj: Context,
    name: str,
    subject: str | None,
    body_file: Any,
    html_file: Any,
    as_json: bool,
) -> None:
    """Show a template, or save a new version (checked in the sandbox first)."""
    from rules.audit import SYSTEM_CLI
    from rules.errors import RuleError
    from rules.mail.templates import save_template
    from store.models import EmailTemplate

    obj.open()
    current = EmailTemplate.get_or_none(EmailTemplate.name == name)
    if subject is None and body_file is None and html_file is None:
        if current is None:
            _refuse(as_json, f"no email template named {name!r}", Exit.REFUSED)
        text = f"Subject: {current.subject}\n\n{current.body_text}"
        if current.body_html:
            text += f"\n\n--- HTML part\n{current.body_html}"
        _emit(
            as_json,
            {
                "name": name,
                "subject": current.subject,
                "body_text": current.body_text,
                "body_html": current.body_html,
                "sensitive": current.sensitive,
                "disabled": current.disabled,
            },
            text,
        )
        return
    try:
        save_template(
            name,
            subject if subject is not None else (current.subject if current else ""),
            body_file.read() if body_file else (current.body_text if current else ""),
            html_file.read() if html_file else (current.body_html if current else ""),
            SYSTEM_CLI,
        )
    except RuleError as exc:
        _refuse(as_json, str(exc), Exit.REFUSED)
    _emit(as_json, {"name": name, "saved": True}, f"Template {name!r} saved.")


@mail_group.command("mass")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="status, group, country, currency (comma-separated values), "
    "has_active_product=yes|no, created_from / created_to=YYYY-MM-DD. Repeatable.",
)
@click.option("--template", "template_name", default="Mass Mail", show_default=True)
@click.option(
    "--marketing/--no-marketing",
    default=True,
    show_default=True,
    help="Marketing mail skips clients who opted out.",
)
@click.option("--dry-run", is_flag=True, help="Show the count and one rendered sample only.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def mail_mass(
    obj: Context,
    filters: tuple[str, ...],
    template_name: str,
    marketing: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Send a template to every client matching the filters (queued in one transaction)."""
    from rules.audit import SYSTEM_CLI
    from rules.errors import RuleError
    from rules.mail.massmail import MassMailFilter, preview, send_mass_mail

    obj.open()
    try:
        flt = MassMailFilter.parse(list(filters))
        plan = preview(flt, template_name, marketing=marketing)
        queued = (
            0 if dry_run else send_mass_mail(flt, template_name, SYSTEM_CLI, marketing=marketing)
        )
    except RuleError as exc:
        _refuse(as_json, str(exc), Exit.REFUSED)
    sample = plan.sample
    data = {
        "recipients": plan.count,
        "skipped_opt_out": plan.skipped_opt_out,
        "skipped_closed": plan.skipped_closed,
        "queued": queued,
        "dry_run": dry_run,
        "sample": None
        if sample is None
        else {"to": plan.sample_to, "subject": sample.subject, "body": sample.body_text},
    }
    text = (
        f"{plan.count} recipient(s), {plan.skipped_opt_out} skipped (opted out), "
        f"{plan.skipped_closed} skipped (Closed)."
    )
    if sample is not None:
        text += f"\n--- sample to {plan.sample_to}\nSubject: {sample.subject}\n\n{sample.body_text}"
    text += "\n(dry run: nothing queued)" if dry_run else f"\nQueued {queued} email(s)."
    _emit(as_json, data, text)


#: ``rules.billing.cron.RULE_NAMES`` spelled out: importing it would load peewee and every
#: rule for ``gobiller --help`` (a test checks the two agree).
CRON_RULES = ("invoice", "notice", "late_fee", "capture", "status_update")


class RuleChoice(click.Choice):
    """``--only``: one of the rule names, or several separated by commas."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        return tuple(
            super(RuleChoice, self).convert(part.strip(), param, ctx)
            for part in str(value).split(",")
        )


@main.group("cron", invoke_without_command=True)
@click.option(
    "--date",
    "date_",
    type=DATE,
    help="Business date to run in full (default: today in the configured timezone, "
    "daily rules from the daily hour on).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="The run, rolled back: list every action it would take; change, charge and send nothing.",
)
@click.option(
    "--only",
    type=RuleChoice(CRON_RULES),
    multiple=True,
    help="Run only this rule (repeat, or separate with commas).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary.")
@click.pass_context
def cron(
    ctx: click.Context,
    date_: dt.date | None,
    dry_run: bool,
    only: tuple[tuple[str, ...], ...],
    as_json: bool,
) -> None:
    """Run the billing rules, then deliver the outbox.

    Exit 0 when all went well, 1 when any action failed (a declined card is not a
    failure; an SMTP error is), 75 when another cron is running or the database stayed
    busy (try again), 65 for a damaged database file, 74 for a full disk or another
    I/O error, 78 for a database this version does not know.
    """
    if ctx.invoked_subcommand is not None:
        return
    from rules.billing.cron import run_cron
    from store.locks import AlreadyRunning, LockUnavailable

    obj: Context = ctx.obj
    obj.open()
    rules = tuple(name for names in only for name in names) or CRON_RULES
    # A progress bar on a terminal (a step per rule, then the outbox), none otherwise.
    bar = (
        click.progressbar(
            length=len(rules) + 1,
            label="gobiller cron",
            file=sys.stderr,
            item_show_func=lambda step: step or "",
        )
        if sys.stderr.isatty() and not as_json
        else None
    )
    steps = 0

    def progress(step: str) -> None:
        nonlocal steps
        if bar is not None:
            bar.update(1 if steps else 0, step)
            steps += 1

    try:
        with bar if bar is not None else nullcontext():
            summary = run_cron(
                config=obj.config(), day=date_, only=rules, dry_run=dry_run, progress=progress
            )
            if bar is not None:
                bar.update(1, "done")
    except AlreadyRunning as exc:
        raise AlreadyRunning(f"{exc}; not starting a second run") from exc
    except LockUnavailable as exc:
        raise LockUnavailable(f"refusing to run without the cron lock: {exc}") from exc
    if as_json:
        data = summary.as_dict()
        data["actions"] = summary.actions_as_dicts()
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        _print_summary(summary)
    if summary.failed:
        sys.exit(1)


def _print_summary(summary: Any) -> None:
    """The run's summary; a dry run's lists every action it would take, one a line."""
    if summary.dry_run:
        click.echo(
            f"Dry run for business date {summary.business_date} (rolled back: nothing was "
            "changed, charged or sent)"
        )
    else:
        click.echo(f"Ran business date {summary.business_date}")
    if summary.quick_check:
        took = summary.check_seconds
        took_text = f"{took:.2f} s" if took >= 0.01 else "under 0.01 s"
        click.echo(f"  database file checked (SQLite quick_check, {took_text}): ok")
    if summary.daily_next is not None:
        click.echo(
            "  daily rules skipped: this run came before the daily hour; they run at "
            f"{summary.daily_next:%Y-%m-%d %H:%M %Z} on the first run at or after it"
        )
    if summary.dry_run:
        for a in summary.actions:
            click.echo(
                f"  would {a.rule:<13} client {a.client_id:<8} {a.subject:<18} "
                f"{a.stage:<12} {a.detail}"
            )
    for name, tally in summary.rules.items():
        click.echo(
            f"  {name:<14} acted {tally.acted:>7}  skipped {tally.skipped:>7}  "
            f"failed {tally.failed:>5}  {tally.seconds:.2f} s"
        )
        for error in tally.errors[:10]:
            click.echo(f"    {error}")
    if summary.mail:
        m = summary.mail
        click.echo(
            f"  mail           sent {m['sent']}, retrying {m['retried']}, "
            f"failed {m['failed']}, skipped {m.get('skipped', 0)}, "
            f"held by the rate limit {m['deferred']}"
            + (" (recorded, not delivered)" if summary.dry_run else "")
        )


@cron.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def cron_status(obj: Context, as_json: bool) -> None:
    """Recent runs; warns (exit 1) when the daily rules have not run in the last 24 hours,
    also when runs happen but all before the daily hour."""
    from rules.billing.cron import daily_health, recent_runs
    from store.models import utcnow
    from store.settings import load_settings

    obj.open()
    runs = recent_runs()
    health = daily_health(utcnow(), load_settings())
    if as_json:
        click.echo(
            json.dumps(
                {
                    "finished_in_last_24h": health.finished_recently,
                    "daily_rules_ran_in_last_24h": health.ok,
                    "message": health.message,
                    "runs": [
                        {
                            "id": r.id,
                            "business_date": r.business_date.isoformat(),
                            "started_at": r.started_at.isoformat() + "Z",
                            "finished_at": r.finished_at.isoformat() + "Z"
                            if r.finished_at
                            else None,
                            "daily_rules": bool(r.daily_rules),
                            "quick_check": bool(r.quick_check),
                            "outcome": r.outcome,
                            "summary": json.loads(r.counts),
                        }
                        for r in runs
                    ],
                },
                ensure_ascii=False,
            )
        )
    else:
        for r in runs:
            end = f"{r.finished_at:%Y-%m-%d %H:%M:%S}" if r.finished_at else "—"
            kind = "daily" if r.daily_rules else "early"
            click.echo(
                f"{r.id:>6} {r.business_date}  {r.started_at:%Y-%m-%d %H:%M:%S} → "
                f"{end}  {kind:<5}  {r.outcome}"
            )
        if health.ok:
            click.echo(f"OK: {health.message}")
        else:
            click.echo(f"WARNING: {health.message}", err=True)
    if not health.ok:
        sys.exit(1)


@main.command("explain")
@click.argument("client_id", type=RECORD_ID)
@click.option(
    "--date",
    "date_",
    type=DATE,
    help="Business date (default: today in the configured timezone).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def explain_cmd(obj: Context, client_id: int, date_: dt.date | None, as_json: bool) -> None:
    """Rule by rule: would the cron act for this client, and if not, why not."""
    from rules.billing.automation import business_date, next_daily_run
    from rules.billing.explain import explain
    from rules.errors import RuleError
    from store.models import utcnow
    from store.settings import load_settings

    obj.open()
    settings = load_settings()
    day, daily_due = (date_, True) if date_ else business_date(utcnow(), settings)
    note = (
        ""
        if daily_due
        else "before the daily hour: a cron run now does nothing; this is what the first "
        f"run at or after {next_daily_run(utcnow(), settings):%Y-%m-%d %H:%M %Z} will do"
    )
    try:
        lines = explain(client_id, day, settings)
    except RuleError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(
            json.dumps(
                {
                    "client": client_id,
                    "business_date": day.isoformat(),
                    "daily_rules_due": daily_due,
                    "note": note,
                    "rules": [line.__dict__ for line in lines],
                },
                ensure_ascii=False,
            )
        )
        return
    click.echo(f"Client {client_id}, business date {day}:")
    if note:
        click.echo(f"  NOTE: {note}")
    for line in lines:
        mark = "ACT " if line.acts else "skip"
        click.echo(f"  [{mark}] {line.rule:<14} {line.reason}")


@main.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def backup_cmd(obj: Context, file: Path, as_json: bool) -> None:
    """A consistent copy of the database, taken while it is in use: a SQLite file
    (SQLite's backup API, integrity-checked) or a pg_dump archive (PostgreSQL). FILE
    is replaced only by a complete copy."""
    from store.backup import BackupError, backup

    obj.open()
    try:
        size = backup(file)
    except BackupError as exc:
        _refuse(as_json, f"backup failed: {exc}", Exit.IOERR)
    _emit(as_json, {"file": str(file), "bytes": size}, f"Backed up to {file} ({size:,} bytes).")


@main.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def restore_cmd(obj: Context, file: Path, force: bool, as_json: bool) -> None:
    """Replace the database's contents with a backup made by `gobiller backup`.
    Refuses a database that holds data unless --force."""
    from store.backup import BackupError, restore
    from store.migrate import upgrade

    obj.open(upgrade=False)
    try:
        restore(file, force=force)
    except BackupError as exc:
        _refuse(as_json, f"restore refused: {exc}", Exit.DATAERR)
    upgrade()  # a backup from an older version is brought up to date
    _emit(as_json, {"file": str(file), "restored": True}, f"Restored from {file}.")


main.add_command(client_group)
main.add_command(invoice_group)
main.add_command(portal)
main.add_command(service_group)


if __name__ == "__main__":  # pragma: no cover
    main()
