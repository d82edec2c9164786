"""Hostile values and staff code never stop the business (issue 10, kinds 1 and 2).

- One bad value stops all mail: a value no header can hold, or one that breaks a
  render, fails its own email with the reason (or, in the sender's settings, holds the
  mail with the reason); the rest of the outbox goes on. Values are written by direct
  SQL, around the validators, as an old database or another tool would hold them.
- Staff-editable code has unbounded cost: templates and custom-field patterns run
  under a budget, at save and at queue time, on both queuing paths.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from rules.audit import SYSTEM_CLI
from rules.clients.profile import update_client
from rules.clients.validation import (
    check_custom_value,
)
from rules.errors import FieldError, RuleError, ValidationError
from rules.interchange.reference import save as save_reference
from rules.mail.delivery import SmtpTransport, flush, resend
from rules.mail.outbox import Notice, queue
from rules.mail.templates import TemplateRefused, save_template
from store.config import SmtpConfig
from store.db import database, is_postgres, writer
from store.models import Client, CustomField, Email, EmailTemplate, Setting
from store.models.enums import EmailStatus
from tests.conftest import SmtpRecorder
from tests.integration.test_mail import Clock, _client, _invoice

SMTP = "billing@demo.example"


def _sql(statement: str, *params: Any) -> None:
    """Write around every validator, as another tool or an old database would."""
    with writer():
        database.execute_sql(statement.replace("?", database.param), params)


def _template_by_sql(name: str, body: str, subject: str = "News") -> None:
    _sql("UPDATE email_template SET body_text = ?, subject = ? WHERE name = ?", body, subject, name)


def _status(email: Email) -> tuple[str, str]:
    row = Email.get_by_id(email.id)
    return row.status, row.last_error


# --------------------------------------------------------------------------- kind 1


@pytest.mark.parametrize("set_based", [True, False], ids=["sql-path", "jinja-path"])
def test_one_bad_value_never_stops_the_mail(
    db: str, smtp_server: tuple[SmtpRecorder, SmtpConfig], set_based: bool
) -> None:
    recorder, config = smtp_server
    save_template(
        "Mass Mail",
        "News for {{ client.first_name }}",
        "Hello {{ client.full_name }}",
        "",
        SYSTEM_CLI,
    )
    clients = [_client(i) for i in range(5)]
    # A name with a line separator, written around the validators: the subject is one
    # line, the separator a space (both queuing paths).
    _sql("UPDATE client SET first_name = ? WHERE id = ?", "Ana\u2028Evil", clients[1].id)
    with writer():
        queue("Mass Mail", [Notice(c.id) for c in clients], set_based=set_based)
    # Rows no header can hold, as queued by an older version or by hand, due first.
    emails = {e.client_id: e for e in Email.select()}
    _sql("UPDATE email SET subject = ? WHERE id = ?", "Re\u2029set", emails[clients[2].id].id)
    _sql('UPDATE email SET "to" = ? WHERE id = ?', "x\u2028y@example.com", emails[clients[3].id].id)
    if not is_postgres():  # a time SQLite holds as text and no code expects
        _sql("UPDATE email SET created_at = ? WHERE id = ?", "garbage", emails[clients[4].id].id)
    clock = Clock()
    result = flush(SmtpTransport(config, SMTP), now=clock)
    good = 3 if is_postgres() else 2
    assert (result.sent, result.failed) == (good, 5 - good), result
    delivered = {m["To"]: m["Subject"] for m in recorder.parsed()}
    assert delivered == {
        "ana0@example.com": "News for Ana0",
        "ana1@example.com": "News for Ana Evil",
        **({"ana4@example.com": "News for Ana4"} if is_postgres() else {}),
    }
    subject_status, subject_reason = _status(emails[clients[2].id])
    assert subject_status == EmailStatus.FAILED and "linefeed" in subject_reason
    to_status, to_reason = _status(emails[clients[3].id])
    assert to_status == EmailStatus.FAILED and to_reason
    clock.advance(hours=1)
    assert flush(SmtpTransport(config, SMTP), now=clock).sent == 0  # nothing left stuck


@pytest.mark.parametrize("set_based", [True, False], ids=["sql-path", "jinja-path"])
def test_a_company_name_with_a_line_separator_never_stops_the_mail(
    db: str, smtp_server: tuple[SmtpRecorder, SmtpConfig], set_based: bool
) -> None:
    recorder, config = smtp_server
    clients = [_client(i) for i in range(2)]
    invoices = [_invoice(c, f"10{i}") for i, c in enumerate(clients)]
    with writer():  # around the settings' validation
        Setting.insert(key="company_name", value='"Demo\\u2028Hosting"').execute()
    with writer():
        queue(
            "Invoice Created",
            [Notice(c.id, i.id) for c, i in zip(clients, invoices, strict=True)],
            set_based=set_based,
        )
    result = flush(SmtpTransport(config, SMTP), now=Clock())
    assert (result.sent, result.failed) == (2, 0), result
    assert sorted(m["Subject"] for m in recorder.parsed()) == [
        "Invoice #100 from Demo Hosting",
        "Invoice #101 from Demo Hosting",
    ]


@pytest.mark.parametrize("set_based", [True, False], ids=["sql-path", "jinja-path"])
def test_one_email_that_cannot_be_rendered_fails_alone(db: str, set_based: bool) -> None:
    clients = [_client(i) for i in range(3)]
    _sql("UPDATE client SET first_name = ? WHERE id = ?", "Ann", clients[1].id)
    # Staff code that fails on one client's values only (saved before the check existed).
    _template_by_sql("Mass Mail", "{{ 100 // (client.first_name|length - 3) }} {{ client.id }}")
    with writer():
        assert queue("Mass Mail", [Notice(c.id) for c in clients], set_based=set_based) == 3
    by_client = {e.client_id: e for e in Email.select()}
    failed = by_client.pop(clients[1].id)
    assert failed.status == EmailStatus.FAILED and failed.body_text == ""
    assert failed.last_error.startswith("not rendered: body: ZeroDivisionError")
    assert {e.status for e in by_client.values()} == {EmailStatus.QUEUED}
    assert by_client[clients[0].id].body_text == f"100 {clients[0].id}"
    with pytest.raises(RuleError, match="never rendered"):
        resend(failed.id, SYSTEM_CLI)


# --------------------------------------------------------------------------- kind 2

#: Staff code that would run for hours or allocate gigabytes without a budget.
HOSTILE_TEMPLATES = [
    "{{ 'a' * 10**7 }}",
    "{{ 'a' * 10**9 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{{ client.full_name }}{% endfor %}",
    "{{ 'a'|center(10**9) }}",
    "{{ 'x'.zfill(10**9) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ 2 ** 100000000 }}",
    "{{ ('a' * 200000).replace('a', 'aaaa') }}",
    "{{ range(100000)|batch(10**9, 'x')|list|length }}",
    "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}"
    "{% endmacro %}{{ d('ab', 60) }}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
    "{% endfor %}{{ ns.l|length }}",
    "{% set x %}{% for i in range(100000) %}{{ 'a' * 200000 }}{% endfor %}{% endset %}"
    "{{ x|length }}",
]


@pytest.mark.parametrize("body", HOSTILE_TEMPLATES)
def test_staff_code_has_bounded_cost_when_saved(db: str, body: str) -> None:
    before = EmailTemplate.get(name="Mass Mail").body_text
    started = time.monotonic()
    with pytest.raises(TemplateRefused, match="body: ") as refused:
        save_template("Mass Mail", "Hi", body, "", SYSTEM_CLI)
    assert time.monotonic() - started < 2
    assert any(w in str(refused.value) for w in ("longer than", "exceed", "more than", "limit"))
    assert EmailTemplate.get(name="Mass Mail").body_text == before


@pytest.mark.parametrize("set_based", [True, False], ids=["sql-path", "jinja-path"])
@pytest.mark.parametrize("body", [HOSTILE_TEMPLATES[0], HOSTILE_TEMPLATES[2]], ids=["size", "time"])
def test_staff_code_has_bounded_cost_when_queued(db: str, set_based: bool, body: str) -> None:
    clients = [_client(i) for i in range(20)]
    _template_by_sql("Mass Mail", body)  # saved around the check, e.g. by an older version
    started = time.monotonic()
    with writer():
        assert queue("Mass Mail", [Notice(c.id) for c in clients], set_based=set_based) == 20
    assert time.monotonic() - started < 3  # one budget spent, not one per email
    rows = list(Email.select())
    assert {r.status for r in rows} == {EmailStatus.FAILED}
    assert all(r.last_error.startswith("not rendered: body: ") for r in rows)
    assert sum(len(r.body_text) for r in rows) == 0


@pytest.mark.parametrize("set_based", [True, False], ids=["sql-path", "jinja-path"])
def test_staff_code_has_bounded_cost_on_oversized_values(db: str, set_based: bool) -> None:
    """A template within budget for sane values, and an invoice whose items were written
    far past any sane size: that email fails on both paths, the other one goes."""
    small, huge = _client(1), _client(2)
    invoices = {small.id: _invoice(small, "1001"), huge.id: _invoice(huge, "1002")}
    _sql(
        "UPDATE invoice_item SET description = ? WHERE invoice_id = ?",
        "x" * 300_000,
        invoices[huge.id].id,
    )
    with writer():
        queue(
            "Invoice Created",
            [Notice(c.id, invoices[c.id].id) for c in (small, huge)],
            set_based=set_based,
        )
    by_client = {e.client_id: e for e in Email.select()}
    assert by_client[small.id].status == EmailStatus.QUEUED
    assert by_client[huge.id].status == EmailStatus.FAILED
    assert by_client[huge.id].last_error.startswith("not rendered: body: ")
    assert by_client[huge.id].body_text == ""


def test_custom_field_patterns_have_bounded_cost(db: str) -> None:
    """RE2 matches in linear time: the pattern that hangs Python's ``re`` is harmless, and
    patterns that need backtracking are refused at save with the reason."""
    field = {"type": "text", "options": [], "required": False, "admin_only": False}
    save_reference("custom_fields", {**field, "name": "Code", "regex": "(a+)+$"}, SYSTEM_CLI)
    started = time.monotonic()
    with pytest.raises(FieldError, match="does not match"):
        check_custom_value("text", [], "(a+)+$", False, "a" * 400 + "!")
    client = _client()
    spec = CustomField.get(CustomField.name == "Code")
    with pytest.raises(ValidationError, match="does not match"):
        update_client(
            client.id, client.version, {"custom_fields": {spec.id: "a" * 400 + "!"}}, SYSTEM_CLI
        )
    assert time.monotonic() - started < 1
    for pattern in (r"(a*)\1", r"(?=a)a", r"a{1000}{1000}"):
        with pytest.raises(ValidationError, match="not a valid pattern"):
            save_reference("custom_fields", {**field, "name": "Bad", "regex": pattern}, SYSTEM_CLI)
    assert not CustomField.select().where(CustomField.name == "Bad").exists()
    # A pattern stored around the check cannot be run: the value is refused with the reason.
    _sql("UPDATE custom_field SET regex = ? WHERE id = ?", r"(a*)\1", spec.id)
    with pytest.raises(ValidationError, match="format rule is not a valid pattern"):
        update_client(client.id, client.version, {"custom_fields": {spec.id: "aa"}}, SYSTEM_CLI)
    assert Client.get_by_id(client.id).version == client.version


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x1b", "\x85", "\u202e"])
def test_template_names_and_subjects_are_single_lines(db: str, char: str) -> None:
    before = EmailTemplate.get(name="Mass Mail").subject
    with pytest.raises(TemplateRefused, match="subject: "):
        save_template("Mass Mail", f"News{char}for you", "Hello", "", SYSTEM_CLI)
    with pytest.raises(TemplateRefused, match="name: "):
        save_template(f"Mass{char}Mail", "News", "Hello", "", SYSTEM_CLI)
    assert EmailTemplate.get(name="Mass Mail").subject == before
    assert EmailTemplate.select().where(EmailTemplate.name.contains(char)).count() == 0
