"""An embedder that answers text queries from the NumPy text tower and loads the whole open_clip
model only when something else is asked of it (an image, a large batch of texts, the model).

:func:`~mm_rag_plugin.retrievers.manifest.load_model` returns one when an index's model has a
cached text tower (:mod:`.text_tower`): a process that only searches by text never imports torch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError, echo
from ..types import ImageInput
from ._twins import AsyncTwins
from .text_tower import NumpyTextTower

__all__ = ["LazyOpenCLIPEmbedder"]

#: Texts per call the NumPy tower embeds; larger batches (ingest) go through the whole model.
MAX_TOWER_TEXTS = 16


class LazyOpenCLIPEmbedder(AsyncTwins):
    """Texts (a few at a time) through *tower*; everything else through the
    :class:`~mm_rag_plugin.OpenCLIPEmbedder` that *load* builds, once, on first need.

    ``model_name``, ``pretrained`` and ``dim`` are those the whole model will have (they identify
    the vectors without loading it)."""

    def __init__(
        self, tower: NumpyTextTower, load: Callable[[], Any], *, model_name: str, pretrained: str | None, dim: int,
        multimodal_weight: float = 0.5,
    ) -> None:
        self.tower = tower
        self._load = load
        self._full: Any = None
        self._lock = threading.Lock()
        self.model_name, self.pretrained, self.dim = model_name, pretrained, int(dim)
        self.multimodal_weight = multimodal_weight
        self.precision = "fp32"  # the tower's; the whole model's once loaded
        self.context_length = tower.context_length

    @property
    def loaded(self) -> bool:
        """Whether the whole open_clip model has been loaded."""
        return self._full is not None

    def full(self) -> Any:
        """The whole :class:`~mm_rag_plugin.OpenCLIPEmbedder` (loaded now if not yet)."""
        with self._lock:
            if self._full is None:
                self._full = self._load()
                self.precision = self._full.precision
        return self._full

    def __getattr__(self, name: str) -> Any:  # model, device, preprocess, embed_images ...
        if name.startswith("__") or name in ("_full", "_load", "_lock", "tower", "identity"):
            raise AttributeError(name)
        return getattr(self.full(), name)

    # ------------------------------------------------------------------ texts
    def embed_texts(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        if self._full is not None or isinstance(texts, str) or len(texts) > MAX_TOWER_TEXTS:
            return self.full().embed_texts(texts, batch_size=batch_size)
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InvalidInputError(f"expected str, got {type(t).__name__}: {echo(t, 80)}", source=f"texts[{i}]")
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return self.tower.embed_texts(texts)

    def embed_text(self, text: str) -> np.ndarray:
        if not isinstance(text, str):
            raise InvalidInputError(f"embed_text takes one string, got {type(text).__name__} (use embed_texts for a list)")
        return self.embed_texts([text])[0]

    def embed_query(
        self, query: str | None = None, *, image: ImageInput | None = None, weight: float | None = None
    ) -> np.ndarray:
        if image is None and isinstance(query, str):
            return self.embed_texts([query])[0]
        return self.full().embed_query(query, image=image, weight=weight)

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "text tower only"
        return f"{type(self).__name__}(model_name={self.model_name!r}, pretrained={self.pretrained!r}, dim={self.dim}, {state})"
