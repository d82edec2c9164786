"""The client list's queries: one page of rows, a capped count, substring search.

The staff app shows a million clients by reading only the rows on screen: a page
is one query (LIMIT/OFFSET over an index), and a search goes through the
``client_search`` index over ``client.search_text`` (migrations 0003 and 0006: FTS5
trigram on SQLite, pg_trgm on PostgreSQL) instead of scanning the table.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from peewee import JOIN, SQL, Case, Expression, NodeList

from store.db import is_postgres
from store.keys import fold, phone_digits, search_fold
from store.models import Client, ClientGroup

T = TypeVar("T")

SORTS = ("name", "id", "created")
#: A search looks at this many matching clients at most; more means "refine the search".
SEARCH_CAP = 1_000
#: Rows of one page of the list (the staff list reads and keeps pages of this size).
PAGE = 200
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


def _candidates(term: str, cap: int, first_by_name: int | None = None) -> Any:
    """Ids of up to ``cap`` clients matching ``term``, from an index, never a table scan.

    The term is folded as ``client.search_text`` is (``store.keys.search_fold``: full
    Unicode case folding, so "émile zola" finds "Émile Zola" and "weiss" finds "Weiß"),
    so matching is exact substring search, the same on both databases. Three or more
    characters: a substring of name, company, email or phone through the trigram index; a
    term typed like a phone number also matches without its separators, as the number is
    kept ("+44 20 7183 8750" finds +442071838750). Shorter terms (a CJK surname is often
    one character): a prefix of the first or last name (as typed, folded or capitalised)
    or of the email key, through their indexes.

    ``first_by_name``: only that many first clients in name order are wanted (a page of
    the list sorted by name, unfiltered). A last-name range then stops there: its index
    walks in that very order (last name, first name, id), so any match past that many is
    behind them all and cannot be on the page, and looking up its row (to sort the
    union) is wasted: ~800 of a common letter's ~2,500 lookups.
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
    by_name = first_by_name is not None

    def walk(column: str) -> str:
        if by_name and column == '"last_name"':
            return ' ORDER BY "last_name", "first_name", "id"'
        return ""

    def limit(column: str) -> int:
        if first_by_name is not None and column == '"last_name"':
            return min(cap, first_by_name)
        return cap

    parts = [
        f"SELECT id FROM (SELECT id FROM client WHERE {column} >= {mark} "
        f"AND {column} < {mark}{walk(column)} LIMIT {mark}) AS r{n}"
        for n, (column, _) in enumerate(ranges)
    ]
    params: list[Any] = [
        v for column, variant in ranges for v in (variant, variant + "\uffff", limit(column))
    ]
    return SQL(" UNION ".join(parts), params)


def _search_condition(
    term: str, cap: int = SEARCH_CAP, first_by_name: int | None = None
) -> Expression | None:
    term = term.strip()
    if not term:
        return None
    candidates = _candidates(term, cap, first_by_name)
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
    return int(number) if number.isdecimal() and len(number) < 10 else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query: Any, q: ListQuery, rows: int | None = None) -> Any:
    """``query`` narrowed to the list's filters and search; ``rows``: only that many first
    rows in the list's order are read (``_candidates``' ``first_by_name``)."""
    first_by_name = None
    if rows is not None and not (q.status or q.group_id is not None or q.descending):
        first_by_name = rows if q.sort == "name" else None
    if q.status:
        query = query.where(Client.status == q.status)
    if q.group_id is not None:
        query = query.where(Client.group == q.group_id)
    condition = _search_condition(q.search, SEARCH_CAP + 1, first_by_name)
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


#: First pages of one-character searches, kept per thread (each has its own connection)
#: while that connection sees the database unchanged. A one-character term is the costliest
#: search (a common letter matches tens of thousands of clients, a thousand of each range
#: looked up to sort them: 10-20 ms at a million clients) and there are few of them; it is
#: also the first key of every new search. SQLite only (``_database_state``).
_one_character_pages = threading.local()
#: Letters whose first page a list reader reads ahead while nobody types (``warm_steps``).
READ_AHEAD = "abcdefghijklmnopqrstuvwxyz"


def _database_state() -> tuple[int, int]:
    """What tells this thread's SQLite connection that the database changed: ``PRAGMA
    data_version`` (changes with any other connection's commit, https://sqlite.org/pragma.html
    #pragma_data_version) and the connection's own ``total_changes``. Two cheap reads."""
    db = Client._meta.database
    (version,) = db.execute_sql("PRAGMA data_version").fetchone()
    return int(version), int(db.connection().total_changes)


def fetch_page(q: ListQuery, offset: int, limit: int) -> list[ListRow]:
    """Rows ``offset`` .. ``offset+limit`` of the list, in one query (a one-character
    search's first page from this thread's last read of it while the database has not
    changed: ``_one_character_pages``)."""
    if offset or is_postgres() or len(search_fold(q.search.strip())) != 1:
        return _read_page(q, offset, limit)
    state = _database_state()
    kept: tuple[tuple[int, int], dict[Any, list[ListRow]]] | None = getattr(
        _one_character_pages, "kept", None
    )
    if kept is None or kept[0] != state:
        kept = _one_character_pages.kept = (state, {})
    rows = kept[1].get((q, limit))
    if rows is None:
        rows = kept[1][(q, limit)] = _read_page(q, offset, limit)
    return list(rows)


