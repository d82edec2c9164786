"""A full cron over N clients with ten invoices each, beside two baselines in the same run.

    python bench/cron.py [--clients 100000] [--catch-up] [--database postgresql://...]

1. builds a SQLite database (N clients, one service each, 10 invoices each: paid
   history plus unpaid ones falling due for every stage) and copies it twice;
2. times ``rules.billing.cron.run_rules`` for one business date (the outbox is queued but
   not delivered: delivery speed is the mail server's);
3. times hand-written set-based SQL doing the same work on the first copy;
4. times a per-client ORM loop (rendering each email) on a sample of clients of the
   second copy, scaled to N (said in the output);
5. with ``--database``, builds the same rows on that PostgreSQL server (COPY) once, clones
   them (CREATE DATABASE ... TEMPLATE) and times the same cron there, beside SQLite's.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playhouse.test_utils import count_queries  # noqa: E402

from rules.billing.cron import run_rules
from rules.billing.invoicing import INVOICE_COLUMNS
from store import sequences  # noqa: E402
from store.bulk import bulk_insert, reset_sequences, row_maker  # noqa: E402
from store.db import close_database, database, open_database, writer  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import (  # noqa: E402
    ActionLedger,
    Client,
    Currency,
    Invoice,
    InvoiceItem,
    Product,
    Service,
    StoredCard,
)
from store.settings import load_settings  # noqa: E402

DAY = dt.date(2026, 3, 10)
# Unpaid due dates relative to the business date: reminder, first, second, third, late fee,
# capture day, and not yet due.
UNPAID_OFFSETS = (7, -1, -2, -3, -6, 0, 20)


def build(url: str, clients: int, catch_up: bool) -> None:
    """``catch_up``: every open invoice hits a stage today (a first run on old data);
    otherwise a day in the life: what earlier days did is already done. The same rows
    whatever the database (``url``: SQLite or PostgreSQL; PostgreSQL takes them by COPY)."""
    open_database(url)
    upgrade()
    rng = random.Random(3)
    history: list[tuple[int, dt.date]] = []
    with writer():
        usd = Currency.create(code="USD", prefix="$", suffix=" USD", is_default=True)
        product = Product.create(name="Hosting")
    stamp = "2025-01-01 00:00:00"
    client_columns, make_client = row_maker(Client)
    invoice_id = 0
    for start in range(1, clients + 1, 10_000):
        ids = range(start, min(start + 10_000, clients + 1))
        crows, srows, irows, items, cards = [], [], [], [], []
        for cid in ids:
            method = "sandboxcard" if cid % 3 == 0 else "banktransfer"
            crows.append(
                make_client(
                    id=cid,
                    first_name=f"First{cid}",
                    last_name="Last",
                    email=f"c{cid}@example.com",
                    country="GB",
                    status=("Active" if cid % 7 else "Inactive")
                    if catch_up
                    else ("Inactive" if cid % 5 == 0 else "Active"),
                    currency=usd.id,
                    payment_method=method,
                    late_fees_exempt=cid % 20 == 0,
                    overdue_notices_disabled=cid % 25 == 0,
                    cc_processing_disabled=cid % 30 == 0,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
            srows.append(
                (
                    cid,
                    cid,
                    product.id,
                    "",
                    "Active" if cid % 5 else "Terminated",
                    "Monthly",
                    1000,
                    (
                        DAY
                        + dt.timedelta(
                            days=rng.randrange(0, 40) if catch_up else 14 + rng.randrange(0, 30)
                        )
                    ).isoformat(),
                    method,
                    stamp,
                )
            )
            if method == "sandboxcard":
                cards.append(
                    (cid, "sandboxcard", "ok_1" if cid % 2 else "dec_1", "4242", "2030-01", stamp)
                )
            for k in range(10):
                invoice_id += 1
                if catch_up:
                    unpaid = k < 3
                    offset = rng.choice(UNPAID_OFFSETS) if unpaid else -30 * (k + 1)
                else:  # one open invoice, somewhere in its life; cards that work were charged
                    offset = rng.randrange(-60, 31) if k == 0 else -30 * (k + 1)
                    unpaid = k == 0 and not (method == "sandboxcard" and cid % 2 and offset < 0)
                due = DAY + dt.timedelta(days=offset)
                if unpaid and not catch_up:
                    history.append((invoice_id, due))
                irows.append(
                    (
                        invoice_id,
                        cid,
                        str(invoice_id),
                        (due - dt.timedelta(days=14)).isoformat(),
                        due.isoformat(),
                        None if unpaid else due.isoformat(),
                        "Unpaid" if unpaid else "Paid",
                        method,
                        1000,
                        0,
                        0,
                        1000,
                        0,
                        0,
                        "",
                        stamp,
                        1,
                    )
                )
                items.append((invoice_id, "Hosting", "Hosting", 1000, True, 0))
        with writer():
            bulk_insert(Client, client_columns, crows)
            bulk_insert(
                Service,
                (
                    "id",
                    "client_id",
                    "product_id",
                    "domain",
                    "status",
                    "billing_cycle",
                    "amount",
                    "next_due_date",
                    "payment_method",
                    "created_at",
                ),
                srows,
            )
            bulk_insert(
                StoredCard,
                ("client_id", "gateway", "token", "last4", "expiry", "created_at"),
                cards,
            )
            bulk_insert(Invoice, INVOICE_COLUMNS, irows)
            bulk_insert(
                InvoiceItem,
                ("invoice_id", "type", "description", "amount", "taxed", "sort_order"),
                items,
            )
    if history:
        _earlier_days(history)
    with writer():
        reset_sequences((Client, Service, StoredCard, Invoice, InvoiceItem, ActionLedger))
    # A billing database that has been running: PostgreSQL's autovacuum has been through
    # the old rows (hint bits, visibility map) and both have planner statistics.
    database.execute_sql("VACUUM ANALYZE" if url.startswith("postgres") else "ANALYZE")
    close_database()


def _earlier_days(open_invoices: list[tuple[int, dt.date]]) -> None:
    """Record what the runs before today did: notices sent, late fees added."""
    from rules.billing.automation import RunContext
    from rules.billing.notices import latest_stage

    yesterday = RunContext(DAY - dt.timedelta(days=1), load_settings())
    ledger, fees = [], []
    for invoice_id, due in open_invoices:
        found = latest_stage(due, yesterday)
        if found:
            ledger.append(
                (
                    "notice",
                    f"invoice:{invoice_id}",
                    found[0],
                    found[1].isoformat(),
                    None,
                    "done",
                    "",
                    "2026-03-09 09:00:00",
                )
            )
        if due + dt.timedelta(days=5) < DAY:
            fees.append((invoice_id, "LateFee", "Late fee", 100, True, 1))
    with writer():
        bulk_insert(
            ActionLedger,
            (
                "rule",
                "subject",
                "stage",
                "business_date",
                "run_id",
                "outcome",
                "detail",
                "created_at",
            ),
            ledger,
        )
        bulk_insert(
            InvoiceItem,
            ("invoice_id", "type", "description", "amount", "taxed", "sort_order"),
            fees,
        )
        # The history was numbered by its ids: the one sequence goes on after it.
        last = Invoice.select(Invoice.id).order_by(Invoice.id.desc()).scalar()
        sequences.raise_to([str(last)])


def email_sql(template: str, key: str, invoice: str, source: str, where: str = "1") -> str:
    """An email per row of ``source`` with the text the cron writes: the template's SQL
    expression (rules.mail.sql, inlined here) over that row's invoice and client."""
    from rules.mail.sql import compile_template
    from rules.mail.templates import company_context
    from store.models import EmailTemplate

    stored = EmailTemplate.get(EmailTemplate.name == template)
    company = tuple(sorted(company_context(load_settings()).items()))
    subject = compile_template(stored.subject, company)
    body = compile_template(stored.body_text, company)
    assert subject is not None and body is not None, template

    def inline(sql: str, params: tuple[object, ...]) -> str:
        pieces = sql.split("?")
        assert len(pieces) == len(params) + 1
        out = pieces[0]
        for value, piece in zip(params, pieces[1:], strict=True):
            out += "'" + value.replace("'", "''") + "'" if isinstance(value, str) else str(value)
            out += piece
        return out

    return f"""INSERT INTO email (client_id, template, "to", subject, body_text, body_html,
       masked_body, status, unique_key, marketing, message_id, attempts, next_attempt_at,
       lease_owner, last_error, created_at)
       SELECT c.id, '{template}', COALESCE(bc.email, c.email),
              substr(trim(replace({inline(subject.sql, subject.params)}, char(10), ' '),
                          ' ' || char(9, 10, 11, 12, 13)), 1, 255),
              {inline(body.sql, body.params)}, '', '', 'queued', {key}, 0, '', 0, :now, '',
              '', :now
       FROM {source} JOIN invoice i ON i.id = {invoice} JOIN client c ON c.id = i.client_id
       LEFT JOIN currency cur ON cur.id = c.currency_id
       LEFT JOIN contact bc ON bc.id = c.billing_contact_id
       WHERE {where}"""


