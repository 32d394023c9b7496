"""Index folders this process has open: one engine and one lock per folder, shared.

A notebook cell ``ix = MultiModalIndex("folder")`` run twice opens the folder again while the first
object is still bound to ``ix``; a second lock on the folder would refuse it ("in use by pid <this
pid>") until the kernel restarts. So every index object that opens a folder this process already
has open shares its engine (:class:`Hold`, counted), and the folder is let go when the last of them
is closed, dropped or collected (each index registers :meth:`Hold.release` with
``weakref.finalize``). Folders are keyed by device and inode, so two spellings of one folder (a
link to it, ``..``) share too.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["Hold", "folder_key", "join"]

logger = logging.getLogger(__name__)

#: (st_dev, st_ino) of an open folder -> its hold. An RLock: a finalizer may run inside a locked block.
_OPEN: dict[tuple[int, int], Hold] = {}
_GUARD = threading.RLock()


def folder_key(folder: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def join(key: tuple[int, int] | None) -> Hold | None:
    """The hold of a folder this process has open (counted once more), or ``None``."""
    if key is None:
        return None
    with _GUARD:
        hold = _OPEN.get(key)
        if hold is None or hold.refs <= 0:
            return None
        hold.refs += 1
        return hold


class Hold:
    """An open engine (and the folder's lock, if any), released when its last user releases it."""

    def __init__(self, engine: Any, lock: Any = None, key: tuple[int, int] | None = None) -> None:
        self.engine, self.lock, self.key, self.refs = engine, lock, key, 1
        self.writes: Any = None  # the index's write bookkeeping, shared by every user of the engine
        if key is not None:
            with _GUARD:
                _OPEN[key] = self

    def release(self) -> None:
        with _GUARD:
            self.refs -= 1
            if self.refs > 0:
                return
            if self.key is not None and _OPEN.get(self.key) is self:
                del _OPEN[self.key]
            engine, lock, self.engine, self.lock = self.engine, self.lock, None, None
        try:
            if engine is not None:
                engine.close()
        finally:
            if lock is not None:
                lock.release()
