"""The client list's queries: one page of rows, a capped count, substring search.

The staff app shows a million clients by reading only the rows on screen: a page
is one query (LIMIT/OFFSET over an index), and a search goes through the
``client_search`` index over ``client.search_text`` (migrations 0003 and 0006: FTS5
trigram on SQLite, pg_trgm on PostgreSQL) instead of scanning the table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from peewee import JOIN, SQL, Case, Expression, NodeList

from store.db import is_postgres
from store.keys import fold, phone_digits, search_fold
from store.models import Client, ClientGroup

SORTS = ("name", "id", "created")
#: A search looks at this many matching clients at most; more means "refine the search".
SEARCH_CAP = 1_000
#: Trigram indexes need three characters; shorter terms fall back to prefix ranges.
MIN_TRIGRAM = 3


@dataclass(frozen=True)
class ListQuery:
    search: str = ""
    status: str | None = None
    group_id: int | None = None
    sort: str = "name"
    descending: bool = False


@dataclass(frozen=True)
class ListRow:
    id: int
    first_name: str
    last_name: str
    company: str
    email: str
    status: str
    group_name: str
    group_colour: str
    created_at: dt.datetime


def _candidates(term: str, cap: int) -> Any:
    """Ids of up to ``cap`` clients matching ``term``, from an index, never a table scan.

    The term is folded as ``client.search_text`` is (``store.keys.search_fold``: full
    Unicode case folding, so "émile zola" finds "Émile Zola" and "weiss" finds "Weiß"),
    so matching is exact substring search, the same on both databases. Three or more
    characters: a substring of name, company, email or phone through the trigram index; a
    term typed like a phone number also matches without its separators, as the number is
    kept ("+44 20 7183 8750" finds +442071838750). Shorter terms (a CJK surname is often
    one character): a prefix of the first or last name (as typed, folded or capitalised)
    or of the email key, through their indexes.
    """
    folded = search_fold(term)
    if len(folded) >= MIN_TRIGRAM:
        alternatives = [folded]
        digits = phone_digits(folded)
        if digits and digits != folded and len(digits) >= MIN_TRIGRAM:
            alternatives.append(digits)
        if is_postgres():
            likes = " OR ".join("body LIKE %s ESCAPE '\\'" for _ in alternatives)
            return SQL(
                f"SELECT client_id FROM client_search WHERE {likes} LIMIT %s",
                (*("%" + _escape_like(a) + "%" for a in alternatives), cap),
            )
        # A trigram phrase is an exact substring test (case_sensitive 1 over folded text).
        match = " OR ".join('"' + a.replace('"', '""') + '"' for a in alternatives)
        return SQL(
            "SELECT rowid FROM client_search WHERE client_search MATCH ? LIMIT ?",
            (match, cap),
        )
    # One index range per column and spelling, each stopping at ``cap`` rows: an OR of
    # ranges would gather every match of a common letter before any LIMIT applies.
    spellings = (term, folded, folded[:1].upper() + folded[1:])
    ranges = [
        (column, variant)
        for variant in dict.fromkeys(spellings)
        for column in ('"last_name"', '"first_name"')
    ]
    ranges.append(('"email_key"', fold(term)))
    mark = "%s" if is_postgres() else "?"
    parts = [
        f"SELECT id FROM (SELECT id FROM client WHERE {column} >= {mark} "
        f"AND {column} < {mark} LIMIT {mark}) AS r{n}"
        for n, (column, _) in enumerate(ranges)
    ]
    params: list[Any] = [v for _, variant in ranges for v in (variant, variant + "\uffff", cap)]
    return SQL(" UNION ".join(parts), params)


def _search_condition(term: str, cap: int = SEARCH_CAP) -> Expression | None:
    term = term.strip()
    if not term:
        return None
    candidates = _candidates(term, cap)
    if isinstance(candidates, SQL):
        candidates = NodeList((candidates,), parens=True)
    condition: Expression = Client.id.in_(candidates)
    typed = typed_id(term)
    if typed is not None:
        condition = condition | (Client.id == typed)
    return condition


def typed_id(term: str) -> int | None:
    """The client id a search term names, if it is one: "42" or "#42" (as the list and the
    profile show it); None for anything else."""
    number = term.strip().removeprefix("#")
    return int(number) if number.isdigit() and len(number) < 10 else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query: Any, q: ListQuery) -> Any:
    if q.status:
        query = query.where(Client.status == q.status)
    if q.group_id is not None:
        query = query.where(Client.group == q.group_id)
    condition = _search_condition(q.search, SEARCH_CAP + 1)
    if condition is not None:
        query = query.where(condition)
    return query


def _order(q: ListQuery) -> list[Any]:
    """The sort; a search that is a client id puts that client first, whatever the sort
    (typing ``281`` then Enter opens #281, not a client whose phone holds 281)."""
    columns = {
        "name": [Client.last_name, Client.first_name, Client.id],
        "id": [Client.id],
        "created": [Client.created_at, Client.id],
    }[q.sort if q.sort in SORTS else "name"]
    order = [c.desc() for c in columns] if q.descending else list(columns)
    typed = typed_id(q.search)
    if typed is not None:
        order.insert(0, Case(None, [(Client.id == typed, 0)], 1))
    return order


def fetch_page(q: ListQuery, offset: int, limit: int) -> list[ListRow]:
    """Rows ``offset`` .. ``offset+limit`` of the list, in one query."""
    query = Client.select(
        Client.id,
        Client.first_name,
        Client.last_name,
        Client.company,
        Client.email,
        Client.status,
        Client.created_at,
        ClientGroup.name,
        ClientGroup.colour,
    ).join(ClientGroup, JOIN.LEFT_OUTER, on=(Client.group == ClientGroup.id))
    query = _filtered(query, q).order_by(*_order(q)).limit(limit).offset(offset)
    return [
        ListRow(r[0], r[1], r[2], r[3], r[4], r[5], r[7] or "", r[8] or "", r[6])
        for r in query.tuples()
    ]


def count(q: ListQuery) -> int:
    """How many clients match; a search counts at most ``SEARCH_CAP + 1`` ("10,000+")."""
    return int(_filtered(Client.select(Client.id), q).count())
