"""Files GoBiller writes: whole or not at all, and private to its user.

Every file GoBiller writes (the interchange export, the demo's login file, later
backups) goes through :func:`write_atomically`: the data goes to a temporary file
beside the target, is flushed to the disk, then renamed over the target, and the
folder is flushed too. A full disk, a missing folder or a permission problem
leaves the previous file as it was and raises :class:`FileWriteError` whose
message says why in one line. The Maildir has its own tmp → new protocol
(``rules.mail.delivery``); the SQLite file is SQLite's own.

What GoBiller creates is readable by its user only (0600 files, 0700 folders):
exports hold card tokens and personal data, the database holds everything.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "FileWriteError",
    "fsync_file",
    "fsync_folder",
    "make_private_folder",
    "reason",
    "remove_quietly",
    "write_all",
    "write_atomically",
]

FILE_MODE = 0o600
FOLDER_MODE = 0o700

_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this system's file size limit",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "no such folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "it is a folder",
    errno.EIO: "input/output error (failing disk?)",
}


class FileWriteError(Exception):
    """A file could not be written; the previous file, if any, is unchanged. The message
    is one line for the user; ``errno`` is the system's error number (0 if none)."""

    def __init__(self, message: str, error_number: int = 0) -> None:
        super().__init__(message)
        self.errno = error_number


def reason(exc: OSError) -> str:
    """A short human reason for an ``OSError`` ("disk full", "permission denied", ...)."""
    return _REASONS.get(exc.errno or 0) or exc.strerror or str(exc)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the open file ``fd`` (``os.write`` may write less at a
    time). Raises ``OSError`` (disk full...)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_file(path: Path) -> None:
    """Flush the file at ``path`` to the disk (its data, written through any descriptor).
    Raises ``OSError``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_quietly(path: Path | str) -> None:
    """Remove the file at ``path`` if it can be: cleaning up after a failed write, where
    a second error would only hide the first."""
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to the disk."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # a file system without it
            raise
    finally:
        os.close(fd)


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` and any missing parents as 0700 folders (an existing one is left
    as it is: ``store.permissions.check_permissions`` reports it when others can read it).

    Raises ``OSError``.
    """
    missing = []
    current = folder.expanduser()
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for part in reversed(missing):
        try:
            part.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue
        os.chmod(part, FOLDER_MODE)  # mkdir's mode is filtered by the umask


def write_atomically(path: Path, data: bytes | str, mode: int = FILE_MODE) -> None:
    """Replace ``path`` with ``data`` (str is written as UTF-8) all at once.

    A temporary file in the same folder is written, fsynced, given ``mode`` and renamed
    over ``path``; then the folder is fsynced, so after a crash either the old or the
    new file is there, whole. The folder must exist (a missing folder is an error, not
    created: a typo should not make a tree).

    Raises ``FileWriteError`` with the reason ("disk full", "no such folder",
    "permission denied", ...); the previous file is then untouched and no temporary
    file is left behind.
    """
    target = Path(path).expanduser()
    folder = target.parent
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        try:
            os.fchmod(fd, mode)
            write_all(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
        fsync_folder(folder)
    except OSError as exc:
        why = reason(exc)
        if exc.errno == errno.ENOENT:
            why = f"no such folder {folder}"
        raise FileWriteError(f"cannot write {target}: {why}", exc.errno or 0) from exc
    finally:
        if tmp is not None:
            remove_quietly(tmp)
