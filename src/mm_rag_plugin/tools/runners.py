"""The framework-free tools: :class:`SearchTool` and :class:`AnswerTool` over any retriever."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError, echo
from ..types import Answer, Hit, Retriever
from .args import (
    ANSWER_PARAMS,
    ANSWER_TOOL_DESCRIPTION,
    ANSWER_TOOL_NAME,
    SEARCH_PARAMS,
    SEARCH_TOOL_DESCRIPTION,
    SEARCH_TOOL_NAME,
    ToolArgs,
    ToolParam,
    json_schema,
    merge_positional,
    parse_tool_args,
)
from .format import citation_records, format_answer, format_hits
from .sources import SourceResolver, source_matches

logger = logging.getLogger(__name__)

__all__ = ["AnswerResult", "AnswerTool", "SearchResult", "SearchTool"]


def _check_retriever(retriever: object) -> None:
    if not isinstance(retriever, Retriever):
        raise InvalidInputError(
            "retriever must have a retrieve(query, *, image=, k=, filters=) method, "
            f"got {type(retriever).__name__}",
            source="retriever",
        )


def _retrieve(retriever: Retriever, query: str, k: int, filters: dict[str, Any] | None) -> list[Hit]:
    return list(retriever.retrieve(query, k=k, filters=filters))


async def _aretrieve(retriever: Retriever, query: str, k: int, filters: dict[str, Any] | None) -> list[Hit]:
    """The retriever's own coroutine ``aretrieve`` when it has one, else ``retrieve`` in a worker
    thread (embedding the query is CPU work; the event loop must not block)."""
    aretrieve = getattr(retriever, "aretrieve", None)
    if aretrieve is not None and asyncio.iscoroutinefunction(aretrieve):
        return list(await aretrieve(query, k=k, filters=filters))
    return await asyncio.to_thread(_retrieve, retriever, query, k, filters)


def _source_filters(args: ToolArgs, sources: list[str] | None) -> dict[str, Any] | None:
    """The retriever filters: ``kind``, and ``source`` as the stored paths it resolved to (the
    name as given when *sources* is None; left out when ``[]``)."""
    out: dict[str, Any] = {"kind": args.kind} if args.kind else {}
    if sources is None:
        sources = [args.source] if args.source else []
    if sources:
        out["source"] = sources[0] if len(sources) == 1 else sources
    return out or None


def _deeper_k(k: int) -> int:
    return max(10 * k, 100)


def _named(hits: list[Hit], given: str, k: int) -> list[Hit]:
    """The hits from the source *given* names (file name or path ending; any case as a last resort)."""
    found = [h for h in hits if source_matches(h.chunk.source, given)]
    return (found or [h for h in hits if source_matches(h.chunk.source, given, ignore_case=True)])[:k]


@dataclass(frozen=True, slots=True)
class SearchResult:
    args: ToolArgs
    hits: tuple[Hit, ...]
    text: str  # what the agent reads


@dataclass(frozen=True, slots=True)
class AnswerResult:
    args: ToolArgs
    answer: Answer
    text: str  # what the agent reads

    @property
    def citations(self) -> list[dict[str, Any]]:
        return citation_records(self.answer)

    def record(self) -> dict[str, Any]:
        """The answer as plain data (``answer, generated, model, citations``); the framework tools
        add their own kind of source documents to it."""
        a = self.answer
        return {"answer": a.text, "generated": a.generated, "model": a.model, "citations": self.citations}


class _Tool:
    params: tuple[ToolParam, ...] = ()

    def __init__(self, retriever: Retriever, *, name: str, description: str) -> None:
        _check_retriever(retriever)
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise InvalidInputError(
                f"a tool name must be 1-64 letters, digits, '_' or '-', got {echo(name, 80)}", source="name"
            )
        self.retriever = retriever
        self.name = name
        self.description = description
        self.sources = SourceResolver(retriever)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, retriever={type(self.retriever).__name__})"

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments (for function calling without a framework)."""
        return json_schema(self.params)

    def parse(self, args: Mapping[str, Any]) -> ToolArgs:
        return parse_tool_args(self.params, args)

    def _parse_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ToolArgs:
        return self.parse(merge_positional(self.params, args, kwargs))

    def retrieve(self, args: ToolArgs) -> list[Hit]:
        """The hits for validated *args*; ``source`` is resolved to the stored source paths (see
        :mod:`mm_rag_plugin.tools.sources`)."""
        if args.source is None:
            return _retrieve(self.retriever, args.query, args.k, args.filters)
        sources = self.sources.resolve(args.source)
        if sources is not None:
            return _retrieve(self.retriever, args.query, args.k, _source_filters(args, sources))
        hits = _retrieve(self.retriever, args.query, args.k, args.filters)
        if hits:
            return hits
        deeper = _retrieve(self.retriever, args.query, _deeper_k(args.k), _source_filters(args, []))
        return _named(deeper, args.source, args.k)

    async def aretrieve(self, args: ToolArgs) -> list[Hit]:
        """:meth:`retrieve` without blocking the event loop."""
        if args.source is None:
            return await _aretrieve(self.retriever, args.query, args.k, args.filters)
        sources = await asyncio.to_thread(self.sources.resolve, args.source) if self.sources.can_list else None
        if sources is not None:
            return await _aretrieve(self.retriever, args.query, args.k, _source_filters(args, sources))
        hits = await _aretrieve(self.retriever, args.query, args.k, args.filters)
        if hits:
            return hits
        deeper = await _aretrieve(self.retriever, args.query, _deeper_k(args.k), _source_filters(args, []))
        return _named(deeper, args.source, args.k)


