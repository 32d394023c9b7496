"""CLIP's text context: how many tokens a text has, which texts the model cuts, and windows that
cover a whole chunk.

CLIP text towers read a fixed context (77 tokens for open_clip's models, the start and end
markers included); the tokenizer cuts a longer text, so its dense vector sees the start only.
:func:`token_count` counts a text as the tokenizer does (before the cut); ingest reports how many
chunks were cut, and the embeddings benchmark the fraction. :class:`ClipWindows` (opt-in, recorded
in the index manifest) covers a chunk by several windows of whole words, each within the context,
overlapping by a few tokens: the first is the chunk's own CLIP vector, the others are embedded
beside it and stored as one multivector scored by MaxSim.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, echo

__all__ = [
    "DEFAULT_CONTEXT", "ClipWindows", "as_clip_windows", "context_length", "token_count", "token_counter", "window_texts",
    "windows_problem",
]

DEFAULT_CONTEXT = 77
#: The start and end markers every tokenized text carries.
_MARKERS = 2
MAX_WINDOWS = 64


def context_length(embedder: Any) -> int:
    """The text context of *embedder* in tokens (markers included; 77 unless it says otherwise)."""
    return int(getattr(embedder, "context_length", None) or DEFAULT_CONTEXT)


def token_counter(embedder_or_tokenizer: Any) -> Callable[[str], int] | None:
    """``count(text)``: the text's length in tokens as the CLIP tokenizer makes them, start and end
    markers included, before truncation; ``None`` for a tokenizer that cannot count (one without
    ``encode``). Takes an embedder (its ``tokenizer``) or a tokenizer."""
    tokenizer = getattr(embedder_or_tokenizer, "tokenizer", embedder_or_tokenizer)
    encode = getattr(tokenizer, "encode", None)
    if not callable(encode):
        return None

    def count(text: str) -> int:
        return token_count(encode, text)

    return count


def token_count(encode: Callable[[str], Sequence[int]], text: str) -> int:
    """Tokens of *text* by *encode* (a tokenizer's), with the start and end markers."""
    return len(encode(text)) + _MARKERS


@dataclass(frozen=True, slots=True)
class ClipWindows:
    """CLIP windows over whole chunks (``clip_windows=`` of a new index): windows of whole words of
    at most *size* tokens (markers included; the model's context), each starting *overlap* tokens
    before the previous one ended, at most *max_windows* per chunk (the rest of a longer chunk is
    seen by BM25 only)."""

    size: int | None = None  # None: the model's context
    overlap: int | None = None  # None: a fifth of the window's text tokens (15 of 75)
    max_windows: int = 8

    def __post_init__(self) -> None:
        size = self.size or DEFAULT_CONTEXT
        overlap = (size - _MARKERS) // 5 if self.overlap is None else self.overlap
        problem = windows_problem({**self.identity(), "size": size, "overlap": overlap})
        if problem:
            raise ConfigurationError(f"clip_windows: {problem.removeprefix('clip_windows.')}")

    def resolved(self, context: int) -> ClipWindows:
        """These settings with the window size set (the model's *context* unless given); a window
        longer than the context would be cut by the tokenizer, so it is refused."""
        size = context if self.size is None else self.size
        if size > context:
            raise ConfigurationError(f"clip_windows: a window of {size} tokens is longer than the model's {context}-token context")
        overlap = (size - _MARKERS) // 5 if self.overlap is None else self.overlap
        return ClipWindows(size, overlap, self.max_windows)

    def identity(self) -> dict[str, Any]:
        """What the index manifest records (``clip_windows``)."""
        return {"size": self.size, "overlap": self.overlap, "max_windows": self.max_windows}

    @classmethod
    def from_identity(cls, data: Mapping[str, Any]) -> ClipWindows:
        return cls(int(data["size"]), int(data["overlap"]), int(data["max_windows"]))


def as_clip_windows(value: Any) -> ClipWindows | None:
    """``clip_windows=`` as given: ``None``/``False`` (none), ``True`` (the defaults), a
    :class:`ClipWindows`, or a mapping of its fields."""
    if value is None or value is False:
        return None
    if value is True:
        return ClipWindows()
    if isinstance(value, ClipWindows):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"size", "overlap", "max_windows"}
        if unknown:
            raise ConfigurationError(f"clip_windows: unknown setting(s) {', '.join(sorted(map(str, unknown)))}")
        return ClipWindows(**value)
    raise ConfigurationError(f"clip_windows must be True, a ClipWindows or a mapping of its settings, got {echo(value)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def windows_problem(data: Any) -> str | None:
    """Why *data* is not a valid ``clip_windows`` manifest entry (``None``: it is)."""
    if not isinstance(data, dict) or set(data) != {"size", "overlap", "max_windows"}:
        return f"clip_windows must be an object with size, overlap and max_windows, got {echo(data)}"
    size, overlap, most = data["size"], data["overlap"], data["max_windows"]
    if not (_is_int(size) and 8 <= size <= 4096):
        return f"clip_windows.size must be an integer from 8 to 4096, got {echo(size)}"
    if not (_is_int(overlap) and 0 <= overlap <= (size - _MARKERS) // 2):
        return f"clip_windows.overlap must be an integer from 0 to half the window, got {echo(overlap)}"
    if not (_is_int(most) and 1 <= most <= MAX_WINDOWS):
        return f"clip_windows.max_windows must be an integer from 1 to {MAX_WINDOWS}, got {echo(most)}"
    return None


def window_texts(text: str, count: Callable[[str], int], windows: ClipWindows) -> list[str]:
    """The texts of *text*'s windows after the first (the first is what the model reads of the whole
    text: the chunk's own vector); empty when the text fits the context. Windows hold whole words
    (a word longer than a window is cut by the tokenizer as usual)."""
    room = (windows.size or DEFAULT_CONTEXT) - _MARKERS
    if count(text) - _MARKERS <= room:
        return []
    words = text.split()
    lengths = [count(w) - _MARKERS for w in words]
    starts = [0] * len(words)
    for i in range(1, len(words)):
        starts[i] = starts[i - 1] + lengths[i - 1]
    out: list[str] = []
    seen_end = room  # tokens the previous window covered (the first: the model's cut)
    i = last = 0
    while len(out) + 1 < windows.max_windows:
        begin = seen_end - (windows.overlap or 0)
        while i < len(words) and starts[i] < begin:
            i += 1
        i = max(i, last + 1)  # every window starts further on
        if i >= len(words):
            break
        j, used = i, 0
        while j < len(words) and (used + lengths[j] <= room or j == i):
            used += lengths[j]
            j += 1
        out.append(" ".join(words[i:j]))
        seen_end, last = starts[j - 1] + lengths[j - 1], i
        if j >= len(words):
            break
    return out