def _read_page(q: ListQuery, offset: int, limit: int) -> list[ListRow]:
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
    query = _filtered(query, q, offset + limit).order_by(*_order(q)).limit(limit).offset(offset)
    # The driver's rows as they come, one conversion (the creation time): peewee's row
    # wrapper converted nine values a row, a third of a millisecond of a 200-row page.
    created = Client.created_at.python_value
    return [
        ListRow(r[0], r[1], r[2], r[3], r[4], r[5], r[7] or "", r[8] or "", created(r[6]))
        for r in Client._meta.database.execute(query).fetchall()
    ]


def count(q: ListQuery) -> int:
    """How many clients match; a search counts at most ``SEARCH_CAP + 1`` ("10,000+")."""
    return int(_filtered(Client.select(Client.id), q).count())


#: What a search reads, warmed in this order: the name and email indexes (prefix terms),
#: the trigram index (longer terms), then the client rows a page reads; with how many
#: entries one step walks: about a millisecond of SQLite's time (trigram blocks are big),
#: as a keystroke's search waits for the step under way (3-6 ms steps before).
WARM_SQLITE = (
    ("client", "client_last_name_first_name", "last_name", 2_500),
    ("client", "client_first_name", "first_name", 2_500),
    ("client", "client_email_key", "email_key", 2_500),
    ("client_search_data", None, "id", 50),
    ("client", None, "id", 500),
)


def warm_steps() -> list[Callable[[], bool]]:
    """Small reads that bring the pages a search touches into this connection's reach
    (SQLite's page cache and memory map are per connection). Each call of a step walks
    a few thousand entries, a few milliseconds, and says whether it has more to walk: a
    reader runs them while nobody types, so the first key of a new term does not wait
    for cold pages. None on PostgreSQL (its buffers are shared by every connection)."""
    if is_postgres():
        return []
    db = Client._meta.database
    steps: list[Callable[[], bool]] = []
    for table, index, column, entries in WARM_SQLITE:
        indexed = f"INDEXED BY {index}" if index else ""
        sql = (
            f'SELECT "{column}" FROM "{table}" {indexed} WHERE "{column}" > ? '
            f'ORDER BY "{column}" LIMIT 1 OFFSET {entries}'
        )

        def step(sql: str = sql, after: list[Any] = ["" if index else 0]) -> bool:  # noqa: B006
            row = db.execute_sql(sql, (after[0],)).fetchone()
            if row is None:
                return False
            after[0] = row[0]
            return True

        steps.append(step)
    for letter in READ_AHEAD:  # the first key of a new search finds its page read

        def read_ahead(letter: str = letter) -> bool:
            fetch_page(ListQuery(search=letter), 0, PAGE)
            return False

        steps.append(read_ahead)
    return steps


Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class ListReader:
    """One thread and one connection for the client list's searches and counts.

    Textual runs thread workers on a pool of threads and peewee gives each thread its own
    connection, so a keystroke landing on a thread that had not searched yet paid for a
    cold connection (the schema parsed again, an empty page cache and memory map). The
    list's reads go to this thread instead (``call`` blocks the calling thread until its
    answer is in, in order; ``ask`` awaits it on the event loop); after ``warm()``, while
    no read waits, it runs ``warm_steps``.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._warm: list[Callable[[], bool]] = []
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def _put(self, job: Job | None) -> None:
        with self._starting:  # started by the first read (from any worker), not before
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="client-list-reader", daemon=True
                )
                self._thread.start()
        self._jobs.put(job)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the reader's thread; its result, or its exception raised here."""
        return self.submit(fn, *args).result()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """``fn(*args)`` queued on the reader's thread now; its answer, once in, in the
        future returned (cancelling it before the reader has started drops the read)."""
        future: Future[T] = Future()
        self._put((future, fn, args))
        return future

    async def ask(self, fn: Callable[..., T], *args: Any) -> T:
        """``call`` for a coroutine on an event loop: the answer comes straight back to the
        loop (one thread hop each way, no thread in between). Cancelling the awaiting task
        before the reader has started the read drops the read (a newer keystroke's search
        makes the older one's read pointless)."""
        return await answer(self.submit(fn, *args))

    def warm(self) -> None:
        """Start walking the search's pages between reads (``warm_steps``)."""
        self._put((Future(), self._start_warming, ()))

    def _start_warming(self) -> None:
        self._warm = warm_steps()

    def close(self) -> None:
        """Let the thread end (after the reads already asked for); it closes its connection."""
        if self._thread is not None:
            self._jobs.put(None)

    def _run(self) -> None:
        try:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    if self._warm:
                        try:
                            if not self._warm[0]():
                                self._warm.pop(0)
                        except Exception:  # warming is a nicety: never a failure
                            self._warm.clear()
                        continue
                    job = self._jobs.get()
                if job is None:
                    return
                future, fn, args = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)
        finally:
            Client._meta.database.close()


async def answer(future: Future[T]) -> T:
    """Await a ``ListReader.submit`` future on the event loop; cancelled, the read is
    dropped at once if the reader has not started it."""
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        future.cancel()  # now, not once the loop gets round to it: the reader may be free
        raise