class SearchTool(_Tool):
    """Search any :class:`~mm_rag_plugin.types.Retriever`; the result text is made for an agent.

    ``run(query=..., k=..., kind=..., source=...)`` (and the async ``arun``) validate the arguments
    with :func:`parse_tool_args` and return a :class:`SearchResult`; positional arguments fill the
    parameters in order (``run("red circle")``). ``source`` may be the file name or any path
    shown in results (see :mod:`mm_rag_plugin.tools.sources`).
    """

    params = SEARCH_PARAMS

    def __init__(
        self,
        retriever: Retriever,
        *,
        name: str = SEARCH_TOOL_NAME,
        description: str = SEARCH_TOOL_DESCRIPTION,
        snippet_chars: int = 300,
    ) -> None:
        super().__init__(retriever, name=name, description=description)
        if snippet_chars < 20:
            raise InvalidInputError(
                f"snippet_chars must be >= 20, got {snippet_chars}", source="snippet_chars"
            )
        self.snippet_chars = snippet_chars

    def _result(self, args: ToolArgs, hits: Sequence[Hit]) -> SearchResult:
        hits = tuple(hits)
        logger.debug("%s: %d hit(s) for k=%d filters=%s", self.name, len(hits), args.k, args.filters)
        return SearchResult(args, hits, format_hits(args, hits, snippet_chars=self.snippet_chars))

    def run(self, *args: Any, **kwargs: Any) -> SearchResult:
        parsed = self._parse_call(args, kwargs)
        return self._result(parsed, self.retrieve(parsed))

    async def arun(self, *args: Any, **kwargs: Any) -> SearchResult:
        parsed = self._parse_call(args, kwargs)
        return self._result(parsed, await self.aretrieve(parsed))


class AnswerTool(_Tool):
    """Retrieve, then answer with *generator* (default: Gemini when an API key is configured, else
    the extractive fallback; chosen once, here). ``run(question=..., k=..., kind=..., source=...)``
    (or ``run("the question")``) returns an :class:`AnswerResult`."""

    params = ANSWER_PARAMS

    def __init__(
        self,
        retriever: Retriever,
        generator: Any = None,
        *,
        name: str = ANSWER_TOOL_NAME,
        description: str = ANSWER_TOOL_DESCRIPTION,
    ) -> None:
        from ..generators import AnswerGenerator, default_generator

        super().__init__(retriever, name=name, description=description)
        if generator is None:
            generator = default_generator()
        elif not isinstance(generator, AnswerGenerator):
            raise InvalidInputError(
                f"generator must have generate/agenerate/stream/astream, got {type(generator).__name__}",
                source="generator",
            )
        self.generator = generator

    def run(self, *args: Any, **kwargs: Any) -> AnswerResult:
        parsed = self._parse_call(args, kwargs)
        answer = self.generator.generate(parsed.query, self.retrieve(parsed))
        return AnswerResult(parsed, answer, format_answer(answer))

    async def arun(self, *args: Any, **kwargs: Any) -> AnswerResult:
        parsed = self._parse_call(args, kwargs)
        answer = await self.generator.agenerate(parsed.query, await self.aretrieve(parsed))
        return AnswerResult(parsed, answer, format_answer(answer))
