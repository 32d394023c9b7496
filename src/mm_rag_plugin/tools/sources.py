"""The tools' ``source`` argument: what the agent sees in results, resolved to stored sources.

The index stores each chunk's source as the absolute path it was read from; results show it, and
an agent naturally writes the file name (``report.pdf``), a path ending (``q1/report.pdf``) or the
full path. :class:`SourceResolver` turns any of those into the stored paths, which the retriever
then filters by exactly:

* over a retriever whose index can be listed (``FusedRetriever``, or any retriever with a
  ``sources()`` method), the name is matched against the index's sources; a name that matches
  none is an error listing the indexed file names, so the agent can call again;
* over any other retriever, the name is passed as given; when that finds nothing, a deeper
  search without it is filtered by file name.
"""

from __future__ import annotations

import logging
import os
import posixpath
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from ..errors import InvalidInputError, echo

logger = logging.getLogger(__name__)

__all__ = ["SourceResolver", "resolve_source", "source_matches"]

#: How many indexed file names an error message lists.
_LISTED = 10


def _norm(path: str) -> str:
    p = path.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return posixpath.normpath(p) if p else ""


def source_matches(stored: str, given: str, *, ignore_case: bool = False) -> bool:
    """Whether the *given* source names the *stored* one: the same path, or a relative path that
    ends it at a folder boundary (``report.pdf`` and ``q1/report.pdf`` name ``/data/q1/report.pdf``)."""
    s, g = _norm(stored), _norm(given)
    if ignore_case:
        s, g = s.casefold(), g.casefold()
    if not g:
        return False
    if s == g:
        return True
    if g.startswith("/") or g == "." or g.startswith("../"):
        return False  # an absolute path names only itself
    return s.endswith("/" + g)


def resolve_source(given: str, known: Iterable[str]) -> list[str]:
    """The stored sources in *known* that *given* names: the exact path, else those it ends
    (file name or path ending), else the same ignoring case. Sorted; empty when none."""
    known = sorted(set(known))
    if given in known:
        return [given]
    found = [s for s in known if source_matches(s, given)]
    return found or [s for s in known if source_matches(s, given, ignore_case=True)]


def _lister(retriever: Any) -> tuple[Callable[[], Iterable[str]], Callable[[], Any]] | None:
    """How to list the sources a retriever searches, and a cheap stamp that changes with them;
    looks through wrappers that keep the core retriever as ``.retriever``."""
    obj = retriever
    for _ in range(3):
        if obj is None:
            break
        sources = getattr(obj, "sources", None)
        if callable(sources):
            return sources, lambda: None  # the retriever's own listing: asked every time
        index = getattr(obj, "index", None)
        if index is not None and callable(getattr(index, "sources", None)):
            return index.sources, partial(_index_stamp, index)
        if index is not None and callable(getattr(index, "scan", None)):
            return partial(_scan_sources, index), partial(_index_stamp, index)
        obj = getattr(obj, "retriever", None)
    return None


def _index_stamp(index: Any) -> tuple[int, int]:
    return id(index), len(index)


def _scan_sources(index: Any) -> set[str]:
    out: set[str] = set()
    for batch in index.scan(1024):
        for point in batch:
            payload = point.payload or {}
            out.update(payload.get("sources") or ([payload["source"]] if payload.get("source") else []))
    return out


class SourceResolver:
    """Resolves the ``source`` argument against what a retriever's index holds.

    The index's sources are listed once and listed again when the index's size changes (or when
    a name matches nothing: a file may have replaced another of the same size).
    """

    def __init__(self, retriever: Any) -> None:
        self._lister = _lister(retriever)
        self._lock = threading.Lock()
        self._stamp: Any = object()
        self._known: list[str] = []

    @property
    def can_list(self) -> bool:
        """Whether the retriever's sources can be listed (else :meth:`resolve` returns None)."""
        return self._lister is not None

    def known(self, *, refresh: bool = False) -> list[str]:
        if self._lister is None:
            return []
        listing, stamp_of = self._lister
        with self._lock:
            stamp = stamp_of()
            if refresh or stamp is None or stamp != self._stamp:
                self._known = sorted(set(listing()))
                self._stamp = stamp
                logger.debug("source names: %d indexed sources listed", len(self._known))
            return list(self._known)

    def resolve(self, given: str) -> list[str] | None:
        """The stored sources *given* names; None when they cannot be listed. Raises
        :class:`InvalidInputError` (argument ``source``) naming the indexed files when none match."""
        if self._lister is None:
            return None
        found = resolve_source(given, self.known())
        if not found:
            known = self.known(refresh=True)
            found = resolve_source(given, known)
            if not found:
                raise InvalidInputError(_no_match(given, known), source="argument 'source'")
        return found


def _no_match(given: str, known: Sequence[str]) -> str:
    if not known:
        return f"no indexed document matches {echo(given, 120)}: the index holds no documents"
    names = sorted({os.path.basename(_norm(s)) or s for s in known})
    listed = ", ".join(names[:_LISTED]) + (f" (and {len(names) - _LISTED} more)" if len(names) > _LISTED else "")
    return (
        f"no indexed document matches {echo(given, 120)}; give a file name or path as shown in "
        f"results, or leave source out. Indexed files: {listed}"
    )