NOTICE_TEMPLATES = {
    "reminder": "Invoice Payment Reminder",
    "first": "First Invoice Overdue Notice",
    "second": "Second Invoice Overdue Notice",
    "third": "Third Invoice Overdue Notice",
}


def baseline_statements() -> list[str]:
    """Hand-written set-based SQL for the same rules (built once the database is open)."""
    return [
        # Invoice generation (one service per client, so one invoice per due service).
        """CREATE TEMP TABLE due AS
       SELECT s.id AS sid, s.client_id, s.amount, s.next_due_date, s.payment_method,
              'Hosting: ' || p.name || ' (' || strftime('%d/%m/%Y', s.next_due_date) || ')'
                AS description,
              (SELECT MAX(id) FROM invoice) + ROW_NUMBER() OVER (ORDER BY s.id) AS iid
       FROM service s JOIN product p ON p.id = s.product_id
       WHERE s.status IN ('Active', 'Suspended') AND s.billing_cycle NOT IN ('Free', 'One Time')
         AND s.next_due_date <= date(:day, '+14 days')
         AND NOT EXISTS (SELECT 1 FROM invoice_item i WHERE i.related_type = 'service'
                         AND i.related_id = s.id AND i.related_due_date = s.next_due_date)""",
        """INSERT INTO action_ledger (rule, subject, stage, business_date, outcome, detail,
           created_at)
       SELECT 'invoice', 'service:' || sid, '', :day, 'done', '', :now FROM due""",
        """INSERT INTO invoice (id, client_id, number, date, due_date, status, payment_method,
       subtotal, tax, tax2, total, tax_rate1_e4, tax_rate2_e4, notes, created_at, version)
       SELECT iid, client_id, iid, :day, next_due_date, 'Unpaid', payment_method, amount, 0, 0,
              amount, 0, 0, '', :now, 1 FROM due""",
        """INSERT INTO invoice_item (invoice_id, type, description, amount, taxed, related_type,
       related_id, related_due_date, sort_order)
       SELECT iid, 'Hosting', description, amount, 1, 'service', sid, next_due_date, 0
       FROM due""",
        email_sql("Invoice Created", "'invoice_created:' || d.iid", "d.iid", "due d"),
        # Reminders and notices: the latest stage due today.
        """CREATE TEMP TABLE stage AS
       SELECT i.id, i.client_id, CASE julianday(:day) - julianday(i.due_date)
              WHEN -7 THEN 'reminder' WHEN 1 THEN 'first' WHEN 2 THEN 'second'
              WHEN 3 THEN 'third' END AS stage, c.email, c.first_name, i.number, i.total
       FROM invoice i JOIN client c ON c.id = i.client_id
       WHERE i.status = 'Unpaid' AND i.due_date IN (date(:day, '+7 days'), date(:day, '-1 day'),
             date(:day, '-2 days'), date(:day, '-3 days'))
         AND (c.overdue_notices_disabled = 0 OR i.due_date > :day)""",
        """INSERT INTO action_ledger (rule, subject, stage, business_date, outcome, detail,
           created_at)
       SELECT 'notice', 'invoice:' || id, stage, :day, 'done', '', :now FROM stage""",
        *(
            email_sql(
                template,
                f"'notice:' || n.id || ':{stage}:' || :day",
                "n.id",
                "stage n",
                f"n.stage = '{stage}'",
            )
            for stage, template in NOTICE_TEMPLATES.items()
        ),
        # Late fees: 10% of the subtotal, once per invoice.
        "CREATE TEMP TABLE late (id INTEGER PRIMARY KEY, fee INTEGER)",
        """INSERT INTO late
       SELECT i.id, i.subtotal * 10 / 100 AS fee FROM invoice i JOIN client c ON c.id = i.client_id
       WHERE i.status = 'Unpaid' AND i.due_date <= date(:day, '-5 days')
         AND c.late_fees_exempt = 0 AND NOT EXISTS (SELECT 1 FROM invoice_item f
             WHERE f.invoice_id = i.id AND f.type = 'LateFee')""",
        """INSERT INTO action_ledger (rule, subject, stage, business_date, outcome, detail,
           created_at)
       SELECT 'late_fee', 'invoice:' || id, '', :day, 'done', '', :now FROM late""",
        """INSERT INTO invoice_item (invoice_id, type, description, amount, taxed, sort_order)
       SELECT id, 'LateFee', 'Late fee', fee, 1, 1 FROM late""",
        """UPDATE invoice
       SET subtotal = subtotal + (SELECT fee FROM late WHERE late.id = invoice.id),
       total = total + (SELECT fee FROM late WHERE late.id = invoice.id)
       WHERE id IN (SELECT id FROM late)""",
        # Card capture.
        "CREATE TEMP TABLE cap (id INTEGER PRIMARY KEY, client_id INTEGER, total INTEGER, "
        "approved INTEGER)",
        """INSERT INTO cap
       SELECT i.id, i.client_id, i.total, k.token LIKE 'ok%' AS approved
       FROM invoice i JOIN client c ON c.id = i.client_id
       JOIN stored_card k ON k.client_id = i.client_id AND k.gateway = i.payment_method
       WHERE i.status = 'Unpaid' AND i.payment_method = 'sandboxcard' AND i.due_date <= :day
         AND c.cc_processing_disabled = 0""",
        """INSERT INTO action_ledger (rule, subject, stage, business_date, outcome, detail,
           created_at)
       SELECT 'capture', 'invoice:' || id, '', :day, 'done', '', :now FROM cap""",
        """INSERT INTO "transaction" (client_id, invoice_id, gateway, transaction_id,
       idempotency_key, amount_in, amount_out, fees, description, date)
       SELECT client_id, id, 'sandboxcard', 'sbx', 'capture:' || id || ':' || :day, total, 0, 0,
              'Card capture', :now FROM cap WHERE approved""",
        """UPDATE invoice SET status = 'Paid', date_paid = :day
       WHERE id IN (SELECT id FROM cap WHERE approved)""",
        email_sql("Invoice Payment Confirmation", "'paid:' || k.id", "k.id", "cap k", "k.approved"),
        email_sql(
            "Credit Card Payment Failed",
            "'declined:' || k.id || ':' || :day",
            "k.id",
            "cap k",
            "NOT k.approved",
        ),
        # Status update.
        """UPDATE client SET status = 'Inactive', version = version + 1
       WHERE status = 'Active' AND status_locked = 0 AND NOT EXISTS (
         SELECT 1 FROM service s WHERE s.client_id = client.id
         AND s.status IN ('Active', 'Suspended'))""",
        """UPDATE client SET status = 'Active', version = version + 1
       WHERE status = 'Inactive' AND status_locked = 0 AND EXISTS (
         SELECT 1 FROM service s WHERE s.client_id = client.id
         AND s.status IN ('Active', 'Suspended'))""",
    ]


