"""LlamaIndex agent tools over any :class:`~mm_rag_plugin.types.Retriever`, and a
``QueryEngineTool`` for :class:`~.query_engine.MultiModalQueryEngine`.

Thin wrappers of the core :class:`~mm_rag_plugin.tools.SearchTool` / ``AnswerTool`` (arguments,
validation and the text the agent reads come from the core). The tools are ``FunctionTool``s with
``fn`` and ``async_fn`` (the async one never blocks the event loop: retrieval runs in a worker
thread) and ``ToolMetadata.fn_schema`` generated from the core's argument spec.

Calling a tool (``tool(**kwargs)``, ``tool.call(...)``, ``await tool.acall(...)``) returns a
``ToolOutput``: ``content`` is the agent-readable text, ``raw_output`` the retrieved
``NodeWithScore`` list (search) or a dict with the answer, citations and nodes (answer). Bad
arguments and failures return ``ToolOutput(is_error=True)`` with a message saying what to fix.
A plain string (``tool("red circle")``, ``tool.call("red circle")``) is the query (the question
for the answer tool).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.tools import FunctionTool, QueryEngineTool, ToolMetadata, ToolOutput
from pydantic import BaseModel, ValidationError

from ...errors import MMRagError
from ...tools import (
    ANSWER_TOOL_DESCRIPTION,
    ANSWER_TOOL_NAME,
    SEARCH_TOOL_DESCRIPTION,
    SEARCH_TOOL_NAME,
    AnswerResult,
    AnswerTool,
    SearchResult,
    SearchTool,
    ToolParam,
    merge_positional,
    parse_tool_args,
)
from ...types import Retriever
from .._tool_schema import AnswerArgs, SearchArgs, error_message, validation_message
from ._convert import hit_to_node_with_score

__all__ = [
    "QUERY_TOOL_DESCRIPTION",
    "QUERY_TOOL_NAME",
    "create_multimodal_answer_tool",
    "create_multimodal_query_engine_tool",
    "create_multimodal_search_tool",
]

QUERY_TOOL_NAME = "multimodal_query"
QUERY_TOOL_DESCRIPTION = (
    "Answer a question from the indexed documents (text passages and images such as figures and "
    "charts). Input: the question in natural language. Returns an answer that cites its sources as [n]."
)


def _error_output(tool_name: str, message: str, raw_input: dict[str, Any], exc: Exception) -> ToolOutput:
    """What every tool here returns on a failure: the message for the agent, flagged as an error."""
    return ToolOutput(
        content=message, tool_name=tool_name, raw_input=raw_input, raw_output=message, is_error=True, exception=exc
    )


class _CoreFunctionTool(FunctionTool):
    """A ``FunctionTool`` that validates arguments against ``fn_schema`` first and turns bad
    arguments and library errors into ``ToolOutput(is_error=True)`` (LlamaIndex's own
    ``FunctionTool`` raises, leaving it to the agent loop)."""

    def __init__(
        self,
        core: Any,
        schema: type[BaseModel],
        raw_output: Callable[[Any], Any],
    ) -> None:
        self.core = core
        self._schema = schema
        self._raw_output = raw_output

        def fn(**kwargs: Any) -> str:
            return str(core.run(**kwargs).text)

        async def async_fn(**kwargs: Any) -> str:
            return str((await core.arun(**kwargs)).text)

        fn.__name__ = async_fn.__name__ = core.name
        fn.__doc__ = async_fn.__doc__ = core.description
        metadata = ToolMetadata(name=core.name, description=core.description, fn_schema=schema)
        super().__init__(fn=fn, metadata=metadata, async_fn=async_fn)

    def _kwargs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Positional arguments (``tool("red circle")``) fill the parameters in order."""
        return merge_positional(self.core.params, args, {**self.partial_params, **kwargs})

    def _error(self, message: str, raw_input: dict[str, Any], exc: Exception) -> ToolOutput:
        return _error_output(self.metadata.get_name(), message, raw_input, exc)

    def _validate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        merged = self._kwargs(args, kwargs)
        # the schema's validator is the core's parse_tool_args: same checks and messages everywhere
        return self._schema.model_validate(merged).model_dump(include=set(merged))

    def _output(self, result: SearchResult | AnswerResult, raw_input: dict[str, Any]) -> ToolOutput:
        return ToolOutput(
            content=result.text,
            tool_name=self.metadata.get_name(),
            raw_input=raw_input,
            raw_output=self._raw_output(result),
        )

    def call(self, *args: Any, **kwargs: Any) -> ToolOutput:
        raw_input = {"args": args, "kwargs": kwargs}
        try:
            result = self.core.run(**self._validate(args, kwargs))
        except ValidationError as exc:
            return self._error(validation_message(self.metadata.get_name(), exc), raw_input, exc)
        except MMRagError as exc:
            return self._error(error_message(self.metadata.get_name(), exc), raw_input, exc)
        return self._output(result, raw_input)

    async def acall(self, *args: Any, **kwargs: Any) -> ToolOutput:
        raw_input = {"args": args, "kwargs": kwargs}
        try:
            result = await self.core.arun(**self._validate(args, kwargs))
        except ValidationError as exc:
            return self._error(validation_message(self.metadata.get_name(), exc), raw_input, exc)
        except MMRagError as exc:
            return self._error(error_message(self.metadata.get_name(), exc), raw_input, exc)
        return self._output(result, raw_input)


