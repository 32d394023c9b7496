"""What every answer generator offers, and the stream objects they return."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from ..types import Answer, Hit

__all__ = ["AnswerGenerator", "AnswerStream", "AsyncAnswerStream"]


class _Stream:
    """What both stream kinds share: the finishing step and the complete answer."""

    def __init__(self, deltas: Any, finish: Callable[[str], Answer]) -> None:
        self._deltas = deltas
        self._finish = finish
        self._answer: Answer | None = None
        self._started = False

    def _start(self) -> None:
        if self._started:
            raise RuntimeError(f"an {type(self).__name__} can be iterated only once")
        self._started = True

    @property
    def answer(self) -> Answer:
        if self._answer is None:
            raise RuntimeError("the answer is complete only after the stream has been iterated to its end")
        return self._answer


class AnswerStream(_Stream):
    """Iterate for the answer text as it arrives; then :attr:`answer` holds the whole
    :class:`~mm_rag_plugin.types.Answer` with its citations. Iterable once."""

    _deltas: Iterator[str]

    def __iter__(self) -> Iterator[str]:
        self._start()
        pieces: list[str] = []
        for delta in self._deltas:
            pieces.append(delta)
            yield delta
        self._answer = self._finish("".join(pieces))


class AsyncAnswerStream(_Stream):
    """Async twin of :class:`AnswerStream`: ``async for delta in stream`` then ``stream.answer``."""

    _deltas: AsyncIterator[str]

    async def __aiter__(self) -> AsyncIterator[str]:
        self._start()
        pieces: list[str] = []
        async for delta in self._deltas:
            pieces.append(delta)
            yield delta
        self._answer = self._finish("".join(pieces))


@runtime_checkable
class AnswerGenerator(Protocol):
    """Turns a question and retrieved hits into an :class:`Answer` (sync, async, streamed)."""

    def generate(self, question: str, hits: Sequence[Hit]) -> Answer: ...

    async def agenerate(self, question: str, hits: Sequence[Hit]) -> Answer: ...

    def stream(self, question: str, hits: Sequence[Hit]) -> AnswerStream: ...

    def astream(self, question: str, hits: Sequence[Hit]) -> AsyncAnswerStream: ...