def baseline_sql(path: Path) -> float:
    open_database(f"sqlite:///{path}")
    params = {"day": DAY.isoformat(), "now": "2026-03-10 09:00:00"}
    statements = baseline_statements()
    started = time.perf_counter()
    conn = database.connection()
    conn.execute("BEGIN IMMEDIATE")
    for statement in statements:
        conn.execute(statement, params)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    close_database()
    return seconds


def effects(url: str) -> dict[str, object]:
    """What a run left behind, counted: the cron and the SQL baseline must agree."""
    open_database(url)
    counts = {
        name: database.execute_sql(sql).fetchone()[0]
        for name, sql in (
            ("invoices", "SELECT COUNT(*) FROM invoice"),
            ("paid", "SELECT COUNT(*) FROM invoice WHERE status = 'Paid'"),
            ("items", "SELECT COUNT(*) FROM invoice_item"),
            ("late_fees", "SELECT COUNT(*) FROM invoice_item WHERE type = 'LateFee'"),
            ("transactions", 'SELECT COUNT(*) FROM "transaction"'),
            ("emails", "SELECT COUNT(*) FROM email"),
            ("ledger", "SELECT COUNT(*) FROM action_ledger"),
            ("inactive", "SELECT COUNT(*) FROM client WHERE status = 'Inactive'"),
        )
    }
    digest = hashlib.sha256()
    for row in database.execute_sql(
        'SELECT unique_key, template, "to", subject, body_text FROM email ORDER BY unique_key'
    ):
        digest.update(repr(row).encode())
    counts["emails_sha256"] = digest.hexdigest()[:16]  # the same emails, byte for byte
    close_database()
    return counts


