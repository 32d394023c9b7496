"""Text splitting with overlap that respects paragraph and sentence boundaries.

:class:`TextSplitter` cuts text into pieces of at most ``chunk_size`` units (characters, or tokens
counted by a callable) and prefers to cut, in order, at a blank line, a line break, a sentence end,
a space, and only as a last resort inside a word. Consecutive pieces overlap by about
``chunk_overlap`` units, also aligned on those boundaries. Each piece keeps its character offsets
in the original text, so readers can map it back to a page region.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigurationError

__all__ = ["Span", "TextSplitter", "count_words"]

# Boundaries, strongest first: the position *after* each match is a good cut point.
_BOUNDARIES = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraph
    re.compile(r"\n\s*"),  # line
    re.compile(r"(?<=[.!?…。！？])[\"')\]]*\s+"),  # sentence end
    re.compile(r"[;:,]\s+"),  # clause
    re.compile(r"\s+"),  # word
)
_WORD = re.compile(r"\S+")


def count_words(text: str) -> int:
    """Default token counter: whitespace-separated words (fast, model-free approximation)."""
    return len(_WORD.findall(text))


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of text and its ``[start, end)`` character offsets in the text it was cut from."""

    text: str
    start: int
    end: int


class TextSplitter:
    """Split text into overlapping pieces on natural boundaries.

    ``unit="chars"`` measures length in characters; ``unit="tokens"`` uses ``length_function``
    (default: whitespace words; pass e.g. a tokenizer's ``lambda s: len(tok.encode(s))``).
    """

    def __init__(
        self,
        chunk_size: int = 1000,
        chunk_overlap: int = 150,
        *,
        unit: str = "chars",
        length_function: Callable[[str], int] | None = None,
    ) -> None:
        if chunk_size <= 0:
            raise ConfigurationError(f"chunk_size must be positive, got {chunk_size}")
        if not 0 <= chunk_overlap < chunk_size:
            raise ConfigurationError(
                f"chunk_overlap must be >= 0 and smaller than chunk_size ({chunk_size}), got {chunk_overlap}"
            )
        if unit not in ("chars", "tokens"):
            raise ConfigurationError(f"unit must be 'chars' or 'tokens', got {unit!r}")
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.unit = unit
        self._len = len if unit == "chars" else (length_function or count_words)

    def split(self, text: str) -> list[str]:
        return [s.text for s in self.split_spans(text)]

    def split_spans(self, text: str) -> list[Span]:
        """Pieces of *text* (stripped, never empty) with their offsets."""
        spans: list[Span] = []
        n = len(text)
        start = _skip_space(text, 0)
        while start < n:
            end = self._cut(text, start)
            piece = text[start:end].strip()
            if piece:
                lead = start + (len(text[start:end]) - len(text[start:end].lstrip()))
                spans.append(Span(piece, lead, lead + len(piece)))
            if end >= n:
                break
            nxt = self._overlap_start(text, start, end) if self.chunk_overlap else end
            start = _skip_space(text, max(nxt, start + 1))
        return spans

    # -- internals -------------------------------------------------------------------------
    def _fits(self, text: str, start: int, end: int) -> bool:
        return self._len(text[start:end]) <= self.chunk_size

    def _max_end(self, text: str, start: int) -> int:
        """Largest end such that ``text[start:end]`` fits (binary search for token units)."""
        n = len(text)
        if self.unit == "chars":
            return min(n, start + self.chunk_size)
        if self._fits(text, start, n):
            return n
        lo, hi = start + 1, n  # lo fits (or is the minimum progress), hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._fits(text, start, mid):
                lo = mid
            else:
                hi = mid
        return lo

    def _cut(self, text: str, start: int) -> int:
        limit = self._max_end(text, start)
        if limit >= len(text):
            return len(text)
        window = text[start:limit]
        floor = len(window) // 4  # never cut in the first quarter: keeps pieces reasonably full
        for pattern in _BOUNDARIES:
            best = -1
            for m in pattern.finditer(window):
                if m.end() > floor:
                    best = m.end()
            if best > 0:
                return start + best
        return limit  # one enormous word: hard cut

    def _overlap_start(self, text: str, start: int, end: int) -> int:
        """Where the next piece starts: about ``chunk_overlap`` units before *end*, on a boundary."""
        if self.unit == "chars":
            lo = max(start + 1, end - self.chunk_overlap)
        else:
            lo, hi = start + 1, end  # smallest lo whose tail text[lo:end] fits the overlap
            while lo < hi:
                mid = (lo + hi) // 2
                if self._len(text[mid:end]) <= self.chunk_overlap:
                    hi = mid
                else:
                    lo = mid + 1
        window = text[lo:end]
        for pattern in _BOUNDARIES[2:]:  # sentence, clause, word
            m = pattern.search(window)
            if m and m.end() < len(window):
                return lo + m.end()
        return end


def _skip_space(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i].isspace():
        i += 1
    return i
