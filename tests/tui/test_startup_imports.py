"""Opening the staff app imports only what its first screen needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Libraries the client list never calls before a client is edited or imported, each
#: tens of milliseconds of import (phonenumbers ~35 ms, pycountry ~19 ms); on SQLite, the
#: PostgreSQL driver (~30 ms with ssl, imported by peewee itself) and peewee's migration
#: runner (~15 ms) when no migration is pending; the password hasher (argon2, ~5 ms) and
#: the login screen when staff are already signed in (bench/tui.py, snapshots).
NOT_AT_START = (
    "phonenumbers",
    "pycountry",
    "jinja2",
    "dateutil",
    "psycopg2",
    "playhouse.migrations",
    "argon2",
)


def test_opening_the_staff_app_imports_no_library_its_first_screen_does_not_call() -> None:
    """The list must paint within 0.35 s of starting at a million clients (issue 11);
    store.keys imported phonenumbers and pycountry for every start-up although only
    saving a client (search text, region key) calls them."""
    code = (
        "import json, sys\n"
        "import store.db, store.migrate, store.client_list, rules.audit, tui.app\n"
        f"print(json.dumps(sorted(m for m in {list(NOT_AT_START)!r} if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == []


def test_opening_a_migrated_sqlite_database_imports_no_postgresql_driver_nor_runner(
    tmp_path: Path,
) -> None:
    """Start-up as ``gobiller`` and bench/tui.py do it (open the database, apply pending
    migrations, build the app) on an up-to-date SQLite file: peewee imported psycopg2 and
    ssl (~30 ms), and the migration check imported peewee's runner (~15 ms), at every
    start although neither is called."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    opening = f"from store.db import open_database; open_database({url!r})\n"
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    run = {"cwd": ROOT, "env": env, "capture_output": True, "text": True, "check": True}
    migrate = opening + "import store.migrate as m; m.upgrade()"
    subprocess.run([sys.executable, "-c", migrate], **run)  # type: ignore[call-overload]
    code = (
        "import json, sys\n"
        + opening
        + "from store.migrate import upgrade; assert upgrade() == []\n"
        "import store.client_list, rules.audit, tui.app\n"
        "print(json.dumps(sorted(m for m in ('psycopg2', 'playhouse.migrations')"
        " if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], **run)  # type: ignore[call-overload]
    assert json.loads(out.stdout) == []
