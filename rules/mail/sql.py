"""Set-based queuing: a template becomes one ``INSERT … SELECT`` (SQLite and PostgreSQL).

A cron run queues tens of thousands of emails; rendering each in Python costs
more than the rest of the run. Templates written in the plain subset of Jinja
that the built-in ones use are compiled to a SQL expression instead:

- literal text, and any expression of ``company`` alone (evaluated once, by Jinja);
- ``client.*`` and ``invoice.*`` merge fields;
- ``{% for item in invoice.items %}`` over ``item.description`` and ``item.amount``;
- ``{% if %}`` / ``{% else %}`` on a ``client``, ``invoice`` or ``company`` field.

Anything else (filters, other names, HTML parts, extras, secrets) compiles to
``None`` and ``rules.mail.outbox.queue`` renders with Jinja, as before.
Tests check that both paths write the same emails, byte for byte.

The cost is bounded as Jinja's path bounds it (``rules.mail.sandbox``): the ``company``
expressions render once under the render budget; a template whose literal text
passes ``OUTPUT_MAX`` (or ``ITEM_TEXT_MAX`` for each invoice item) is left to Jinja;
and an email whose subject or body comes out longer than ``OUTPUT_MAX`` (a field
far past its column's length, written around the validators) is marked failed by
the statement after the insert, as Jinja's path fails it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import nodes

from rules.errors import RuleError
from rules.mail.sandbox import OUTPUT_MAX, render_budget, render_within
from rules.mail.templates import merge_field_env
from store.bulk import insert_rows
from store.db import database
from store.queries import balance_due_sql

#: SQL of each ``client.<field>`` (aliases: c client, i invoice, cur currency).
CLIENT_FIELDS = {
    "id": "CAST(c.id AS TEXT)",
    "first_name": "c.first_name",
    "last_name": "c.last_name",
    "full_name": "(c.first_name || ' ' || c.last_name)",
    "company": "c.company",
    "email": "c.email",
    "address1": "c.address1",
    "address2": "c.address2",
    "city": "c.city",
    "state": "c.state",
    "postcode": "c.postcode",
    "country": "c.country",
}
INVOICE_TEXT = {
    "number": "i.number",
    "date": "CAST(i.date AS TEXT)",  # ISO text on both databases
    "due_date": "CAST(i.due_date AS TEXT)",
    "date_paid": "COALESCE(CAST(i.date_paid AS TEXT), '')",
    "status": "i.status",
    "payment_method": "i.payment_method",
    "tax_raw": "CAST(i.tax AS TEXT)",
    "tax2_raw": "CAST(i.tax2 AS TEXT)",
}
INVOICE_MONEY = {
    "subtotal": "i.subtotal",
    "tax": "i.tax",
    "tax2": "i.tax2",
    "total": "i.total",
    "balance": balance_due_sql("i"),  # total - credit - money received, as everywhere
}
INVOICE_TRUTH = {"tax_raw": "(i.tax != 0)", "tax2_raw": "(i.tax2 != 0)"}
#: How the reason of an email that failed before it was rendered begins.
NOT_RENDERED = "not rendered: "
#: Literal text the part for each invoice item may repeat.
ITEM_TEXT_MAX = 4096
#: What ``str.splitlines`` breaks at (``templates.LINE_BREAKS``): a subject's become spaces.
LINE_BREAK_CODES = (10, 13, 11, 12, 28, 29, 30, 133, 8232, 8233)


@dataclass(frozen=True)
class Dialect:
    """The few spellings SQLite and PostgreSQL disagree on."""

    name: str
    mark: str  # a parameter
    mod: str  # the modulo operator, as written in a statement with parameters

    def thousands(self, value: str) -> str:
        if self.name == "sqlite":
            return f"printf('%,d', {value})"
        return f"to_char({value}, 'FM999,999,999,999,999,999,990')"

    def zero_padded(self, value: str, width: str) -> str:
        if self.name == "sqlite":
            return f"printf('%0*d', {width}, {value})"
        return f"lpad(CAST({value} AS TEXT), {width}, '0')"

    def items(self, piece: str) -> str:
        """The invoice's items, each rendered by ``piece`` (over ``it``), in their order."""
        if self.name == "sqlite":  # a subquery's order is the order group_concat sees
            return (
                f"(SELECT COALESCE(group_concat({piece}, ''), '') FROM (SELECT description,"
                " amount FROM invoice_item WHERE invoice_id = i.id ORDER BY sort_order, id) it)"
            )
        return (
            f"(SELECT COALESCE(string_agg({piece}, '' ORDER BY it.sort_order, it.id), '')"
            " FROM invoice_item it WHERE it.invoice_id = i.id)"
        )

    def trimmed(self, value: str) -> str:
        """Python's ``str.strip()`` for the ASCII whitespace a subject can end with."""
        if self.name == "sqlite":
            return f"trim({value}, ' ' || char(9, 10, 11, 12, 13))"
        return f"btrim({value}, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13))"

    def by_key(self, table: str, alias: str, key: str) -> str:
        """A join of ``table`` as ``alias`` on its ``id`` = ``key`` (a column of the batch),
        written after ``JOIN``/``LEFT JOIN``: one index lookup per row of the batch.

        SQLite plans nothing else. PostgreSQL's planner, costing a lookup as a random read
        (``random_page_cost`` 4, the server default), joined a batch of 5,000 notices by
        walking ``invoice_pkey`` from its first entry to the batch's highest id (a merge
        join: 520,000 entries read, 116 ms of a 181 ms read on a 1,000,000-invoice
        database), and ``client_pkey`` likewise; a ``LATERAL`` subquery with ``LIMIT``
        cannot be flattened into a join, so it is looked up per row whatever the costs.
        """
        if self.name == "sqlite":
            return f"{table} {alias} ON {alias}.id = {key}"
        return f"LATERAL (SELECT * FROM {table} WHERE id = {key} LIMIT 1) {alias} ON true"

    def one_line(self, value: str) -> str:
        """``value`` with every line break a space, as ``rules.mail.templates.subject_line``."""
        char = "char" if self.name == "sqlite" else "chr"
        for code in LINE_BREAK_CODES:
            value = f"replace({value}, {char}({code}), ' ')"
        return value


