"""One writer per embedded index: an advisory lock file that names its holder.

Qdrant Edge already refuses a second process (its WAL is locked), but says only ``WouldBlock``;
this lock is taken first and tells the second process who holds the index: its pid and program
(``pid 123 (mm-rag ingest)``), never the rest of its command line, which may hold a secret
(``--qdrant-api-key``) and would be printed by another user's ``mm-rag info``.
The lock is released when the holder closes the index or dies (the kernel drops ``flock`` locks).
The lock file is opened without following a link: an index folder is untrusted input, and its
``lock`` may be a link to someone's file, which taking the lock would empty.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from ..errors import StoreError
from ._folder import open_nofollow

__all__ = ["FolderLock", "IndexInUseError"]

LOCK_FILE = "lock"
#: A subcommand named after the program (``ingest``, ``-m``, ``-c``): a short word, no value.
_WORD = re.compile(r"-?-?[A-Za-z][A-Za-z-]{0,15}")


def holder_name(argv: list[str] | None = None) -> str:
    """``pid N (program subcommand)`` for this process: the program's file name and, when the
    next argument is a plain word, that word (``mm-rag ingest``, ``python -m``); nothing else of the
    command line, whose options may carry secrets."""
    argv = sys.argv if argv is None else argv
    words = [os.path.basename(argv[0]) if argv and argv[0] else "python"]
    if len(argv) > 1 and _WORD.fullmatch(argv[1]) and "=" not in argv[1]:
        words.append(argv[1])
    return f"pid {os.getpid()} ({' '.join(words)[:100]})"


def _holder(fd: int, wait: float = 0.5) -> str:
    """The holder's name from the lock file; the holder writes it just after taking the lock, so
    an empty file is read again for up to *wait* seconds before "another process" is said."""
    deadline = time.monotonic() + wait
    while True:
        text = os.pread(fd, 400, 0).decode("utf-8", "replace").strip()
        if text or time.monotonic() >= deadline:
            return text or "another process"
        time.sleep(0.02)


class IndexInUseError(StoreError):
    """The folder's lock is held by another process (``holder``: its pid and command)."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


class FolderLock:
    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: Qdrant Edge's own WAL lock still protects the shard
            return
        fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT)
        if os.fstat(fd).st_nlink > 1:  # a hard link to another file: truncating would empty that file too
            os.close(fd)
            raise StoreError(f"{self.path}: has other hard links; an index folder's own files must not be links")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = _holder(fd)
            finally:
                os.close(fd)
            if holder.startswith(f"pid {os.getpid()} ("):
                raise StoreError(
                    f"{self.path.parent}: the index is already open in this process: close() it or use the "
                    "index object that has it open (one open index object per folder and process)"
                ) from None
            raise IndexInUseError(
                f"{self.path.parent}: the index is in use by {holder} (another process); one process at a time "
                "may open an embedded index (wait for it to finish, or serve the index from a Qdrant server with --url)",
                holder,
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder_name().encode("utf-8", "backslashreplace"), 0)
        except OSError:  # a full disk: the lock holds without the holder's name
            pass
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # closing drops the flock
