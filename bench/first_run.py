"""A first ``gobiller cron`` over a fresh demo, delivery into the Maildir included.

    python bench/first_run.py [--clients 100000] [--database URL] [--billed-up-to DATE]

1. ``gobiller demo --clients N`` into an empty database: a temporary SQLite file, or with
   ``--database postgresql://.../postgres`` a new database created beside that one (and
   dropped at the end);
2. ``gobiller cron --date TODAY --json`` in a folder whose gobiller.toml points at it and
   delivers into a Maildir there (no SMTP), as a crontab would run it;
3. reads the email log: how many emails, how many carried an invoice PDF, and the delivery
   rate of the first and the last 10,000 emails by their ``sent_at`` (halves when fewer
   than 20,000 were sent): a rate that falls as the log grows is what issue 14 forbids.

``--billed-up-to`` makes the demo stop billing earlier (``gobiller demo --date``), so the
first cron catches up: many more invoices, notices and emails. Both runs are real
subprocesses of the installed ``gobiller``. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from store.db import close_database, database, open_database  # noqa: E402
from store.models import Email  # noqa: E402

WINDOW = 10_000
INVOICE_TEMPLATES = ("Invoice Created", "Invoice Payment Confirmation")


def gobiller(*args: str, cwd: Path) -> tuple[float, str]:
    """Run the installed ``gobiller`` with ``args`` in ``cwd``; (wall seconds, stdout)."""
    exe = Path(sys.executable).with_name("gobiller")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GOBILLER_DATABASE", None)
    env.pop("GOBILLER_SMTP_URL", None)
    started = time.perf_counter()
    done = subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"gobiller {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return seconds, done.stdout


def postgres_database(server_url: str) -> tuple[str, str]:
    """A new, empty database on the server of ``server_url``: (its URL, its name)."""
    import psycopg2

    name = f"gobiller_first_run_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}")), name


def drop_postgres_database(server_url: str, name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


def rate(stamps: list[dt.datetime]) -> float:
    """Emails per second over ``stamps`` (sent_at, in order): count over the span."""
    span = (stamps[-1] - stamps[0]).total_seconds()
    return (len(stamps) - 1) / span if span > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument(
        "--database", help="postgresql://.../postgres: run on a new database of that server"
    )
    parser.add_argument("--date", default=dt.date.today().isoformat(), help="the cron's date")
    parser.add_argument("--billed-up-to", help="the demo's date (default: the cron's date)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="gobiller-first-run-"))
    dropped: str | None = None
    if args.database:
        url, dropped = postgres_database(args.database)
    else:
        url = f"sqlite:///{folder / 'first.sqlite3'}"
    try:
        (folder / "gobiller.toml").write_text(
            f'[database]\nurl = "{url}"\n\n[mail]\nmaildir = "{folder / "Maildir"}"\n'
        )
        demo_seconds, _ = gobiller(
            "demo",
            "--clients",
            str(args.clients),
            "--date",
            args.billed_up_to or args.date,
            "--json",
            cwd=folder,
        )
        print(f"demo: {args.clients:,} clients in {demo_seconds:.1f} s", flush=True)
        cron_seconds, out = gobiller("cron", "--date", args.date, "--json", cwd=folder)
        summary = json.loads(out)
        rule_seconds = {name: rule["seconds"] for name, rule in summary["rules"].items()}
        rules_total = sum(rule_seconds.values())
        mail = summary["mail"]

        open_database(url)
        stamps = [
            row[0]
            for row in database.execute_sql(
                "SELECT sent_at FROM email WHERE status = 'sent' ORDER BY sent_at, id"
            ).fetchall()
        ]
        stamps = [s if isinstance(s, dt.datetime) else dt.datetime.fromisoformat(s) for s in stamps]
        with_pdf = (
            Email.select()
            .where((Email.status == "sent") & Email.template.in_(INVOICE_TEMPLATES))
            .count()
        )
        close_database()

        window = WINDOW if len(stamps) >= 2 * WINDOW else max(2, len(stamps) // 2)
        first = rate(stamps[:window]) if len(stamps) >= 4 else 0.0
        last = rate(stamps[-window:]) if len(stamps) >= 4 else 0.0
        kind = "PostgreSQL" if url.startswith("postgres") else "SQLite"
        print(
            f"cron on {kind}: {cron_seconds:.1f} s wall (rules {rules_total:.1f} s, "
            f"{rule_seconds}); sent {mail['sent']:,} emails ({with_pdf:,} with an invoice "
            f"PDF), failed {mail['failed']}, retried {mail['retried']}"
        )
        print(
            f"delivery rate: first {window:,} {first:.0f}/s, last {window:,} {last:.0f}/s "
            f"(last/first {last / first if first else 0:.2f}x)"
        )
        print(
            json.dumps(
                {
                    "database": kind,
                    "clients": args.clients,
                    "billed_up_to": args.billed_up_to or args.date,
                    "cron_date": args.date,
                    "demo_seconds": round(demo_seconds, 1),
                    "cron_seconds": round(cron_seconds, 1),
                    "rules_seconds": round(rules_total, 2),
                    "rule_seconds": rule_seconds,
                    "emails_sent": mail["sent"],
                    "emails_with_pdf": with_pdf,
                    "emails_failed": mail["failed"],
                    "window": window,
                    "first_window_per_second": round(first),
                    "last_window_per_second": round(last),
                    "last_over_first": round(last / first, 2) if first else None,
                }
            )
        )
    finally:
        if dropped and args.database:
            drop_postgres_database(args.database, dropped)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