SQLITE = Dialect("sqlite", "?", "%")
POSTGRES = Dialect("postgres", "%s", "%%")


def dialect() -> Dialect:
    from store.db import is_postgres

    return POSTGRES if is_postgres() else SQLITE


class Unsupported(Exception):
    """The template uses something this compiler does not turn into SQL."""


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: tuple[Any, ...]
    uses_invoice: bool


@dataclass
class _Out:
    parts: list[str]
    params: list[Any]
    mark: str
    uses_invoice: bool = False

    def literal(self, text: str) -> None:
        if text:
            self.parts.append(self.mark)
            self.params.append(text)

    def sql(self, fragment: str, *params: Any) -> None:
        self.parts.append(fragment)
        self.params.extend(params)


def money(amount: str, sql: Dialect) -> str:
    """``store.money.format_money`` in SQL, over the currency row ``cur``: the sign, its
    prefix, thousands, its decimals, then its suffix (or its code when it has neither)."""
    decimals = "cur.decimals"
    scale = (
        f"(CASE {decimals} WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000"
        " ELSE 10000 END)"
    )
    return (
        f"((CASE WHEN {amount} < 0 THEN '-' ELSE '' END) || cur.prefix"
        f" || {sql.thousands(f'abs({amount}) / {scale}')}"
        f" || (CASE {decimals} WHEN 0 THEN '' ELSE '.' ||"
        f" {sql.zero_padded(f'abs({amount}) {sql.mod} {scale}', decimals)} END)"
        " || (CASE WHEN cur.prefix = '' AND cur.suffix = '' THEN ' ' || cur.code"
        " ELSE cur.suffix END))"
    )


