"""Find ``[n]`` citation markers in an answer and map them to the numbered sources."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from ..types import Citation, Hit

logger = logging.getLogger(__name__)

__all__ = ["cited_numbers", "parse_citations"]

_NUM = r"\s*\d{1,6}\s*(?:[-–]\s*\d{1,6}\s*)?"
# [1]  [1, 2]  [1,2; 4]  [2-4]  -- but not a markdown link text "[1](http...)"
_MARKER = re.compile(rf"\[(?P<body>{_NUM}(?:[,;]{_NUM})*)\](?!\()")
_ITEM = re.compile(r"(\d+)\s*(?:[-–]\s*(\d+))?")


def cited_numbers(text: str, n_sources: int) -> list[int]:
    """Source numbers cited in *text*, in order of first appearance, each once.

    Numbers outside ``1..n_sources`` are ignored (logged at debug level); ranges such as ``[2-4]``
    are expanded, but only within the valid numbers.
    """
    seen: dict[int, None] = {}
    for m in _MARKER.finditer(text):
        for item in _ITEM.finditer(m.group("body")):
            lo = int(item.group(1))
            hi = int(item.group(2)) if item.group(2) else lo
            if hi < lo:
                lo, hi = hi, lo
            valid = range(max(lo, 1), min(hi, n_sources) + 1)
            if len(valid) != hi - lo + 1:
                logger.debug("citation %s refers to sources outside 1..%d", m.group(0), n_sources)
            for n in valid:
                seen.setdefault(n, None)
    return list(seen)


def parse_citations(text: str, sources: Sequence[Hit]) -> list[Citation]:
    """:class:`Citation` objects for the ``[n]`` markers in *text*; ``sources[n-1]`` is source ``n``."""
    return [Citation(n, sources[n - 1]) for n in cited_numbers(text, len(sources))]
