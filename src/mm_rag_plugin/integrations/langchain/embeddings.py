"""LangChain ``Embeddings`` over :class:`~mm_rag_plugin.OpenCLIPEmbedder`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from ..._optional import require

require("langchain_core", extra="langchain")

from langchain_core.embeddings import Embeddings  # noqa: E402

from ...embeddings.open_clip import OpenCLIPEmbedder  # noqa: E402
from ...types import ImageInput  # noqa: E402
from .._framework import FrameworkTextModel  # noqa: E402

__all__ = ["LangChainTextModel", "OpenCLIPEmbeddings"]


def _image_list(uris: Sequence[ImageInput] | ImageInput) -> list[ImageInput]:
    """*uris* as a list: one path, URI, bytes or image is a list of one (a string is not a
    sequence of one-letter paths)."""
    if isinstance(uris, (str, bytes, os.PathLike)) or not isinstance(uris, Iterable):
        return [uris]
    return list(uris)


class OpenCLIPEmbeddings(Embeddings):
    """Text and image embeddings in one space, for LangChain vector stores and retrievers.

    ``OpenCLIPEmbeddings(model_name="ViT-B-32", pretrained="laion2b_s34b_b79k")`` takes the same
    arguments as :class:`~mm_rag_plugin.OpenCLIPEmbedder`, or ``embedder=`` an existing one (share
    one model between the LangChain and LlamaIndex adapters).
    """

    def __init__(self, *, embedder: OpenCLIPEmbedder | None = None, **kwargs: Any) -> None:
        self.embedder = embedder if embedder is not None else OpenCLIPEmbedder(**kwargs)

    @property
    def model_name(self) -> str:
        return self.embedder.model_name

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_texts(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return (await self.embedder.aembed_texts(texts)).tolist()

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.embedder.aembed_query(text)).tolist()

    def embed_image(self, uris: Sequence[ImageInput] | ImageInput) -> list[list[float]]:
        """Embed images (paths, ``data:`` URIs, bytes or PIL images) into the text space; one
        vector per image, as ``langchain_experimental``'s ``OpenCLIPEmbeddings.embed_image``. A
        single image (one path string ...) counts as a list of one."""
        return self.embedder.embed_images(_image_list(uris)).tolist()

    async def aembed_image(self, uris: Sequence[ImageInput] | ImageInput) -> list[list[float]]:
        return (await self.embedder.aembed_images(_image_list(uris))).tolist()

    def embed_multimodal(self, text: str, image: ImageInput, *, weight: float | None = None) -> list[float]:
        """One vector for a text and an image together (see ``OpenCLIPEmbedder.embed_multimodal``)."""
        return self.embedder.embed_multimodal(text, image, weight=weight).tolist()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.embedder!r})"


class LangChainTextModel(FrameworkTextModel):
    """Any LangChain ``Embeddings`` as an index's text model beside CLIP
    (``MultiModalIndex(..., text_embedder=LangChainTextModel(HuggingFaceEmbeddings(...)))``):
    chunks' text and images' caption / alt / OCR text get a second vector, searched as the
    ``text_model`` list. ``name=``: the model's name when the object does not say it."""

    def __init__(self, embeddings: Embeddings, *, name: str | None = None) -> None:
        if not isinstance(embeddings, Embeddings):
            raise TypeError(f"expected a langchain_core Embeddings, got {type(embeddings).__name__}")
        super().__init__(embeddings, "langchain", name=name)
