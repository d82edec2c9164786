"""No traceback reaches a user (issue 10, "Also deliver"): generated input at every door.

Each door is driven with generated input (structure, size, numbers, text encodings,
dates and times at and beyond their limits) and must either accept it, or refuse it
with a message through one of the project's own error types, with the database
unchanged (a fingerprint of every row of every table before and after). Any other
exception (KeyError, TypeError, a ValueError from deep inside, OverflowError,
UnicodeEncodeError, RecursionError...) is a bug and fails the test. The doors:

- ``gobiller import``: ``rules.interchange.import_document`` in process on mutations of a
  real export, ``load_document``/``import_file`` on generated text and bytes, and a few
  real ``gobiller import FILE`` runs;
- every validator of ``rules.clients.validation`` and ``store.settings.validate_setting`` (and
  ``save_settings``) for every setting name;
- the reference-data save (``rules.interchange.reference.save``) for each kind;
- the staff-editable templates (``rules.mail.templates.check_template`` / ``save_template``);
- command-line options through click's ``CliRunner``: ``cron --date/--only``, ``explain``,
  ``mail list --status``, ``mail mass --filter``, ``demo --clients``.

Runs on a SQLite file (derandomized, so CI sees the same inputs every run); the count of
inputs fuzzed is printed by the last test.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.audit import SYSTEM_CLI
from rules.clients import validation
from rules.errors import FieldError, RuleError
from rules.interchange.checking import load_document
from rules.interchange.export import build_export, dumps
from rules.interchange.importer import import_document, import_file
from rules.interchange.reference import KINDS
from rules.interchange.reference import save as save_reference
from rules.interchange.schema import ImportError_
from rules.mail.templates import check_template, save_template
from store.db import close_database, database, open_database
from store.migrate import upgrade
from store.settings import SETTING_NAMES, SettingsError, save_settings, validate_setting
from tui.cli import main
from tui.exits import Exit

pytestmark = pytest.mark.slow

#: The project's own refusals: anything else escaping a door is a bug.
REFUSALS: tuple[type[BaseException], ...] = (
    RuleError,
    ImportError_,
    FieldError,
    SettingsError,
    click.ClickException,
)

FUZZ = settings(
    max_examples=int(os.environ.get("GOBILLER_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

#: Inputs fuzzed in this session, printed by the last test (the lead's "inputs fuzzed").
FUZZED = [0]

# --------------------------------------------------------------------------- strategies

#: Characters that have broken text handling somewhere: controls (C0, DEL, C1), bidi
#: marks and overrides, line/paragraph separators, a lone combining mark, BOM,
#: noncharacters, astral emoji, the last code point and lone surrogates.
HOSTILE_CHARS = (
    "\x00\x01\t\n\r\x1b\x7f\x85\x9b\u061c\u200b\u200d\u200e\u200f\u202a\u202e\u2066\u2069"
    "\u2028\u2029\u0301\u0336\ufeff\ufffe\uffff\U0001f600\U0001f1ec\U0001f1e7\U0010ffff"
    "\ud800\udbff\udc00\udfff\u05d0\u0627"
)
chars = st.one_of(st.characters(), st.sampled_from(HOSTILE_CHARS))
short_text = st.lists(chars, max_size=24).map("".join)  # st.text drops surrogates
EDGE_DATES = [
    "0001-01-01",
    "0000-00-00",
    "1969-12-31",
    "1970-01-01",
    "2026-02-29",
    "2028-02-29",
    "2026-13-01",
    "2100-12-31",
    "2101-01-01",
    "9999-12-31",
    "10000-01-01",
    "-2026-01-01",
    "2026-1-1",
    "2026-01-01T00:00:00",
    "2026-01-01T24:00:00Z",
    "2026-01-01T23:59:60Z",
    "2026-06-30T12:00:00+14:00",
    "2026-06-30T12:00:00-99:00",
    "9999-12-31T23:59:59.999999+00:00",
    "0001-01-01T00:00:00+01:00",
    "1e400",
    "",
    " 2026-01-01 ",
    "２０２６-０１-０１",
]
dates = st.one_of(
    st.sampled_from(EDGE_DATES),
    st.dates().map(dt.date.isoformat),
    st.datetimes(timezones=st.timezones()).map(dt.datetime.isoformat),
)
texts = st.one_of(
    short_text,
    dates,
    st.sampled_from(["a" * 501, "é" * 5001, "x" * 100_001, "1" * 5000, "NaN", "-0", "1e999"]),
)
HUGE = [0, -1, 2**31, 2**53 + 1, 2**63, -(2**63) - 1, 10**30, 10**400, -(10**400)]
numbers = st.one_of(
    st.integers(),
    st.sampled_from(HUGE),
    st.floats(),
    st.decimals(),
    st.sampled_from([Decimal("1E+999999"), Decimal("-1E-999999"), Decimal("NaN"), Decimal("Inf")]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(short_text, inner, max_size=4)
    ),
    max_leaves=12,
)


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


hostile_values = st.one_of(
    values, st.sampled_from([50, 200]).map(_deep), st.just(200).map(lambda n: {"a": _deep(n)})
)

# --------------------------------------------------------------------------- databases


def _open(path: Path) -> str:
    close_database()
    url = f"sqlite:///{path}"
    open_database(url)
    upgrade()
    return url


class World:
    """A pristine empty database, a demo database, and the demo's export document."""

    def __init__(self, root: Path) -> None:
        from rules.demo import generate_demo

        self.root = root
        self.empty = root / "empty.sqlite3"
        _open(self.empty)
        close_database()
        self.demo = root / "demo.sqlite3"
        _open(self.demo)
        generate_demo(3, seed=7, today=dt.date(2026, 6, 15))
        self.doc = json.loads(dumps(build_export()))
        close_database()

    def fresh(self, source: Path, name: str) -> str:
        target = self.root / name
        close_database()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(source, target)
        return _open(target)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("fuzz"))
    yield w
    close_database()