def naive_loop(path: Path, sample: int) -> float:
    """The obvious per-client code: a few ORM queries and writes per client and invoice."""
    from rules.mail.outbox import Notice, queue

    open_database(f"sqlite:///{path}")
    started = time.perf_counter()
    for client in Client.select().order_by(Client.id).limit(sample):
        with writer():
            for service in Service.select().where(Service.client == client.id):
                if service.status in ("Active", "Suspended") and service.next_due_date <= (
                    DAY + dt.timedelta(days=14)
                ):
                    inv = Invoice.create(
                        client=client,
                        number=f"N{service.id}",
                        date=DAY,
                        due_date=service.next_due_date,
                        payment_method=service.payment_method,
                        subtotal=service.amount,
                        total=service.amount,
                    )
                    InvoiceItem.create(
                        invoice=inv,
                        type="Hosting",
                        description="Hosting",
                        amount=service.amount,
                        related_type="service",
                        related_id=service.id,
                        related_due_date=service.next_due_date,
                    )
                    queue("Invoice Created", [Notice(client.id, inv.id)])
            for inv in Invoice.select().where(
                (Invoice.client == client.id) & (Invoice.status == "Unpaid")
            ):
                days = (DAY - inv.due_date).days
                if days in (-7, 1, 2, 3):
                    queue("Invoice Payment Reminder", [Notice(client.id, inv.id)])
                if days >= 5 and not client.late_fees_exempt:
                    fee = inv.subtotal // 10
                    InvoiceItem.create(
                        invoice=inv, type="LateFee", description="Late fee", amount=fee
                    )
                    inv.subtotal += fee
                    inv.total += fee
                    inv.save()
    seconds = time.perf_counter() - started
    close_database()
    return seconds


