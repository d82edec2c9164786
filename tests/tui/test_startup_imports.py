"""Opening the staff app imports only what its first screen needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Libraries the client list never calls before a client is edited or imported, each
#: tens of milliseconds of import (phonenumbers ~35 ms, pycountry ~19 ms).
NOT_AT_START = ("phonenumbers", "pycountry", "jinja2", "dateutil")


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
