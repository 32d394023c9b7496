"""Core value types shared by readers, embeddings, retrievers and generators.

All are frozen dataclasses: plain data, no framework import. The LangChain and LlamaIndex adapters
convert them to their own ``Document`` / ``Node`` types.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Union, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

__all__ = [
    "Answer",
    "BBox",
    "Chunk",
    "Citation",
    "Embedder",
    "FileError",
    "Hit",
    "ImageChunk",
    "ImageInput",
    "ItemError",
    "ReadResult",
    "Retriever",
    "TextChunk",
    "TextEmbedder",
]

#: ``(x0, y0, x1, y1)``, origin top-left: PDF points for PDF pages, pixels for images.
BBox = tuple[float, float, float, float]

#: An image given to the library: a file path, a ``data:`` URI, raw encoded bytes, or a PIL image.
ImageInput = Union[str, "os.PathLike[str]", bytes, "Image.Image"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TextChunk:
    """A piece of text from a document, with its provenance."""

    id: str
    text: str
    source: str
    page: int | None = None  # 1-based page number, when the format has pages
    position: int = 0  # order of this chunk within its source (text and images share one sequence)
    bbox: BBox | None = None
    section: str | None = None  # heading path, e.g. "Results > Table 2"
    prev_id: str | None = None
    next_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    kind: ClassVar[Literal["text"]] = "text"

    @property
    def search_text(self) -> str:
        """The text keyword search indexes for this chunk."""
        return self.text


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageChunk:
    """An image from a document (or an image file), stored by reference, with OCR text."""

    id: str
    source: str  # the document (or image file) it came from
    image_path: str  # where the image bytes live: the original file or a blob-store file
    content_hash: str  # hash of the image bytes; equal hashes mean duplicate images
    file_hash: str | None = None  # hash of the bytes at image_path as stored (a blob may be re-encoded)
    mime_type: str = "image/png"
    width: int = 0
    height: int = 0
    page: int | None = None
    position: int = 0
    bbox: BBox | None = None
    section: str | None = None
    alt_text: str = ""
    caption: str = ""
    ocr_text: str = ""
    ocr_confidence: float | None = None  # mean word confidence, 0..100
    prev_id: str | None = None
    next_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    kind: ClassVar[Literal["image"]] = "image"

    @property
    def text(self) -> str:
        """Human-readable text for the image: caption, alt text and OCR text."""
        return self.search_text

    @property
    def search_text(self) -> str:
        """The text keyword search indexes for this image: caption, alt text and OCR text."""
        return "\n".join(t for t in (self.caption, self.alt_text, self.ocr_text) if t)


Chunk = Union[TextChunk, ImageChunk]


@dataclass(frozen=True, slots=True)
class FileError:
    """A file (or item) that could not be read, and why. Returned beside the good results."""

    source: str
    error: str
    error_type: str = "InvalidInputError"

    def __str__(self) -> str:
        return f"{self.source}: {self.error}"


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What a reader or loader produced: the chunks, and one error per file that failed."""

    chunks: Sequence[Chunk]
    errors: Sequence[FileError] = ()

    @property
    def texts(self) -> list[TextChunk]:
        return [c for c in self.chunks if isinstance(c, TextChunk)]

    @property
    def images(self) -> list[ImageChunk]:
        return [c for c in self.chunks if isinstance(c, ImageChunk)]


@dataclass(frozen=True, slots=True)
class ItemError:
    """One input of a batch that failed; ``index`` is its position in the input."""

    index: int
    source: str
    error: Exception

    def __str__(self) -> str:
        return f"{self.source}: {self.error}"


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk with its fused score, explaining which ranked lists found it.

    ``ranks`` maps a list name (``"dense_text"``, ``"dense_image"``, ``"bm25"`` ...) to the 1-based
    rank the chunk had in that list; ``list_scores`` holds that list's raw score.
    """

    chunk: Chunk
    score: float
    ranks: Mapping[str, int] = field(default_factory=dict)
    list_scores: Mapping[str, float] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.chunk.id


@dataclass(frozen=True, slots=True)
class Citation:
    """A ``[n]`` marker in an answer, mapped back to the retrieved source it cites."""

    number: int
    hit: Hit

    @property
    def source(self) -> str:
        return self.hit.chunk.source

    @property
    def page(self) -> int | None:
        return self.hit.chunk.page


@dataclass(frozen=True, slots=True)
class Answer:
    """A generated (or, without a generator, extractive) answer with its sources."""

    text: str
    sources: Sequence[Hit]
    citations: Sequence[Citation] = ()
    generated: bool = True  # False for the extractive fallback
    model: str | None = None


@runtime_checkable
class Embedder(Protocol):
    """What the index and retrievers need from an embedding model: text and images into one space.

    ``embed_images(..., on_error="collect")`` returns an object with ``vectors`` (one row per
    input, NaN for failures) and ``errors`` (each with ``index`` and ``error``) instead of raising;
    ``embed_query`` embeds a text, an image, or both fused into one query vector.
    (:class:`~mm_rag_plugin.OpenCLIPEmbedder` implements all of it.)"""

    @property
    def dim(self) -> int: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_images(self, images: Sequence[ImageInput], *, on_error: str = "raise") -> Any: ...

    def embed_query(self, text: str | None = None, *, image: ImageInput | None = None) -> np.ndarray: ...


@runtime_checkable
class TextEmbedder(Protocol):
    """A text embedding model beside CLIP (an index's optional second dense vector, ``text``).

    ``embed_documents`` and ``embed_query`` return L2-normalised float32 rows (one per text; one
    vector); ``dim`` is their size; ``identity()`` is what the index manifest records for it (a
    JSON object with at least ``name``), compared when the index is opened again. Adapters:
    :class:`~mm_rag_plugin.embeddings.text_model.SentenceTransformerTextEmbedder`, and in the
    integrations packages one over a LangChain ``Embeddings`` and one over a LlamaIndex
    ``BaseEmbedding``."""

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def identity(self) -> dict[str, Any]: ...


@runtime_checkable
class Retriever(Protocol):
    """What generators and framework adapters need from a retriever.

    ``query`` is text, ``image`` an image input; either or both. ``filters`` restricts by payload
    fields (``{"source": ..., "page": ..., "kind": "image"}``). Returns hits best first.
    """

    def retrieve(
        self,
        query: str | None = None,
        *,
        image: ImageInput | None = None,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Hit]: ...