class _Compiler:
    def __init__(self, env: Any, company: dict[str, Any], sql: Dialect) -> None:
        self.env = env
        self.company = company
        self.sql = sql

    def body(self, body: list[nodes.Node], out: _Out, item: bool = False) -> None:
        for node in body:
            if isinstance(node, nodes.Output):
                for child in node.nodes:
                    if isinstance(child, nodes.TemplateData):
                        out.literal(child.data)
                    else:
                        self.expr(child, out, item)
            elif isinstance(node, nodes.For):
                self.loop(node, out, item)
            elif isinstance(node, nodes.If):
                self.branch(node, out, item)
            else:
                raise Unsupported(type(node).__name__)

    def expr(self, node: nodes.Expr, out: _Out, item: bool) -> None:
        if _names(node) <= {"company"}:
            out.literal(self._constant(node))
            return
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            owner, attr = node.node.name, node.attr
            if owner == "client" and attr in CLIENT_FIELDS:
                out.sql(f"COALESCE({CLIENT_FIELDS[attr]}, 'None')")
                return
            if owner == "invoice" and attr in INVOICE_TEXT:
                out.uses_invoice = True
                out.sql(INVOICE_TEXT[attr])
                return
            if owner == "invoice" and attr in INVOICE_MONEY:
                out.uses_invoice = True
                out.sql(money(INVOICE_MONEY[attr], self.sql))
                return
            if item and owner == "item" and attr == "description":
                out.sql("it.description")
                return
            if item and owner == "item" and attr == "amount":
                out.sql(money("it.amount", self.sql))
                return
        raise Unsupported(repr(node))

    def loop(self, node: nodes.For, out: _Out, item: bool) -> None:
        if (
            item
            or node.else_
            or node.test is not None
            or node.recursive
            or not isinstance(node.target, nodes.Name)
            or node.target.name != "item"
            or not isinstance(node.iter, nodes.Getattr)
            or not isinstance(node.iter.node, nodes.Name)
            or (node.iter.node.name, node.iter.attr) != ("invoice", "items")
        ):
            raise Unsupported("only `for item in invoice.items`")
        inner = _Out([], [], self.sql.mark)
        self.body(node.body, inner, item=True)
        if _literal_size(inner.params) > ITEM_TEXT_MAX:
            raise Unsupported("too much text repeated for each item")
        piece = _joined(inner.parts)
        out.uses_invoice = True
        out.sql(self.sql.items(piece), *inner.params)

    def branch(self, node: nodes.If, out: _Out, item: bool) -> None:
        if node.elif_:
            raise Unsupported("elif")
        test = node.test
        then, otherwise = _Out([], [], self.sql.mark), _Out([], [], self.sql.mark)
        if _names(test) <= {"company"}:
            chosen = node.body if self._truthy(test) else node.else_
            self.body(chosen, out, item)
            return
        if not (isinstance(test, nodes.Getattr) and isinstance(test.node, nodes.Name)):
            raise Unsupported("if on an expression")
        owner, attr = test.node.name, test.attr
        if owner == "invoice" and attr in INVOICE_TRUTH:
            condition = INVOICE_TRUTH[attr]
            out.uses_invoice = True
        elif owner == "invoice" and attr in INVOICE_TEXT:
            condition = f"({INVOICE_TEXT[attr]} != '')"
            out.uses_invoice = True
        elif owner == "client" and attr in CLIENT_FIELDS:
            condition = f"(COALESCE({CLIENT_FIELDS[attr]}, '') != '')"
        else:
            raise Unsupported(f"if on {owner}.{attr}")
        self.body(node.body, then, item)
        self.body(node.else_, otherwise, item)
        out.uses_invoice |= then.uses_invoice or otherwise.uses_invoice
        out.sql(
            f"(CASE WHEN {condition} THEN {_joined(then.parts)}"
            f" ELSE {_joined(otherwise.parts)} END)",
            *then.params,
            *otherwise.params,
        )

    def _constant(self, node: nodes.Expr) -> str:
        return self._render([nodes.Output([node])])

    def _truthy(self, node: nodes.Node) -> bool:
        test = nodes.If(node, [nodes.Output([nodes.Const("1")])], [], [])
        return bool(self._render([test]))

    def _render(self, body: list[nodes.Node]) -> str:
        """Render a piece of the template that depends on ``company`` alone, by Jinja,
        under the render budget (over it, the template is left to Jinja's path)."""
        code = self.env.compile(nodes.Template(body, lineno=1))
        template = self.env.template_class.from_code(self.env, code, dict(self.env.globals))
        with render_budget():
            return render_within(template, {"company": self.company})


def _joined(parts: list[str]) -> str:
    """SQL text concatenating ``parts`` (the empty string when there are none)."""
    return " || ".join(parts) or "''"


def _literal_size(params: list[Any] | tuple[Any, ...]) -> int:
    return sum(len(p) for p in params if isinstance(p, str))


def _names(node: nodes.Node) -> set[str]:
    return {n.name for n in node.find_all(nodes.Name)} | (
        {node.name} if isinstance(node, nodes.Name) else set()
    )


@lru_cache(maxsize=64)
def compile_template(
    source: str,
    company: tuple[tuple[str, Any], ...],
    sql: Dialect = SQLITE,
) -> Compiled | None:
    """The SQL text expression of ``source`` (see the module doc), or None."""
    env = merge_field_env()
    try:
        tree = env.parse(source)
        out = _Out([], [], sql.mark)
        _Compiler(env, dict(company), sql).body(tree.body, out)
    except Exception:  # Unsupported, or anything unexpected: render with Jinja instead
        return None
    if _literal_size(out.params) > OUTPUT_MAX:
        return None
    return Compiled(_joined(out.parts), tuple(out.params), out.uses_invoice)


