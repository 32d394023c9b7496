"""One loop that embeds a mixed batch of text and image chunks, with one error rule.

:func:`embed_chunks` is what ingest (:meth:`MultiModalIndex.add`), both framework vector stores and
reindexing call: the texts of a batch are embedded in one ``embed_texts`` call, its images in one
``embed_images(..., on_error="collect")`` call, and every row is checked by :func:`vector_problem`
(the one copy of the check the index applies before it stores a vector). A bad item (an image that
cannot be read, a vector of the wrong size, with NaN or infinite values, or all zeros) is reported
in one line naming its file and the problem; the others are kept, in input order.

Framework-free: it needs only an :class:`~mm_rag_plugin.types.Embedder` and chunks. An embedder
that embeds no images (a LangChain / LlamaIndex text model) raises its own ``ConfigurationError``
when a batch holds images: that is how the store was set up, not a fault of one item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..types import Chunk, Embedder, FileError, ImageChunk

__all__ = ["ChunkError", "Embedded", "ImageVectors", "embed_chunk_texts", "embed_chunks", "vector_problem"]

#: Below this norm a vector counts as all zeros (no direction to compare by cosine).
_MIN_NORM = 1e-6


def vector_problem(vector: Any, dim: int) -> str | None:
    """What makes *vector* unfit to store as a *dim*-d dense vector, or ``None`` when it is fit:
    the wrong size, NaN or infinite values, or all zeros."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.shape != (dim,):
        return f"vector of size {v.size}, the index holds {dim}-d vectors"
    if not np.isfinite(v).all():
        return "vector holds NaN or infinite values"
    if float(np.linalg.norm(v)) < _MIN_NORM:
        return "zero vector (all zeros)"
    return None


@dataclass(frozen=True, slots=True)
class ChunkError:
    """One chunk of a batch that got no vector: its position in the batch, its file, the problem."""

    index: int
    source: str
    error: str
    error_type: str = "InvalidInputError"

    def __str__(self) -> str:
        return f"{self.source}: {self.error}"

    def file_error(self) -> FileError:
        return FileError(self.source, self.error, self.error_type)


@dataclass(frozen=True, slots=True)
class Embedded:
    """What :func:`embed_chunks` made of a batch: ``vectors`` has one unit float32 row per chunk, in
    input order (``None`` for a chunk that failed), ``errors`` one :class:`ChunkError` per failure."""

    vectors: list[np.ndarray | None]
    errors: tuple[ChunkError, ...]

    @property
    def failed(self) -> set[int]:
        """Positions of the chunks that got no vector."""
        return {e.index for e in self.errors}


def _describe(image_path: str) -> str:
    from .._images import describe  # here: PIL is imported only once an image is in the batch

    return describe(image_path)


def _name(chunk: Chunk) -> str:
    """The file a chunk's error names: its source, else its image, else its id."""
    if chunk.source:
        return chunk.source
    if isinstance(chunk, ImageChunk) and chunk.image_path:
        return _describe(chunk.image_path)
    return chunk.id


def _image_problem(chunk: ImageChunk, exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, InvalidInputError) else str(exc)
    reason = " ".join(str(reason).split()) or type(exc).__name__  # one line
    if chunk.source and chunk.image_path != chunk.source:  # an image inside a document: name both
        return f"image {_describe(chunk.image_path)}: {reason}"
    return reason


def _image_key(chunk: ImageChunk) -> tuple[str, str] | None:
    """What identifies the pixels an image chunk is embedded from: its stored file and the hash of
    that file's bytes recorded when it was stored (readers record it; else ``None``: not shared)."""
    return (chunk.image_path, chunk.file_hash) if chunk.image_path and chunk.file_hash else None


class ImageVectors(dict[tuple[str, str], np.ndarray]):
    """Unit image vectors by :func:`_image_key`, kept across the batches of one ingest so that an
    image repeated in several documents (a logo; stored once in the blob store) is embedded once.
    Holds the most recent *size* (oldest dropped first)."""

    def __init__(self, size: int = 4096) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: tuple[str, str], value: np.ndarray) -> None:
        super().pop(key, None)
        super().__setitem__(key, value)
        while len(self) > self.size:
            del self[next(iter(self))]