def fingerprint() -> str:
    """A hash of every row of every table (the databases here are small)."""
    digest = hashlib.sha256()
    for table in sorted(database.get_tables()):
        rows = database.execute_sql(f'SELECT * FROM "{table}"').fetchall()
        digest.update(table.encode())
        for row in sorted(repr(r) for r in rows):
            digest.update(row.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def attempt(call: Callable[[], Any]) -> bool:
    """Run one fuzzed call: True when accepted; on a refusal, check it says why and
    changed nothing. Any other exception propagates (a bug)."""
    FUZZED[0] += 1
    before = fingerprint()
    try:
        call()
    except REFUSALS as exc:
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        assert message.strip(), f"{type(exc).__name__} without a message"
        assert fingerprint() == before, f"refused ({message}) but the database changed"
        return False
    return True


# --------------------------------------------------------------------------- import


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if len(path) > 8:  # not into a generated deep value
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with one to three nodes replaced, removed, duplicated or given extra keys."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "copy"]))
        if not path:
            if op == "replace":
                doc = draw(hostile_values)
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        if op == "replace":
            parent[last] = draw(hostile_values)
        elif op == "delete":
            del parent[last]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(short_text)] = draw(hostile_values)
        elif op == "copy" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    return doc


@pytest.fixture
def empty_db(world: World) -> str:
    return world.fresh(world.empty, "import.sqlite3")


@FUZZ
@given(data=st.data())
def test_import_document_accepts_or_refuses(world: World, empty_db: str, data: Any) -> None:
    doc = data.draw(mutated(world.doc))
    if attempt(lambda: import_document(doc)):
        world.fresh(world.empty, "import.sqlite3")  # the next document meets an empty one


DOCUMENT_TEXTS = st.one_of(
    st.sampled_from(
        [
            "[" * 100_000 + "]" * 100_000,
            '{"format": ' + "[" * 5000 + "]" * 5000 + "}",
            '{"format": "gobiller/1", "settings": {"daily_hour": ' + "9" * 5000 + "}}",
            '{"format": "gobiller/1", "settings": {"daily_hour": 1' + "0" * 400 + ".5}}",
            '{"format": "gobiller/1", "settings": {"daily_hour": 1e999999999}}',
            '{"format": "gobiller/1", "settings": {"daily_hour": NaN}}',
            '{"format": "gobiller/1", "settings": {"daily_hour": -Infinity}}',
            '{"format": "gobiller/1", "format": "gobiller/1"}',
            '{"format": "gobiller/1", "clients": [{"id": 1, "id": 2}]}',
            '{"format": "gobiller/1", "settings": {"company_name": "\\ud800"}}',
            '{"format": "gobiller/1", "settings": {"company_name": "a\\u0000b"}}',
            "\ufeff{}",
            "",
            "null",
            '"\\ud800"',
        ]
    ),
    st.lists(chars, max_size=60).map("".join),
)


@FUZZ
@given(text=DOCUMENT_TEXTS, encoding=st.sampled_from(["utf-8", "utf-16", "latin-1", "raw"]))
def test_import_file_accepts_or_refuses(
    world: World, empty_db: str, text: str, encoding: str
) -> None:
    path = world.root / "doc.json"
    raw = (
        text.encode("utf-8", "surrogatepass")
        if encoding == "raw"
        else text.encode(encoding, "replace")
    )
    path.write_bytes(raw)
    if attempt(lambda: load_document(text)) and attempt(lambda: import_file(path)):
        world.fresh(world.empty, "import.sqlite3")


