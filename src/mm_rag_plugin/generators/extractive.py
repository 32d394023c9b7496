"""Offline fallback: no model, just the best retrieved passages and images with their sources.

Used when no Gemini API key is configured. The answer says plainly that no generator was used,
and ``Answer.generated`` is False.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator, Sequence

from .._terminal import one_line
from ..errors import InvalidInputError
from ..types import Answer, Citation, Hit, ImageChunk
from .base import AnswerStream, AsyncAnswerStream
from .prompt import _validate

__all__ = ["ExtractiveGenerator"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n{2,}")
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
    ]
)


def _terms(text: str) -> set[str]:
    return {w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP and len(w) > 1}


def _best_excerpt(text: str, question_terms: set[str], max_chars: int) -> str:
    """The run of consecutive sentences sharing most words with the question, cut to *max_chars*."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    best, best_score = 0, -1
    for i, s in enumerate(sentences):
        score = len(_terms(s) & question_terms)
        if score > best_score:
            best, best_score = i, score
    excerpt = sentences[best]
    for s in sentences[best + 1 :]:
        if len(excerpt) + 1 + len(s) > max_chars:
            break
        excerpt += " " + s
    if len(excerpt) > max_chars:
        excerpt = excerpt[: max_chars - 3].rsplit(" ", 1)[0] + "..."
    return ("... " if best > 0 else "") + excerpt


def _where(hit: Hit) -> str:
    chunk = hit.chunk
    where = one_line(chunk.source)  # a crafted name must not start a line of the answer
    if chunk.page is not None:
        where += f", page {chunk.page}"
    if isinstance(chunk, ImageChunk) and chunk.image_path != chunk.source:  # an image extracted from a document
        where = f"{where} ({one_line(chunk.image_path)})"
    return where


class ExtractiveGenerator:
    """Answers by quoting the best *max_passages* hits (text excerpts and images), each cited.

    *reason* is stated at the top of every answer (why no generator was used).
    """

    def __init__(
        self,
        *,
        max_passages: int = 3,
        max_chars: int = 500,
        reason: str = "no Gemini API key is configured",
    ) -> None:
        if max_passages < 1 or max_chars < 40:
            raise InvalidInputError(
                f"max_passages must be >= 1 and max_chars >= 40, got {max_passages}, {max_chars}"
            )
        self.max_passages = max_passages
        self.max_chars = max_chars
        self.reason = reason
        self.model = None

    def __repr__(self) -> str:
        return f"ExtractiveGenerator(max_passages={self.max_passages}, max_chars={self.max_chars})"

    def _text(self, question: str, sources: Sequence[Hit]) -> str:
        head = (
            f"No answer generator was used ({self.reason}). This is not a written answer: "
            "these are the retrieved passages and images most relevant to the question, with their sources."
        )
        if not sources:
            return head + "\n\nNothing relevant was retrieved for this question."
        terms = _terms(question)
        lines = [head, ""]
        for n, hit in enumerate(sources[: self.max_passages], start=1):
            chunk = hit.chunk
            body = _best_excerpt(chunk.text, terms, self.max_chars) if chunk.text.strip() else "(no text)"
            label = "Image" if isinstance(chunk, ImageChunk) else "Passage"
            lines.append(f"[{n}] {label} from {_where(hit)}: {body}")
        return "\n".join(lines)

    def generate(self, question: str, hits: Sequence[Hit]) -> Answer:
        """An extractive :class:`Answer` (``generated=False``) citing each quoted source."""
        sources = _validate(question, hits)
        text = self._text(question, sources)
        quoted = sources[: self.max_passages]
        citations = tuple(Citation(n, hit) for n, hit in enumerate(quoted, start=1))
        return Answer(text, tuple(sources), citations, generated=False, model=None)

    async def agenerate(self, question: str, hits: Sequence[Hit]) -> Answer:
        return await asyncio.to_thread(self.generate, question, hits)

    def stream(self, question: str, hits: Sequence[Hit]) -> AnswerStream:
        answer = self.generate(question, hits)

        def deltas() -> Iterator[str]:
            yield from answer.text.splitlines(keepends=True)

        return AnswerStream(deltas(), lambda _text: answer)

    def astream(self, question: str, hits: Sequence[Hit]) -> AsyncAnswerStream:
        answer = self.generate(question, hits)

        async def deltas() -> AsyncIterator[str]:
            for line in answer.text.splitlines(keepends=True):
                yield line

        return AsyncAnswerStream(deltas(), lambda _text: answer)