def _search_output(result: SearchResult) -> list[Any]:
    return [hit_to_node_with_score(hit) for hit in result.hits]


def _answer_output(result: AnswerResult) -> dict[str, Any]:
    return {**result.record(), "source_nodes": [hit_to_node_with_score(hit) for hit in result.answer.sources]}


def create_multimodal_search_tool(
    retriever: Retriever,
    *,
    name: str = SEARCH_TOOL_NAME,
    description: str = SEARCH_TOOL_DESCRIPTION,
    snippet_chars: int = 300,
) -> FunctionTool:
    """A ``FunctionTool`` searching *retriever* (any object with ``retrieve``): arguments ``query``,
    ``k`` (1..50, default 5), ``kind`` (``"text"`` | ``"image"``), ``source``; ``raw_output`` is the
    hits as ``NodeWithScore``s."""
    core = SearchTool(retriever, name=name, description=description, snippet_chars=snippet_chars)
    return _CoreFunctionTool(core, SearchArgs, _search_output)


def create_multimodal_answer_tool(
    retriever: Retriever,
    generator: Any = None,
    *,
    name: str = ANSWER_TOOL_NAME,
    description: str = ANSWER_TOOL_DESCRIPTION,
) -> FunctionTool:
    """A ``FunctionTool`` that retrieves and answers with *generator* (default: Gemini when an API
    key is set, else the extractive fallback); arguments ``question``, ``k``, ``kind``, ``source``;
    ``raw_output`` is ``{"answer", "generated", "model", "citations", "source_nodes"}``."""
    core = AnswerTool(retriever, generator, name=name, description=description)
    return _CoreFunctionTool(core, AnswerArgs, _answer_output)


class _CheckedQueryEngineTool(QueryEngineTool):
    """``QueryEngineTool`` that rejects an empty question and returns library errors as
    ``ToolOutput(is_error=True)``."""

    def _check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        query_str = self._get_query_str(*args, **kwargs)
        return parse_tool_args((ToolParam("input", "string", "", required=True),), {"input": query_str}).query

    def _error(self, exc: Exception, raw_input: dict[str, Any]) -> ToolOutput:
        name = self.metadata.get_name()
        return _error_output(name, error_message(name, exc), raw_input, exc)

    def call(self, *args: Any, **kwargs: Any) -> ToolOutput:
        try:
            return super().call(self._check(args, kwargs))
        except MMRagError as exc:
            return self._error(exc, {"args": args, "kwargs": kwargs})

    async def acall(self, *args: Any, **kwargs: Any) -> ToolOutput:
        try:
            return await super().acall(self._check(args, kwargs))
        except MMRagError as exc:
            return self._error(exc, {"args": args, "kwargs": kwargs})


def create_multimodal_query_engine_tool(
    query_engine: BaseQueryEngine,
    *,
    name: str = QUERY_TOOL_NAME,
    description: str = QUERY_TOOL_DESCRIPTION,
    return_direct: bool = False,
) -> QueryEngineTool:
    """A ``QueryEngineTool`` for a :class:`~.query_engine.MultiModalQueryEngine` (or any query
    engine); the agent passes ``input`` (the question). The output's ``raw_output`` is the
    ``Response`` with its ``source_nodes`` and ``metadata["citations"]``."""
    metadata = ToolMetadata(name=name, description=description, return_direct=return_direct)
    return _CheckedQueryEngineTool(query_engine=query_engine, metadata=metadata)