FILES = {
    "latin1.json": '{"format": "gobiller/1", "settings": {"company_name": "Caf\xe9"}}'.encode(
        "latin-1"
    ),
    "deep.json": b"[" * 100_000 + b"]" * 100_000,
    "huge-number.json": b'{"format": "gobiller/1", "settings": {"daily_hour": '
    + b"9" * 5000
    + b"}}",
    "nan.json": b'{"format": "gobiller/1", "settings": {"daily_hour": NaN}}',
    "duplicate.json": b'{"format": "gobiller/1", "format": "gobiller/1"}',
    "surrogate.json": b'{"format": "gobiller/1", "settings": {"company_name": "\\udfff"}}',
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_gobiller_import_file_never_shows_a_traceback(world: World, name: str) -> None:
    url = world.fresh(world.empty, f"cli-{name}.sqlite3")
    close_database()
    path = world.root / name
    path.write_bytes(FILES[name])
    FUZZED[0] += 1
    run = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--database", url, "import", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        timeout=60,
    )
    assert run.returncode == Exit.REFUSED, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stderr.startswith(f"{path}: nothing imported"), run.stderr


# --------------------------------------------------------------------------- validators


@pytest.fixture
def demo_db(world: World) -> str:
    return world.fresh(world.demo, "demo-work.sqlite3")


@FUZZ
@given(
    value=hostile_values,
    other=hostile_values,
    limit=st.integers(0, 600),
    required=st.booleans(),
    multiline=st.booleans(),
)
def test_validators_accept_or_refuse(
    demo_db: str, value: Any, other: Any, limit: int, required: bool, multiline: bool
) -> None:
    attempt(lambda: validation.clean_text(value, limit, required=required, multiline=multiline))
    attempt(lambda: validation.clean_email(value))
    attempt(lambda: validation.clean_country(value, required=required))
    country = other if isinstance(other, str) else "US"
    attempt(lambda: validation.clean_state(value, country))
    attempt(lambda: validation.clean_phone(value, country))
    attempt(lambda: validation.check_pattern(value))
    kinds = ["text", "textarea", "dropdown", "tickbox", "link", "password"]
    regex = other if isinstance(other, str) else ""
    for kind in kinds:
        attempt(lambda k=kind: validation.check_custom_value(k, ["a", "b"], regex, required, value))


@FUZZ
@given(name=st.sampled_from(SETTING_NAMES), value=hostile_values)
def test_every_setting_accepts_or_refuses(demo_db: str, name: str, value: Any) -> None:
    attempt(lambda: validate_setting(name, value))
    attempt(lambda: save_settings({name: value}))


@FUZZ
@given(kind=st.sampled_from(sorted(KINDS)), data=st.data())
def test_reference_save_accepts_or_refuses(
    world: World, demo_db: str, kind: str, data: Any
) -> None:
    record = data.draw(st.sampled_from(world.doc[KINDS[kind].section]))
    values = data.draw(mutated(record).filter(lambda v: isinstance(v, dict)))
    attempt(lambda: save_reference(kind, values, SYSTEM_CLI))


JINJA = [
    "{{ client.first_name }}",
    "{{ invoice.total }}",
    "{{",
    "{% if %}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "{{ 'a' * 10**7 }}",
    "{{ 'a' * 10**9 }}",
    "{{ 10**10**10 }}",
    "{{ 1/0 }}",
    "{{ client.nope.nope }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ 'x'|int(base=99) }}",
    "{{ '%s' % 1 }}",
    "{{ range(10**18)|list }}",
    "{{ lipsum(10**6) }}",
    "{{ client.first_name|center(10**9) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{% raw %}",
    "{% include 'x' %}",
    "{{ self }}",
]
template_text = st.one_of(
    texts, st.sampled_from(JINJA), st.lists(st.sampled_from(JINJA + ["x"]), max_size=3).map("".join)
)


VALID_TEMPLATE = {
    "name": "Mass Mail",
    "subject": "News for {{ client.first_name }}",
    "body_text": "Dear {{ client.first_name }},\n\n{{ signature }}",
    "body_html": "",
}


@FUZZ
@given(
    fuzzed=st.lists(st.sampled_from(sorted(VALID_TEMPLATE)), min_size=1, max_size=4, unique=True),
    data=st.data(),
)
def test_templates_accept_or_refuse(demo_db: str, fuzzed: list[str], data: Any) -> None:
    fields = dict(VALID_TEMPLATE)
    for key in fuzzed:  # the others stay valid, so the check reaches the render
        names = st.sampled_from(["Mass Mail", "Invoice Created", "New Template"])
        fields[key] = data.draw(st.one_of(names, short_text) if key == "name" else template_text)
    attempt(lambda: check_template(**fields))
    attempt(lambda: save_template(**fields, actor=SYSTEM_CLI))


