"""An index folder is untrusted input: its own files are never opened through a link.

Index folders get shared (zipped, checked into repositories); one whose ``lock`` is a symbolic link
to a file of the user's would have that file emptied by a read-only ``mm-rag info``, and one whose
``blobs`` or ``shard`` is a link would have the index written into another folder. So the folder's
own entries, and everything under ``shard/`` and ``blobs/``, must be real files and folders
(:func:`check_own_entries`), and the index's own files are opened without following links
(:func:`open_nofollow`, :func:`create_new`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from ..errors import StoreError

__all__ = ["OWN_ENTRIES", "TREES", "check_own_entries", "create_new", "open_nofollow"]

#: Entries of an index folder that the index itself reads or writes.
OWN_ENTRIES = ("lock", "manifest.json", "sources.json", "blobs", "shard")
#: Folders of an index whose whole content belongs to the index.
TREES = ("shard", "blobs")

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted in the folder must not block the open


def _link_error(path: Path | str) -> StoreError:
    return StoreError(
        f"{path}: is a symbolic link; an index folder's own files must not be links "
        "(someone else's index? copy its real files)"
    )


def _check_tree(root: Path) -> None:
    try:
        entries = list(os.scandir(root))
    except OSError:  # not a folder, or unreadable: whoever opens it reports that
        return
    for entry in entries:
        if entry.is_symlink():
            raise _link_error(entry.path)
        if entry.is_dir(follow_symlinks=False):
            _check_tree(Path(entry.path))


def check_own_entries(folder: Path) -> None:
    """Refuse *folder* when one of its own entries, or anything under ``shard/`` or ``blobs/``, is
    a symbolic link (one :class:`StoreError` naming the link)."""
    for name in OWN_ENTRIES:
        if os.path.islink(folder / name):
            raise _link_error(folder / name)
    for name in TREES:
        _check_tree(folder / name)


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` of one of the index's own files, refusing a symbolic link (and anything that is
    not a regular file, such as a FIFO or a device): a :class:`StoreError` naming *path*. Other
    errors (``FileNotFoundError`` ...) are raised as they are."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.EMLINK and os.path.islink(path)):  # EMLINK: FreeBSD
            raise _link_error(path) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"{path}: not a regular file; an index folder's own files must be plain files")
        if _NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_new(path: Path, mode: int = 0o644) -> int:
    """A new file at *path* opened for writing (a temporary file, renamed over the real one when
    complete): whatever was there (a stale temporary file, or a link planted in its place) is
    removed first, never written through."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a link itself is removed, not its target
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)