def insert(
    template_name: str,
    subject: Compiled,
    body: Compiled,
    rows: list[tuple[int, int | None, str | None]],
    *,
    invoice_mail: bool,
    marketing: bool,
    stamp: str,
    subject_max: int,
) -> int:
    """Queue ``rows`` (client, invoice, unique key) in one statement; return how many
    were new (a unique key already queued is skipped)."""
    sql = dialect()
    m = sql.mark
    cursor = database.cursor()
    serial = "INTEGER PRIMARY KEY" if sql is SQLITE else "SERIAL PRIMARY KEY"
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS queued_notice "
        f"(n {serial}, client_id INTEGER, invoice_id INTEGER, unique_key TEXT)"
    )
    if sql is SQLITE:
        cursor.execute("DELETE FROM queued_notice")
        insert_rows("queued_notice", ("client_id", "invoice_id", "unique_key"), rows)
    else:
        # PostgreSQL: autovacuum never sees a temporary table. Emptied by DELETE it kept
        # every earlier batch's pages, and without statistics the planner took 2,793 rows
        # for 65,088 and joined them by hashing the whole invoice table: TRUNCATE keeps it
        # the size of this batch, ANALYZE tells the planner that size (index lookups).
        cursor.execute("TRUNCATE queued_notice")
        insert_rows("queued_notice", ("client_id", "invoice_id", "unique_key"), rows)
        cursor.execute("ANALYZE queued_notice")
    client = sql.by_key("client", "c", "n.client_id")
    invoice = sql.by_key("invoice", "i", "n.invoice_id")
    cursor.execute(
        f"SELECT n.client_id, n.invoice_id, c.id IS NULL FROM queued_notice n"
        f" LEFT JOIN {client} LEFT JOIN {invoice}"
        f" WHERE c.id IS NULL OR ({m} AND i.id IS NULL) LIMIT 1",
        (subject.uses_invoice or body.uses_invoice,),
    )
    missing = cursor.fetchone()
    if missing:
        client_id, invoice_id, no_client = missing
        raise RuleError(f"no client {client_id}" if no_client else f"no invoice {invoice_id}")
    to = "COALESCE(bc.email, c.email)" if invoice_mail else "c.email"
    # As ``templates.subject_line`` does: line breaks become spaces, the ends are stripped.
    subject_line = sql.trimmed(sql.one_line(subject.sql))
    verb, tail = (
        ("INSERT OR IGNORE", "") if sql is SQLITE else ("INSERT", " ON CONFLICT DO NOTHING")
    )
    statement = (
        f'{verb} INTO "email" ("client_id", "template", "to", "subject", "body_text",'
        ' "body_html", "masked_body", "unique_key", "marketing", "created_at",'
        ' "next_attempt_at", "status", "message_id", "attempts", "lease_owner", "last_error")'
        f" SELECT c.id, {m}, {to}, substr({subject_line}, 1, {m}),"
        f" {body.sql}, '', '', n.unique_key, {m}, {m}, {m}, 'queued', '', 0, '', ''"
        f" FROM queued_notice n JOIN {client} LEFT JOIN {invoice}"
        " LEFT JOIN currency cur ON cur.id = c.currency_id"
        f" LEFT JOIN {sql.by_key('contact', 'bc', 'c.billing_contact_id')}"
        f" ORDER BY n.n{tail}"
    )
    params = [
        template_name,
        *subject.params,
        subject_max,
        *body.params,
        marketing,
        stamp,
        stamp,
    ]
    cursor.execute(statement, params)
    queued = int(cursor.rowcount)
    # As Jinja's path fails an email over the output budget, so does this one (the
    # subject is cut to its length above). The rows are a range of ``email_due``.
    cursor.execute(
        f"UPDATE email SET status = 'failed', subject = '', body_text = '', last_error = {m}"
        f" WHERE status IN ('queued', 'sending') AND marketing = {m}"
        f" AND next_attempt_at = {m} AND template = {m} AND length(body_text) > {m}",
        (
            f"{NOT_RENDERED}body: renders to more than {OUTPUT_MAX:,} characters",
            marketing,
            stamp,
            template_name,
            OUTPUT_MAX,
        ),
    )
    return queued
