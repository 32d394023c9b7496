"""The async twins every embedder of this package offers: each runs its sync method in a worker
thread (embedding is CPU/GPU work), so an event loop is never blocked. Torch-free, so the lazy
embedder (:mod:`.lazy`) can have them without importing the model code."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..types import ImageInput

__all__ = ["AsyncTwins"]


class AsyncTwins:
    """``aembed_*``: :meth:`embed_texts`, :meth:`embed_images`, :meth:`embed_text`,
    :meth:`embed_image` and :meth:`embed_query` of the class it is mixed into, in a worker thread."""

    embed_texts: Any
    embed_images: Any
    embed_text: Any
    embed_image: Any
    embed_query: Any

    async def aembed_texts(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """:meth:`embed_texts` in a worker thread, so an event loop is never blocked."""
        return await asyncio.to_thread(self.embed_texts, texts, batch_size=batch_size)

    async def aembed_images(self, images: Sequence[ImageInput], *, batch_size: int | None = None) -> np.ndarray:
        """:meth:`embed_images` in a worker thread."""
        return await asyncio.to_thread(self.embed_images, images, batch_size=batch_size)

    async def aembed_text(self, text: str) -> np.ndarray:
        """:meth:`embed_text` in a worker thread."""
        return await asyncio.to_thread(self.embed_text, text)

    async def aembed_image(self, image: ImageInput) -> np.ndarray:
        """:meth:`embed_image` in a worker thread."""
        return await asyncio.to_thread(self.embed_image, image)

    async def aembed_query(
        self, query: str | None = None, *, image: ImageInput | None = None, weight: float | None = None
    ) -> np.ndarray:
        """:meth:`embed_query` in a worker thread."""
        return await asyncio.to_thread(self.embed_query, query, image=image, weight=weight)
