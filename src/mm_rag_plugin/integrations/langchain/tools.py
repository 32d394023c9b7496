"""LangChain agent tools over any :class:`~mm_rag_plugin.types.Retriever`.

Thin wrappers of the core :class:`~mm_rag_plugin.tools.SearchTool` / ``AnswerTool``: arguments,
validation and the text the agent reads come from the core. Both tools use
``response_format="content_and_artifact"``: called with a tool call
(``tool.invoke({"name": ..., "args": {...}, "id": "call_1", "type": "tool_call"})``) they return a
``ToolMessage`` whose ``content`` is the agent-readable text and whose ``artifact`` holds the
retrieved ``Document``s. Bad arguments and failures come back as a ``ToolMessage`` with
``status="error"`` and a message saying what to fix, never as an exception in the agent loop.
A plain string (``tool.invoke("red circle")``) is the query (the question for the answer tool).
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.documents import Document
from langchain_core.tools import BaseTool, ToolException
from langchain_core.tools.base import ArgsSchema
from pydantic import ConfigDict, ValidationError

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
)
from ...types import Retriever
from .._tool_schema import AnswerArgs, SearchArgs, error_message, validation_message
from ._convert import hit_to_document

__all__ = [
    "MultiModalAnswerTool",
    "MultiModalSearchTool",
    "create_multimodal_answer_tool",
    "create_multimodal_search_tool",
]



def _core_retriever(retriever: Any) -> Any:
    """The core retriever behind a LangChain one of this package (``MultiModalRetriever``, or the
    store's ``as_retriever()`` in its default hybrid mode); any other retriever as it is."""
    from langchain_core.retrievers import BaseRetriever

    from ...errors import ConfigurationError
    from ...retrievers import FusedRetriever
    from .retrievers import MultiModalRetriever
    from .vectorstores import MultiModalVectorStoreRetriever

    if isinstance(retriever, MultiModalRetriever):
        return retriever.retriever
    if isinstance(retriever, MultiModalVectorStoreRetriever):
        kwargs = retriever.search_kwargs
        if retriever.search_type != "hybrid" or kwargs.get("filter") or kwargs.get("image") is not None:
            raise ConfigurationError(
                "a tool searches the store's index by hybrid search, filtering by kind and source per call: use "
                "store.as_retriever() without search_type, filter or image, or pass FusedRetriever(store.index, ...)"
            )
        store = retriever.vectorstore
        return FusedRetriever(
            store.index, weights=kwargs.get("weights"), rrf_k=kwargs.get("rrf_k", store.rrf_k),  # type: ignore[attr-defined]
            prefetch_k=kwargs.get("fetch_k"),
        )
    if isinstance(retriever, BaseRetriever):
        raise ConfigurationError(
            f"retriever: a LangChain {type(retriever).__name__} returns Documents, and the tools need hits with scores "
            "and sources: pass store.as_retriever(), MultiModalRetriever(...) or FusedRetriever(index)"
        )
    return retriever


def _handle_tool_error(exc: ToolException) -> str:
    return str(exc.args[0]) if exc.args else "Error: the tool failed"


class _CoreTool(BaseTool):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    core: Any
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: Any = _handle_tool_error

    def __init__(self, **data: Any) -> None:
        custom_handler = "handle_validation_error" in data
        super().__init__(**data)
        if not custom_handler:  # k=0, an unknown kind, an empty query ... -> an error ToolMessage
            name = self.name
            self.handle_validation_error = lambda exc: (  # (a pydantic v1 error cannot come from our v2 schemas)
                validation_message(name, exc) if isinstance(exc, ValidationError) else str(exc)
            )

    def _artifact(self, result: Any) -> Any:
        raise NotImplementedError

    def _run(self, *args: Any, run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any) -> Any:
        # a plain string input reaches here as one positional argument: the query
        try:
            result = self.core.run(*args, **kwargs)
        except MMRagError as exc:
            raise ToolException(error_message(self.name, exc)) from exc
        return result.text, self._artifact(result)

    async def _arun(
        self, *args: Any, run_manager: AsyncCallbackManagerForToolRun | None = None, **kwargs: Any
    ) -> Any:
        try:
            result = await self.core.arun(*args, **kwargs)  # retrieval runs in a worker thread
        except MMRagError as exc:
            raise ToolException(error_message(self.name, exc)) from exc
        return result.text, self._artifact(result)


class MultiModalSearchTool(_CoreTool):
    """Search the multimodal index: ``query`` (str), ``k`` (1..50, default 5), ``kind``
    (``"text"`` | ``"image"``), ``source`` (a file name or the source path shown in results). Content: numbered hits with source, page,
    kind, image path, score and snippet. Artifact: the hits as ``Document``s
    (:func:`~mm_rag_plugin.integrations.langchain._convert.hit_to_document`).

    Build with ``MultiModalSearchTool(retriever=...)`` or :func:`create_multimodal_search_tool`.
    """

    name: str = SEARCH_TOOL_NAME
    description: str = SEARCH_TOOL_DESCRIPTION
    args_schema: ArgsSchema | None = SearchArgs

    def __init__(self, retriever: Retriever | None = None, *, snippet_chars: int = 300, **data: Any) -> None:
        if "core" not in data:
            data["core"] = SearchTool(
                _core_retriever(retriever),
                name=data.get("name", SEARCH_TOOL_NAME),
                description=data.get("description", SEARCH_TOOL_DESCRIPTION),
                snippet_chars=snippet_chars,
            )
        super().__init__(**data)

    def _artifact(self, result: SearchResult) -> list[Document]:
        return [hit_to_document(hit) for hit in result.hits]


class MultiModalAnswerTool(_CoreTool):
    """Retrieve and answer: ``question`` (str), ``k``, ``kind``, ``source`` as for search.
    Content: the answer citing ``[n]``, then the cited sources. Artifact: ``{"answer", "generated",
    "model", "citations" (dicts: number, id, kind, source, page, image_path, score), "documents"
    (the numbered sources: ``[n]`` is ``documents[n-1]``)}``.

    *generator* defaults to Gemini when ``GOOGLE_API_KEY`` / ``GEMINI_API_KEY`` is set, else the
    extractive fallback (which says in the answer that no generator was used).
    """

    name: str = ANSWER_TOOL_NAME
    description: str = ANSWER_TOOL_DESCRIPTION
    args_schema: ArgsSchema | None = AnswerArgs

    def __init__(self, retriever: Retriever | None = None, generator: Any = None, **data: Any) -> None:
        if "core" not in data:
            data["core"] = AnswerTool(
                _core_retriever(retriever),
                generator,
                name=data.get("name", ANSWER_TOOL_NAME),
                description=data.get("description", ANSWER_TOOL_DESCRIPTION),
            )
        super().__init__(**data)

    def _artifact(self, result: AnswerResult) -> dict[str, Any]:
        return {**result.record(), "documents": [hit_to_document(hit) for hit in result.answer.sources]}


def create_multimodal_search_tool(
    retriever: Retriever,
    *,
    name: str = SEARCH_TOOL_NAME,
    description: str = SEARCH_TOOL_DESCRIPTION,
    snippet_chars: int = 300,
) -> MultiModalSearchTool:
    """A :class:`MultiModalSearchTool` over *retriever*: a core retriever (any object with
    ``retrieve``), ``MultiModalRetriever``, or a ``MultiModalVectorStore``'s ``as_retriever()``."""
    return MultiModalSearchTool(retriever, name=name, description=description, snippet_chars=snippet_chars)


def create_multimodal_answer_tool(
    retriever: Retriever,
    generator: Any = None,
    *,
    name: str = ANSWER_TOOL_NAME,
    description: str = ANSWER_TOOL_DESCRIPTION,
) -> MultiModalAnswerTool:
    """A :class:`MultiModalAnswerTool` over *retriever*, answering with *generator*."""
    return MultiModalAnswerTool(retriever, generator, name=name, description=description)