def timed_cron(url: str) -> tuple[float, int, dict[str, int], dict[str, float]]:
    """``run_rules`` for DAY on ``url``: seconds, queries, acted and seconds per rule
    (with ``check``: the first daily run's file check, SQLite's quick_check)."""
    open_database(url)
    settings = load_settings()
    with count_queries() as counter:
        started = time.perf_counter()
        summary = run_rules(DAY, settings)
        seconds = time.perf_counter() - started
    acted = {name: t.acted for name, t in summary.rules.items()}
    rule_seconds = {name: round(t.seconds, 2) for name, t in summary.rules.items()}
    rule_seconds["check"] = round(summary.check_seconds, 2)
    close_database()
    return seconds, counter.count, acted, rule_seconds


class PostgresCopies:
    """Databases on one PostgreSQL server (``server``: a URL the role can CREATE DATABASE
    from): the data built once, then cloned for each measured run (CREATE DATABASE ...
    TEMPLATE copies the files, planner statistics included)."""

    def __init__(self, server: str) -> None:
        import psycopg2

        self.parts = urlsplit(server)
        self.admin = psycopg2.connect(server)
        self.admin.autocommit = True
        self.prefix = f"gb_bench_{os.getpid()}"
        self.names: list[str] = []

    def url(self, name: str) -> str:
        return urlunsplit(self.parts._replace(path=f"/{name}"))

    def create(self, suffix: str, template: str | None = None) -> str:
        name = f"{self.prefix}_{suffix}"
        with self.admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(
                f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
            )
        self.names.append(name)
        return name

    def drop_all(self) -> None:
        """Drop the databases made. Without ``FORCE``: the run's connections are closed, and
        a plain DROP cancels an autovacuum worker busy in the database, where ``FORCE``
        fails unless the role may signal the worker's (``pg_signal_backend``)."""
        close_database()
        with self.admin.cursor() as cur:
            for name in self.names:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        self.admin.close()

    def settings(self) -> dict[str, str]:
        """The server settings the run was measured with."""
        with self.admin.cursor() as cur:
            cur.execute(
                "SELECT name, setting || COALESCE(unit, '') FROM pg_settings WHERE name IN "
                "('fsync', 'synchronous_commit', 'work_mem', 'shared_buffers', "
                "'maintenance_work_mem', 'effective_cache_size', 'random_page_cost', "
                "'max_wal_size', 'wal_level') ORDER BY name"
            )
            return dict(cur.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument(
        "--catch-up",
        action="store_true",
        help="every open invoice due for something today (a first run on old "
        "data) instead of a day in the life",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=1000,
        help="clients the per-client loop runs on (then scaled; 0: no loop)",
    )
    parser.add_argument(
        "--database",
        metavar="POSTGRESQL_URL",
        help="also run the cron on this PostgreSQL server (a role that may CREATE "
        "DATABASE) on the same data, beside the SQLite run",
    )
    args = parser.parse_args()
    if args.database and not args.database.startswith(("postgres://", "postgresql://")):
        parser.error("--database takes a postgresql:// URL (SQLite always runs)")
    folder = Path(tempfile.mkdtemp(prefix="gobiller-cron-bench-"))
    base = folder / "base.sqlite3"
    base_url = f"sqlite:///{base}"
    started = time.perf_counter()
    build(base_url, args.clients, args.catch_up)
    print(
        f"built {args.clients:,} clients / {args.clients * 10:,} invoices in "
        f"{time.perf_counter() - started:.1f} s (SQLite)",
        flush=True,
    )
    pg: PostgresCopies | None = None
    pg_url = ""
    if args.database:
        pg = PostgresCopies(args.database)
        template = pg.create("base")
        started = time.perf_counter()
        build(pg.url(template), args.clients, args.catch_up)
        built = time.perf_counter() - started
        started = time.perf_counter()
        pg_url = pg.url(pg.create("run", template=template))
        print(
            f"built the same on PostgreSQL in {built:.1f} s (COPY), cloned in "
            f"{time.perf_counter() - started:.1f} s; server settings {pg.settings()}",
            flush=True,
        )
    for name in ("sql", "naive"):
        shutil.copy(base, folder / f"{name}.sqlite3")
    try:
        seconds, queries, acted, rule_seconds = timed_cron(base_url)
        pg_result = timed_cron(pg_url) if pg_url else None
        sql_seconds = baseline_sql(folder / "sql.sqlite3")
        cron_effects = effects(base_url)
        sql_effects = effects(f"sqlite:///{folder / 'sql.sqlite3'}")
        pg_effects = effects(pg_url) if pg_url else None
    finally:
        if pg is not None:
            pg.drop_all()
    sample = min(args.sample, args.clients)
    naive_sample = naive_loop(folder / "naive.sqlite3", sample) if sample else 0.0
    naive_seconds = naive_sample * args.clients / sample if sample else 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"cron: {seconds:.2f} s, {queries} queries, acted {acted}")
    print(f"seconds per rule: {rule_seconds}")
    print(f"hand-written SQL baseline: {sql_seconds:.2f} s (ratio {seconds / sql_seconds:.2f}x)")
    rules_alone = seconds - rule_seconds["check"]
    print(
        f"without the first daily run's file check ({rule_seconds['check']:.2f} s, SQLite's "
        f"quick_check, which the SQL does not do): {rules_alone:.2f} s "
        f"(ratio {rules_alone / sql_seconds:.2f}x)"
    )
    same = cron_effects == sql_effects
    print(f"same work: {'yes' if same else 'NO'} (cron {cron_effects}, SQL {sql_effects})")
    if sample:
        print(
            f"per-client ORM loop: {naive_sample:.2f} s for {sample} clients, scaled to "
            f"{naive_seconds:.1f} s for {args.clients:,} (cron is {naive_seconds / seconds:.1f}x "
            "faster)"
        )
    result: dict[str, object] = {
        "clients": args.clients,
        "invoices": args.clients * 10,
        "catch_up": args.catch_up,
        "seconds": round(seconds, 3),
        "baseline_sql_seconds": round(sql_seconds, 3),
        "ratio_vs_sql": round(seconds / sql_seconds, 2),
        "check_seconds": rule_seconds["check"],
        "ratio_vs_sql_without_check": round(rules_alone / sql_seconds, 2),
        "same_work": same,
        "rule_seconds": rule_seconds,
        "naive_seconds": round(naive_seconds, 1),
        "naive_sampled_clients": sample,
        "naive_scaled": True,
        "speedup_vs_naive": round(naive_seconds / seconds, 1) if sample else None,
        "peak_rss_mb": round(peak),
        "queries": queries,
        "acted": acted,
    }
    if pg_result is not None:
        pg_seconds, pg_queries, pg_acted, pg_rules = pg_result
        pg_same = pg_effects == cron_effects
        print(
            f"PostgreSQL cron: {pg_seconds:.2f} s beside SQLite {seconds:.2f} s on the same "
            f"data (ratio {pg_seconds / seconds:.2f}x), {pg_queries} queries, acted {pg_acted}"
        )
        print(f"PostgreSQL seconds per rule: {pg_rules} (SQLite {rule_seconds})")
        print(f"same work on PostgreSQL: {'yes' if pg_same else 'NO'} ({pg_effects})")
        result.update(
            postgres_seconds=round(pg_seconds, 3),
            ratio_postgres_vs_sqlite=round(pg_seconds / seconds, 2),
            postgres_rule_seconds=pg_rules,
            postgres_queries=pg_queries,
            postgres_same_work=pg_same,
        )
    print(json.dumps(result))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
