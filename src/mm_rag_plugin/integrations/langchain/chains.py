"""LangChain chain helpers: retrieved Documents (text and images) -> multimodal messages -> answer.

The prompt itself (numbering, fencing, image budget) is the core's
:func:`mm_rag_plugin.generators.build_prompt`; this module only converts Documents to hits and the
prompt parts to LangChain content blocks (standard ``{"type": "image", "base64": ...}`` blocks, which
``ChatGoogleGenerativeAI`` and other multimodal chat models accept).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel

from ...errors import ConfigurationError, InvalidInputError
from ...generators.citations import cited_numbers
from ...generators.prompt import PromptImage, PromptOptions, build_prompt
from ...types import Hit
from ._convert import document_to_chunk

__all__ = ["create_multimodal_rag_chain", "documents_to_messages", "number_documents"]


def number_documents(documents: Sequence[Document]) -> list[tuple[Document, Hit]]:
    """The documents as numbered sources (``[n]`` is item ``n - 1``), duplicates dropped."""
    out: list[tuple[Document, Hit]] = []
    seen: set[str] = set()
    for i, doc in enumerate(documents):
        if not isinstance(doc, Document):
            raise InvalidInputError(
                f"expected a LangChain Document, got {type(doc).__name__}", source=f"documents[{i}]"
            )
        hit = Hit(document_to_chunk(doc), float(doc.metadata.get("score") or 0.0))
        if hit.id not in seen:
            seen.add(hit.id)
            out.append((doc, hit))
    return out


def documents_to_messages(
    question: str, documents: Sequence[Document], options: PromptOptions | None = None
) -> list[BaseMessage]:
    """``[SystemMessage, HumanMessage]``: the human message holds the numbered, fenced sources as
    text blocks with each image (``metadata["kind"] == "image"``, read from ``image_path``) as an
    image block inside its source's fence, then the question."""
    hits = [hit for _, hit in number_documents(documents)]
    prompt = build_prompt(question, hits, options)
    blocks: list[str | dict[str, Any]] = []
    for part in prompt.parts:
        if isinstance(part, PromptImage):
            blocks.append(
                {
                    "type": "image",
                    "base64": base64.b64encode(part.data).decode("ascii"),
                    "mime_type": part.mime_type,
                }
            )
        else:
            blocks.append({"type": "text", "text": part})
    return [SystemMessage(content=prompt.system_instruction), HumanMessage(content=blocks)]


def _question(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("question")
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            "the chain input must be a question string (or {'question': ...})", source="input"
        )
    return value


def _citations(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    numbered = number_documents(inputs["documents"])
    out = []
    for n in cited_numbers(inputs["answer"], len(numbered)):
        doc, hit = numbered[n - 1]
        out.append(
            {
                "number": n,
                "source": hit.chunk.source,
                "page": hit.chunk.page,
                "kind": hit.chunk.kind,
                "document": doc,
            }
        )
    return out


def _default_llm() -> BaseChatModel:
    from ...generators.gemini import DEFAULT_GEMINI_MODEL, resolve_api_key

    if not resolve_api_key():
        raise ConfigurationError(
            "no Gemini API key (GOOGLE_API_KEY / GEMINI_API_KEY) for the default ChatGoogleGenerativeAI; "
            "set one or pass llm=<any chat model>"
        )
    try:
        from langchain_google_genai import ChatGoogleGenerativeAI
    except ImportError as exc:
        raise ConfigurationError(
            "the default chat model needs langchain-google-genai (pip install langchain-google-genai), "
            "or pass llm=<any chat model>"
        ) from exc
    return ChatGoogleGenerativeAI(model=DEFAULT_GEMINI_MODEL)


def create_multimodal_rag_chain(
    retriever: BaseRetriever | Runnable[str, list[Document]],
    llm: BaseChatModel | Runnable[Any, Any] | None = None,
    *,
    prompt_options: PromptOptions | None = None,
) -> Runnable[Any, dict[str, Any]]:
    """``retriever | prompt | llm | parser`` in LCEL, returning answer and sources.

    Input: a question string (or ``{"question": ...}``). Output: ``{"question", "documents"
    (the retrieved Documents, ``[n]`` is ``documents[n-1]`` after duplicates are dropped),
    "answer" (str), "citations" (``[{"number", "source", "page", "kind", "document"}]``)}``.
    ``invoke``, ``ainvoke``, ``batch`` and ``stream`` work; streaming yields the ``answer`` in
    pieces and ``citations`` last. *llm* defaults to ``ChatGoogleGenerativeAI`` on
    ``gemini-2.5-flash``; any chat model can be passed instead.
    """
    model = llm if llm is not None else _default_llm()

    def to_messages(inputs: dict[str, Any]) -> list[BaseMessage]:
        return documents_to_messages(inputs["question"], inputs["documents"], prompt_options)

    question = RunnableLambda(_question).with_config(run_name="question")
    answer = RunnableLambda(to_messages).with_config(run_name="multimodal_prompt") | model | StrOutputParser()
    return (
        RunnableParallel(question=question, documents=question | retriever)
        .assign(answer=answer)
        .assign(citations=RunnableLambda(_citations).with_config(run_name="citations"))
        .with_config(run_name="multimodal_rag")
    )
