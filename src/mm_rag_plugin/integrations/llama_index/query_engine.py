"""A LlamaIndex query engine: retrieve text and image nodes, answer with a multimodal chat LLM
(``llm=``, else ``Settings.llm`` when set, else LlamaIndex's ``GoogleGenAI``) using ``ImageBlock``s,
return a ``Response`` with ``source_nodes`` and the citations.

The prompt (numbering, fencing, image budget) is the core's
:func:`mm_rag_plugin.generators.build_prompt`; this module only converts nodes and message blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock
from llama_index.core.base.response.schema import AsyncStreamingResponse, Response, StreamingResponse
from llama_index.core.llms import LLM
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore
from llama_index.core.settings import Settings
from pydantic import ConfigDict, Field

from ...errors import ConfigurationError, InvalidInputError
from ...generators.citations import cited_numbers
from ...generators.prompt import PromptImage, PromptOptions, build_prompt
from ...types import Hit
from ._convert import node_to_chunk

__all__ = ["MultiModalQueryEngine", "nodes_to_messages", "number_nodes"]



def number_nodes(nodes: Sequence[NodeWithScore]) -> list[tuple[NodeWithScore, Hit]]:
    """The nodes as numbered sources (``[n]`` is item ``n - 1``), duplicates dropped."""
    out: list[tuple[NodeWithScore, Hit]] = []
    seen: set[str] = set()
    for i, nws in enumerate(nodes):
        if not isinstance(nws, NodeWithScore):
            raise InvalidInputError(
                f"expected a NodeWithScore, got {type(nws).__name__}", source=f"nodes[{i}]"
            )
        hit = Hit(node_to_chunk(nws.node), float(nws.score or 0.0))
        if hit.id not in seen:
            seen.add(hit.id)
            out.append((nws, hit))
    return out


def nodes_to_messages(
    question: str, nodes: Sequence[NodeWithScore], options: PromptOptions | None = None
) -> list[ChatMessage]:
    """``[system, user]`` chat messages; the user message holds the fenced, numbered sources as
    ``TextBlock``s with each image as an ``ImageBlock`` inside its fence, then the question."""
    prompt = build_prompt(question, [hit for _, hit in number_nodes(nodes)], options)
    blocks: list[Any] = [
        ImageBlock(image=p.data, image_mimetype=p.mime_type)
        if isinstance(p, PromptImage)
        else TextBlock(text=p)
        for p in prompt.parts
    ]
    return [
        ChatMessage(role=MessageRole.SYSTEM, content=prompt.system_instruction),
        ChatMessage(role=MessageRole.USER, blocks=blocks),
    ]


def _default_llm() -> LLM:
    """``Settings.llm`` when the application set one (LlamaIndex's convention), else GoogleGenAI
    with the Gemini API key from the environment."""
    from ...generators.gemini import DEFAULT_GEMINI_MODEL, resolve_api_key

    if getattr(Settings, "_llm", None) is not None:  # set, not LlamaIndex's lazy OpenAI default
        return Settings.llm
    key = resolve_api_key()
    if not key:
        raise ConfigurationError(
            "no LLM: pass llm=<any multimodal LlamaIndex LLM>, set llama_index.core.Settings.llm, "
            "or set a Gemini API key (GOOGLE_API_KEY / GEMINI_API_KEY) for the default GoogleGenAI"
        )
    try:
        from llama_index.llms.google_genai import GoogleGenAI
    except ImportError as exc:
        raise ConfigurationError(
            "the default LLM needs llama-index-llms-google-genai, or pass llm=..."
        ) from exc
    return GoogleGenAI(model=DEFAULT_GEMINI_MODEL, api_key=key)


def _outside_running_loop(fn: Any, *args: Any) -> Any:
    """Call *fn* in a worker thread when this thread runs an event loop (Jupyter).

    Some LlamaIndex LLMs (GoogleGenAI among them) implement sync ``chat`` with ``asyncio.run``,
    which fails inside a running loop; a plain thread has none.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


class MultiModalQueryEngine(CustomQueryEngine):
    """Retrieve with *retriever*, answer with *llm* over text and images, cite sources ``[n]``.

    *llm* defaults to ``Settings.llm`` when the application has set one, else to GoogleGenAI
    (Gemini key from ``GOOGLE_API_KEY`` / ``GEMINI_API_KEY``).

    ``query``/``aquery`` return a ``Response`` whose ``source_nodes`` are the numbered sources
    (``[n]`` is ``source_nodes[n-1]``) and whose ``metadata["citations"]`` lists
    ``{"number", "source", "page", "kind", "node_id"}``.

    With ``streaming=True``, ``query`` returns a ``StreamingResponse`` (``aquery`` an
    ``AsyncStreamingResponse``) whose ``response_gen`` yields the answer text as the LLM streams
    it; ``metadata["citations"]`` is filled in once the stream has been read to its end.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: BaseRetriever
    llm: Any = Field(
        default=None,
        description="A LlamaIndex LLM that accepts ImageBlocks (default: Settings.llm when set, else GoogleGenAI)",
    )
    prompt_options: PromptOptions | None = None
    streaming: bool = False

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        if self.llm is None:
            self.llm = _default_llm()

    @staticmethod
    def _citations(text: str, numbered: list[tuple[NodeWithScore, Hit]]) -> list[dict[str, Any]]:
        citations = []
        for n in cited_numbers(text, len(numbered)):
            nws, hit = numbered[n - 1]
            citations.append(
                {
                    "number": n,
                    "source": hit.chunk.source,
                    "page": hit.chunk.page,
                    "kind": hit.chunk.kind,
                    "node_id": nws.node.node_id,
                }
            )
        return citations

    def _response(self, text: str, numbered: list[tuple[NodeWithScore, Hit]]) -> Response:
        return Response(
            response=text,
            source_nodes=[nws for nws, _ in numbered],
            metadata={"citations": self._citations(text, numbered)},
        )

    def _prepare(self, query_str: str, nodes: list[NodeWithScore]) -> tuple[list[Any], list[ChatMessage]]:
        numbered = number_nodes(nodes)
        return numbered, nodes_to_messages(query_str, [nws for nws, _ in numbered], self.prompt_options)

    def custom_query(self, query_str: str) -> Response | StreamingResponse:
        numbered, messages = self._prepare(query_str, self.retriever.retrieve(query_str))
        if not self.streaming:
            reply = _outside_running_loop(self.llm.chat, messages)
            return self._response(reply.message.content or "", numbered)
        metadata: dict[str, Any] = {"citations": []}

        def deltas() -> Generator[str, None, None]:
            pieces: list[str] = []
            for chunk in self.llm.stream_chat(messages):
                if chunk.delta:
                    pieces.append(chunk.delta)
                    yield chunk.delta
            metadata["citations"] = self._citations("".join(pieces), numbered)

        return StreamingResponse(
            response_gen=deltas(), source_nodes=[nws for nws, _ in numbered], metadata=metadata
        )

    async def acustom_query(self, query_str: str) -> Response | AsyncStreamingResponse:
        numbered, messages = self._prepare(query_str, await self.retriever.aretrieve(query_str))
        if not self.streaming:
            reply = await self.llm.achat(messages)
            return self._response(reply.message.content or "", numbered)
        metadata: dict[str, Any] = {"citations": []}
        stream = await self.llm.astream_chat(messages)

        async def deltas() -> AsyncGenerator[str, None]:
            pieces: list[str] = []
            async for chunk in stream:
                if chunk.delta:
                    pieces.append(chunk.delta)
                    yield chunk.delta
            metadata["citations"] = self._citations("".join(pieces), numbered)

        return AsyncStreamingResponse(
            response_gen=deltas(), source_nodes=[nws for nws, _ in numbered], metadata=metadata
        )
