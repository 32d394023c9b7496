"""One-call question answering: retrieve with any :class:`~mm_rag_plugin.types.Retriever`, then
generate with Gemini, or extractively when no API key is configured."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInputError
from ..types import Answer, ImageInput, Retriever
from .base import AnswerGenerator
from .extractive import ExtractiveGenerator
from .gemini import API_KEY_ENV_VARS, resolve_api_key

logger = logging.getLogger(__name__)

__all__ = ["aanswer", "answer", "default_generator"]


def default_generator(*, api_key: Any = None, **gemini_options: Any) -> AnswerGenerator:
    """A :class:`GeminiGenerator` when an API key (or Vertex AI) is configured, else an
    :class:`ExtractiveGenerator` (logged at warning level, and stated in every answer)."""
    vertex = gemini_options.get("vertexai")
    if vertex is None:
        vertex = os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").strip().lower() in ("1", "true", "yes")
    if resolve_api_key(api_key) or vertex or gemini_options.get("client") is not None:
        from .gemini import GeminiGenerator

        return GeminiGenerator(api_key=api_key, **gemini_options)
    logger.warning(
        "no Gemini API key (%s); answering extractively without a generator", " / ".join(API_KEY_ENV_VARS)
    )
    return ExtractiveGenerator()


def _check(retriever: object, generator: object) -> None:
    if not isinstance(retriever, Retriever):
        raise InvalidInputError(
            f"retriever must have a retrieve(query, *, image=, k=, filters=) method, got {type(retriever).__name__}",
            source="retriever",
        )
    if generator is not None and not isinstance(generator, AnswerGenerator):
        raise InvalidInputError(
            f"generator must have generate/agenerate/stream/astream, got {type(generator).__name__}",
            source="generator",
        )


def answer(
    question: str,
    retriever: Retriever,
    *,
    generator: AnswerGenerator | None = None,
    k: int | None = None,
    image: ImageInput | None = None,
    filters: Mapping[str, Any] | None = None,
) -> Answer:
    """Retrieve for *question* (and optional query *image*), then answer with *generator*
    (default: :func:`default_generator`)."""
    _check(retriever, generator)
    hits = retriever.retrieve(question, image=image, k=k, filters=filters)
    return (generator or default_generator()).generate(question, hits)


async def aanswer(
    question: str,
    retriever: Retriever,
    *,
    generator: AnswerGenerator | None = None,
    k: int | None = None,
    image: ImageInput | None = None,
    filters: Mapping[str, Any] | None = None,
) -> Answer:
    """Async :func:`answer`. Retrieval (CPU-bound embedding) runs in a worker thread unless the
    retriever has its own ``aretrieve``."""
    _check(retriever, generator)
    aretrieve = getattr(retriever, "aretrieve", None)
    if aretrieve is not None and asyncio.iscoroutinefunction(aretrieve):
        hits = await aretrieve(question, image=image, k=k, filters=filters)
    else:
        hits = await asyncio.to_thread(retriever.retrieve, question, image=image, k=k, filters=filters)
    return await (generator or default_generator()).agenerate(question, hits)
