"""Database work off the event loop, and the one way a screen shows its failure.

ARCHITECTURE.md (tui/): no query runs on the event loop. A screen calls the rules in
a thread (:func:`off_loop`, or a ``@work(thread=True)`` worker that wraps its body in
:func:`thread_connection`), gets typed messages back, and turns any failure into one
line beside its form with :func:`failure_text` (harlequin's ``src/harlequin/app.py``:
workers post messages; a failed worker is shown, never a crash). Peewee keeps one
connection per thread; a worker's thread closes its own when done, so no connection
outlives the work (PostgreSQL counts them; a reopened database leaves none behind).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

from rules.errors import DatabaseBusy, RuleError, refusal_of
from store.db import database
from tui.exits import Exit, failure, one_line

T = TypeVar("T")


@contextmanager
def thread_connection() -> Iterator[None]:
    """Around a thread's database work: close the connection this thread opened."""
    try:
        yield
    finally:
        real = database.obj
        if real is not None and not real.is_closed() and real.transaction_depth() == 0:
            real.close()


def _closing(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with thread_connection():
        return fn(*args, **kwargs)


async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread; the event loop keeps drawing and
    reading keys meanwhile. Its exception is raised here, unchanged."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, partial(_closing, fn, *args, **kwargs))


BUSY = "The database is busy (another program is writing): nothing was saved; try again"


def failure_text(exc: BaseException, *, internal: str = "nothing was saved") -> str:
    """One line for staff: a refusal in its own words, a database failure as the
    ``RuleError`` it stands for ("busy, try again" for a held lock), a configuration,
    lock or storage failure as the command line words it (``tui.exits.failure``),
    anything else as an internal error followed by ``internal`` (what became of the
    work; the screen and its edits stay either way)."""
    refusal = exc if isinstance(exc, RuleError) else refusal_of(exc)
    if isinstance(refusal, DatabaseBusy):
        return BUSY
    if refusal is not None:
        return one_line(str(refusal))
    code, text = failure(exc)  # the command line's words: configuration, locks, disk…
    if code != Exit.SOFTWARE:
        return text
    return f"Internal error ({type(exc).__name__}: {one_line(str(exc))}); {internal}"