def embed_chunks(embedder: Embedder, chunks: Sequence[Chunk], cache: ImageVectors | None = None) -> Embedded:
    """Embed *chunks* (texts and images mixed) with *embedder*, by the one rule of this module.
    An image repeated in the batch (same stored file and bytes) is embedded once; with *cache*,
    once across the batches that share it."""
    n = len(chunks)
    rows: list[np.ndarray | None] = [None] * n
    problems: dict[int, tuple[str, str]] = {}  # index -> (problem, error type)
    texts = [i for i, c in enumerate(chunks) if not isinstance(c, ImageChunk)]
    images = [i for i, c in enumerate(chunks) if isinstance(c, ImageChunk)]
    if texts:
        vecs = embedder.embed_texts([chunks[i].text for i in texts])
        for i, v in zip(texts, vecs, strict=True):
            rows[i] = v
    # the same stored image (one path, one recorded hash of its bytes) is embedded once
    keys = {i: _image_key(chunks[i]) for i in images}  # type: ignore[arg-type]
    first: dict[tuple[str, str], int] = {}
    todo: list[int] = []
    for i in images:
        key = keys[i]
        if key is not None and cache is not None and key in cache:
            rows[i] = cache[key]
        elif key is None or first.setdefault(key, i) == i:
            todo.append(i)
    if todo:
        result: Any = embedder.embed_images([chunks[i].image_path for i in todo], on_error="collect")  # type: ignore[union-attr]
        for e in result.errors:
            i = todo[e.index]
            problems[i] = (_image_problem(chunks[i], e.error), type(e.error).__name__)
        for j, i in enumerate(todo):
            if i not in problems:
                rows[i] = result.vectors[j]
    for i in images:
        key = keys[i]
        if key is None or rows[i] is not None or i in problems:
            continue
        origin = first[key]  # a repeat within this batch: its first occurrence's row or problem
        if origin in problems:
            problems[i] = problems[origin]
        else:
            rows[i] = rows[origin]
    dim = int(embedder.dim)
    vectors: list[np.ndarray | None] = [None] * n
    for i, row in enumerate(rows):
        if i in problems or row is None:
            continue
        problem = vector_problem(row, dim)
        if problem is not None:
            problems[i] = (problem, "InvalidInputError")
            continue
        v = np.asarray(row, dtype=np.float32).reshape(-1)
        vectors[i] = v = v / np.float32(np.linalg.norm(v))
        key = keys.get(i)
        if cache is not None and key is not None:
            cache[key] = v
    errors = tuple(ChunkError(i, _name(chunks[i]), *problems[i]) for i in sorted(problems))
    return Embedded(vectors, errors)


def embed_chunk_texts(model: Any, chunks: Sequence[Chunk]) -> Embedded:
    """The text-model vectors of *chunks* (a :class:`~mm_rag_plugin.types.TextEmbedder`): a text
    chunk's text, an image chunk's caption, alt and OCR text, in one ``embed_documents`` call; a
    chunk without text gets ``None`` (no error: the vector is absent from its point), a bad row an
    error naming its file, as :func:`embed_chunks` does."""
    from .text_model import unit_rows

    n = len(chunks)
    vectors: list[np.ndarray | None] = [None] * n
    todo = [i for i, c in enumerate(chunks) if c.search_text.strip()]
    problems: dict[int, str] = {}
    if todo:
        rows = unit_rows(model.embed_documents([chunks[i].search_text for i in todo]))
        if len(rows) != len(todo):
            raise InvalidInputError(f"the text model returned {len(rows)} vectors for {len(todo)} texts")
        dim = int(model.dim)
        for i, row in zip(todo, rows, strict=True):
            problem = vector_problem(row, dim)
            if problem is not None:
                problems[i] = f"text model: {problem}"
            else:
                vectors[i] = row
    errors = tuple(ChunkError(i, _name(chunks[i]), problems[i]) for i in sorted(problems))
    return Embedded(vectors, errors)
