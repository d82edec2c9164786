"""Which of GoBiller's files others can read: ``gobiller doctor`` reports them.

GoBiller creates its files 0600 and its folders 0700 (``store.files``,
``store.db``), but files made by an older version, copied by hand or restored from
a backup may be world-readable: the database (every client's data and card tokens)
with its -wal and -shm, the Maildir (messages can carry a password until the email
log masks it), a config file holding the SMTP or database password, the demo's
login file. Group access is left alone (it can be a deliberate shared setup); read
or search access for *others* is reported.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from store.config import Config

__all__ = ["PermissionProblem", "check_permissions"]

#: Read or search by others: reported for folders (files: read by others).
OTHERS = stat.S_IROTH | stat.S_IXOTH


@dataclass(frozen=True)
class PermissionProblem:
    """One file or folder others can read, and how to fix it."""

    path: Path
    mode: int
    what: str
    #: How many more files of the same kind have the same problem (Maildir messages).
    more: int = 0
    #: The command that fixes it (default: chmod 700 the folder / 600 the file).
    fix: str = ""

    @property
    def message(self) -> str:
        fix = self.fix or f"chmod {700 if stat.S_ISDIR(self.mode) else 600} {self.path}"
        more = f" (and {self.more} more like it)" if self.more else ""
        return (
            f"{self.path}: {self.what} is readable by others (mode "
            f"{stat.S_IMODE(self.mode):04o}){more}; fix with: {fix}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "mode": f"{stat.S_IMODE(self.mode):04o}",
            "what": self.what,
            "more": self.more,
            "message": self.message,
        }


def _mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode
    except OSError:
        return None  # missing or unreachable: nothing to report here


def _open_to_others(path: Path) -> int | None:
    """The mode of ``path`` when others may read it (a folder: read or enter it)."""
    mode = _mode(path)
    if mode is None:
        return None
    return mode if mode & (OTHERS if stat.S_ISDIR(mode) else stat.S_IROTH) else None


def _sqlite_file(url: str) -> Path | None:
    from store.db import _sqlite_path

    if not url.startswith("sqlite"):
        return None
    path = _sqlite_path(url)
    return Path(path).expanduser() if path and path != ":memory:" else None


def _holds_secret(config: Config) -> bool:
    """Whether the config file in force carries a password (SMTP, or in the database URL)."""
    smtp = config.raw.get("smtp")
    if isinstance(smtp, dict) and smtp.get("password"):
        return True
    database = config.raw.get("database")
    url = database.get("url") if isinstance(database, dict) else None
    try:
        return isinstance(url, str) and bool(urlsplit(url).password)
    except ValueError:
        return False


def _maildir(root: Path) -> list[PermissionProblem]:
    problems: list[PermissionProblem] = []
    for folder in (root, root / "tmp", root / "new", root / "cur"):
        mode = _open_to_others(folder)
        if mode is not None:
            problems.append(PermissionProblem(folder, mode, "the Maildir folder"))
    exposed: list[tuple[Path, int]] = []
    for sub in ("new", "cur", "tmp"):
        try:
            entries = list(os.scandir(root / sub))
        except OSError:
            continue
        for entry in entries:
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode) and mode & stat.S_IROTH:
                exposed.append((Path(entry.path), mode))
    if exposed:
        exposed.sort()
        path, mode = exposed[0]
        problems.append(
            PermissionProblem(
                path, mode, "a Maildir message", len(exposed) - 1, fix=f"chmod -R go= {root}"
            )
        )
    return problems


def check_permissions(config: Config) -> list[PermissionProblem]:
    """Every file or folder of this installation that others can read (an empty list when
    all is private): the SQLite database and its -wal, -shm and -journal files and the
    demo login file beside it, the Maildir (folders and messages; with SMTP configured
    too, since older mail stays there) and the config file in force when it holds a
    password. Never raises for a missing or unreadable path. Issue 10 item 11.
    """
    problems: list[PermissionProblem] = []
    database = _sqlite_file(config.database_url)
    if database is not None:
        for suffix, what in (
            ("", "the database"),
            ("-wal", "the database's write-ahead log"),
            ("-shm", "the database's shared memory file"),
            ("-journal", "the database's journal"),
            (".login", "the demo login file"),
        ):
            path = database.with_name(database.name + suffix)
            mode = _open_to_others(path)
            if mode is not None:
                problems.append(PermissionProblem(path, mode, what))
    problems.extend(_maildir(config.maildir))
    if config.config_file is not None and _holds_secret(config):
        mode = _open_to_others(config.config_file)
        if mode is not None:
            problems.append(
                PermissionProblem(config.config_file, mode, "a config file holding a password")
            )
    return problems
