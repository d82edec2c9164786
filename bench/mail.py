"""Mail delivery throughput: the outbox flushed to a local SMTP server and into a Maildir.

    python bench/mail.py [--emails 100000] [--connections 4] [--mix 600] [--database URL]

Queues ``--emails`` emails (First Invoice Overdue Notice: a text body, no PDF) and flushes
them with ``rules.mail.delivery.flush`` to an aiosmtpd sink on 127.0.0.1 (a handler that
only counts, in a process of its own so it takes nothing from the flusher's interpreter),
then queues as many again and flushes them into a Maildir. Beside each, in the same run,
a baseline without a database: similar messages built with ``email.message.EmailMessage``
and sent by a bare ``smtplib`` loop over one reused connection to the same sink, and added
by a bare ``mailbox.Maildir`` loop. The ratios use those emails WITHOUT PDFs (a PDF is a
few milliseconds of rendering, ``bench/invoice_pdf.py``, which no baseline does); the rate for a
mix with invoice emails (a third "Invoice Created", each rendering its PDF) is printed
beside them. Goals (issue 14): SMTP >= 1.5x the bare smtplib loop; Maildir >= 2x the bare
mailbox.Maildir loop. The last line is one JSON object. ``--database`` takes an EMPTY
database (SQLite or PostgreSQL); default a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import mailbox
import multiprocessing
import os
import smtplib
import socket
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from rules.mail.delivery import MaildirTransport, SmtpTransport, flush  # noqa: E402
from rules.mail.outbox import OUTBOX_COLUMNS, queue  # noqa: E402
from store.bulk import bulk_insert  # noqa: E402
from store.config import SmtpConfig  # noqa: E402
from store.db import open_database, writer  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Email, utcnow  # noqa: E402
from store.settings import load_settings, save_settings  # noqa: E402

TEMPLATE = "First Invoice Overdue Notice"
BODY = (
    "Dear {name},\n\nThis is a billing notice that your invoice no. {n} which was generated "
    "on 01/11/2026 is now overdue.\n\nYour payment method is: Bank Transfer\n\n"
    "Invoice: {n}\nBalance Due: $12.00 USD\nDue Date: 15/11/2026\n\n"
    "You can log in to the client area to view and pay the invoice.\n\nDemo Hosting\n"
)


# ------------------------------------------------------------------------- the sink


def _sink(port: int, count: Any, ready: Any) -> None:
    """An aiosmtpd server that only counts what it accepts (its own process)."""
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def start_sink() -> tuple[multiprocessing.Process, int, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    count = multiprocessing.Value("q", 0)
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=_sink, args=(port, count, ready), daemon=True)
    process.start()
    ready.wait(30)
    return process, port, count


# ------------------------------------------------------------------------- the outbox


def queue_plain(n: int, first: int) -> None:
    """``n`` queued emails of ``TEMPLATE`` (no PDF), rows as ``rules.mail.outbox`` writes."""
    stamp = utcnow() - dt.timedelta(seconds=1)
    rows = [
        (
            None,
            TEMPLATE,
            f"client{i}@example.com",
            f"First Overdue Notice: invoice {i}",
            BODY.format(name=f"Client {i}", n=i),
            "",
            "",
            None,
            False,
            stamp,
            stamp,
            "queued",
            "",
            0,
            "",
            "",
        )
        for i in range(first, first + n)
    ]
    for start in range(0, n, 20_000):
        with writer():
            bulk_insert(Email, OUTBOX_COLUMNS, rows[start : start + 20_000])


def queue_mix(n: int) -> None:
    """``n`` emails, a third of them "Invoice Created" (each carries its invoice's PDF)."""
    spec = importlib.util.spec_from_file_location("bench_queueing", HERE / "queueing.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    invoices = n // 3
    notices = builder.build(invoices)
    with writer():
        queue("Invoice Created", notices)
    queue_plain(n - invoices, 10_000_000)


# ------------------------------------------------------------------------- baselines


def similar_message(i: int, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Demo Hosting <{sender}>"
    msg["To"] = f"client{i}@example.com"
    msg["Subject"] = f"First Overdue Notice: invoice {i}"
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = f"<bare.{i}@demo.example>"
    msg["X-GoBiller-Template"] = TEMPLATE
    msg.set_content(BODY.format(name=f"Client {i}", n=i))
    return msg


def bare_smtp(n: int, port: int, sender: str) -> float:
    started = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
    for i in range(n):
        smtp.send_message(similar_message(i, sender))
    smtp.quit()
    return time.perf_counter() - started


def bare_maildir(n: int, path: Path, sender: str) -> float:
    started = time.perf_counter()
    box = mailbox.Maildir(str(path), create=True)
    for i in range(n):
        box.add(similar_message(i, sender))
    return time.perf_counter() - started


def timed_flush(transport: Any) -> tuple[float, int]:
    started = time.perf_counter()
    result = flush(transport, batch=100)
    seconds = time.perf_counter() - started
    assert not result.errors, result.errors[:3]
    return seconds, result.sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emails", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--mix", type=int, default=600, help="emails in the mix (0: none)")
    parser.add_argument("--database", help="an EMPTY database URL (default: a temporary SQLite)")
    args = parser.parse_args()
    n = args.emails
    tmp = Path(tempfile.mkdtemp())
    open_database(args.database or f"sqlite:///{tmp}/bench.sqlite3")
    upgrade()
    save_settings({"company_name": "Demo Hosting", "company_email": "billing@demo.example"})
    sender = load_settings().company_email
    sink, port, count = start_sink()
    config = SmtpConfig(host="127.0.0.1", port=port, security="none", connections=args.connections)
    figures: dict[str, Any] = {"emails": n, "connections": args.connections}
    try:
        queue_plain(n, 1)
        smtp_s, sent = timed_flush(SmtpTransport(config, sender))
        assert sent == n and count.value == n, (sent, count.value)
        bare_smtp_s = bare_smtp(n, port, sender)
        assert count.value == 2 * n, count.value
        queue_plain(n, n + 1)
        maildir_s, sent = timed_flush(MaildirTransport(tmp / "Maildir"))
        assert sent == n and len(os.listdir(tmp / "Maildir" / "new")) == n
        bare_maildir_s = bare_maildir(n, tmp / "bare.Maildir", sender)
        if args.mix:
            queue_mix(args.mix)
            mix_s, sent = timed_flush(MaildirTransport(tmp / "mix.Maildir"))
            assert sent == args.mix, sent
            figures["mix_maildir_per_s"] = round(args.mix / mix_s)
    finally:
        sink.terminate()
    figures.update(
        smtp_per_s=round(n / smtp_s),
        bare_smtplib_per_s=round(n / bare_smtp_s),
        smtp_ratio=round(bare_smtp_s / smtp_s, 2),
        maildir_per_s=round(n / maildir_s),
        bare_maildir_per_s=round(n / bare_maildir_s),
        maildir_ratio=round(bare_maildir_s / maildir_s, 2),
        load=os.getloadavg()[0],
    )
    print(
        f"SMTP ({args.connections} connections): {figures['smtp_per_s']:,} emails/s; bare "
        f"smtplib loop, one connection: {figures['bare_smtplib_per_s']:,}/s; "
        f"ratio {figures['smtp_ratio']}x (goal >= 1.5x)"
    )
    print(
        f"Maildir: {figures['maildir_per_s']:,} emails/s; bare mailbox.Maildir loop: "
        f"{figures['bare_maildir_per_s']:,}/s; ratio {figures['maildir_ratio']}x (goal >= 2x)"
    )
    if args.mix:
        print(
            f"Maildir, a mix of {args.mix} with a third invoice emails (PDFs rendered): "
            f"{figures['mix_maildir_per_s']:,} emails/s"
        )
    print(f"load average {figures['load']:.2f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