# --------------------------------------------------------------------------- command line

arg_text = st.one_of(texts, st.sampled_from(["--", "-", "--help", "=", ",", "-1", "0"]))


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    which = draw(st.sampled_from(["cron", "explain", "list", "show", "mass", "demo"]))
    if which == "cron":
        args = ["cron", "--dry-run", "--json"] if draw(st.booleans()) else ["cron", "--dry-run"]
        if draw(st.booleans()):
            args += ["--date", draw(st.one_of(dates, arg_text))]
        if draw(st.booleans()):
            rules = st.sampled_from(["invoice", "notice", "late_fee", "capture", "status_update"])
            args += ["--only", draw(st.one_of(arg_text, st.lists(rules).map(",".join)))]
        return args
    if which == "explain":
        client = draw(st.one_of(st.sampled_from(["1", "2", "3", "0", "-1"]), arg_text))
        args = ["explain", client]
        if draw(st.booleans()):
            args += ["--date", draw(st.one_of(dates, arg_text))]
        return args
    if which == "show":
        return ["mail", "show", draw(st.one_of(st.sampled_from(HUGE).map(str), arg_text))]
    if which == "list":
        args = ["mail", "list"]
        if draw(st.booleans()):
            args += ["--status", draw(st.one_of(st.sampled_from(["queued", "sent"]), arg_text))]
        if draw(st.booleans()):
            args += ["--limit", draw(st.one_of(st.sampled_from(HUGE).map(str), arg_text))]
        if draw(st.booleans()):
            args += ["--client", draw(st.one_of(st.sampled_from(HUGE).map(str), arg_text))]
        return args
    if which == "mass":
        args = ["mail", "mass", "--dry-run"]
        keys = st.sampled_from(
            [
                "status",
                "group",
                "country",
                "currency",
                "has_active_product",
                "created_from",
                "created_to",
            ]
        )
        for _ in range(draw(st.integers(0, 3))):
            value = draw(st.one_of(dates, arg_text, st.sampled_from(["Active", "yes", "US,GB"])))
            args += ["--filter", draw(st.one_of(keys.map(lambda k, v=value: f"{k}={v}"), arg_text))]
        if draw(st.booleans()):
            args += ["--template", draw(st.one_of(st.just("Mass Mail"), arg_text))]
        return args
    return ["demo", "--clients", draw(st.one_of(st.sampled_from(HUGE).map(str), arg_text))] + (
        ["--date", draw(dates)] if draw(st.booleans()) else []
    )


@FUZZ
@given(args=command_lines(), as_json=st.booleans())
def test_command_line_options_accept_or_refuse(
    demo_db: str, args: list[str], as_json: bool
) -> None:
    if as_json and "--json" not in args and args[0] != "cron":
        args = [*args, "--json"]
    FUZZED[0] += 1
    before = fingerprint()
    result = CliRunner().invoke(main, ["--database", demo_db, *args])
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert isinstance(result.exception, SystemExit | None), repr(result.exception)
    assert result.exit_code != Exit.SOFTWARE, output
    open_database(demo_db)  # the command closed or replaced the connection
    if result.exit_code != 0:
        assert output.strip(), f"exit {result.exit_code} without a message"
        assert fingerprint() == before, f"refused ({output.strip()}) but the database changed"


# --------------------------------------------------------------------------- PostgreSQL

SMALL = settings(FUZZ, max_examples=max(FUZZ.max_examples // 4, 10))


@SMALL
@given(data=st.data())
def test_import_and_saves_accept_or_refuse_on_both_databases(
    world: World, db: str, data: Any
) -> None:
    """A smaller pass through the doors that write, on SQLite and PostgreSQL (whose
    column types and errors differ): an accepted import stays, so later documents meet
    its records."""
    door = data.draw(st.sampled_from(["import", "setting", "reference"]))
    if door == "import":
        doc = data.draw(mutated(world.doc))
        attempt(lambda: import_document(doc))
    elif door == "setting":
        name, value = data.draw(st.sampled_from(SETTING_NAMES)), data.draw(hostile_values)
        attempt(lambda: save_settings({name: value}))
    else:
        kind = data.draw(st.sampled_from(sorted(KINDS)))
        record = data.draw(st.sampled_from(world.doc[KINDS[kind].section]))
        values = data.draw(mutated(record).filter(lambda v: isinstance(v, dict)))
        attempt(lambda: save_reference(kind, values, SYSTEM_CLI))


# --------------------------------------------------------------------------- the count


def test_inputs_fuzzed_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    """Last in the module: the total for the lead's report ("inputs fuzzed")."""
    with capsys.disabled():
        print(f"\ninputs fuzzed: {FUZZED[0]}")
    if not FUZZED[0]:
        pytest.skip("run with the rest of the module")
