"""LlamaIndex ``MultiModalEmbedding`` over :class:`~mm_rag_plugin.OpenCLIPEmbedder`."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from ..._optional import require

require("llama_index.core", extra="llamaindex", package="llama-index-core")

from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.bridge.pydantic import Field, PrivateAttr  # noqa: E402
from llama_index.core.embeddings import MultiModalEmbedding  # noqa: E402
from llama_index.core.schema import ImageType  # noqa: E402

from ...embeddings.open_clip import OpenCLIPEmbedder  # noqa: E402
from .._framework import FrameworkTextModel  # noqa: E402

__all__ = ["LlamaIndexTextModel", "OpenCLIPEmbedding"]

Embedding = list[float]


def _image(img: ImageType) -> Any:
    return img.getvalue() if isinstance(img, BytesIO) else img


class OpenCLIPEmbedding(MultiModalEmbedding):
    """Text and image embeddings in one space, for LlamaIndex indices and query engines.

    Takes the arguments of :class:`~mm_rag_plugin.OpenCLIPEmbedder`, or ``embedder=`` an existing
    one. Batches really run batched (one forward pass per ``embed_batch_size`` items).
    """

    embed_batch_size: int = Field(default=32, gt=0, description="Items per forward pass.")
    _embedder: OpenCLIPEmbedder = PrivateAttr()

    def __init__(self, *, embedder: OpenCLIPEmbedder | None = None, embed_batch_size: int = 32, **kwargs: Any):
        embedder = embedder if embedder is not None else OpenCLIPEmbedder(batch_size=embed_batch_size, **kwargs)
        super().__init__(model_name=embedder.model_name, embed_batch_size=embed_batch_size)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "MMRagOpenCLIPEmbedding"

    @property
    def embedder(self) -> OpenCLIPEmbedder:
        return self._embedder

    # text
    def _get_query_embedding(self, query: str) -> Embedding:
        return self._embedder.embed_query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await self._embedder.aembed_query(query)).tolist()

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._embedder.embed_texts([text])[0].tolist()

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._embedder.aembed_texts([text]))[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._embedder.embed_texts(texts, batch_size=self.embed_batch_size).tolist()

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return (await self._embedder.aembed_texts(texts, batch_size=self.embed_batch_size)).tolist()

    # images
    def _get_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return self._embedder.embed_images([_image(img_file_path)])[0].tolist()

    async def _aget_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return (await self._embedder.aembed_images([_image(img_file_path)]))[0].tolist()

    def _get_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        images = [_image(p) for p in img_file_paths]
        return self._embedder.embed_images(images, batch_size=self.embed_batch_size).tolist()

    async def _aget_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        images = [_image(p) for p in img_file_paths]
        return (await self._embedder.aembed_images(images, batch_size=self.embed_batch_size)).tolist()


class LlamaIndexTextModel(FrameworkTextModel):
    """Any LlamaIndex ``BaseEmbedding`` as an index's text model beside CLIP (see
    :class:`~mm_rag_plugin.types.TextEmbedder`); ``name=``: the model's name when the object does
    not say it."""

    def __init__(self, embedding: BaseEmbedding, *, name: str | None = None) -> None:
        if not isinstance(embedding, BaseEmbedding):
            raise TypeError(f"expected a llama_index BaseEmbedding, got {type(embedding).__name__}")
        super().__init__(embedding, "llama_index", name=name)
