"""Ingest pipeline: chunks -> embeddings (batched) -> upsert (batched), idempotent, crash-safe.

Chunks are consumed from an iterable batch by batch, so memory does not grow with the corpus. Each
batch is embedded and committed before the next is read, so a failure (or a killed process) loses
at most the batch in flight; everything committed before stays searchable. Points already in the
index (same content id) are neither embedded nor written again; when found at a new path, that
path is added to their ``sources``. A vector that is not finite or is all zeros is refused and
reported as an error of its file, never stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from .._items import as_chunk
from ..errors import InvalidInputError
from ..types import Chunk, Embedder, FileError, ImageChunk, ReadResult, TextChunk

if TYPE_CHECKING:
    from .engine import Point
    from .index import MultiModalIndex

logger = logging.getLogger(__name__)

__all__ = ["IngestReport", "ingest"]


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What :meth:`MultiModalIndex.add` did."""

    added: int = 0  # new points written
    unchanged: int = 0  # already in the index with the same content
    deleted: int = 0  # stale points of replaced sources
    skipped_empty: int = 0  # text chunks without any text
    errors: tuple[FileError, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.errors


def _batches(items: Iterable[Chunk], size: int) -> Iterator[list[Chunk]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def _embed_images(embedder: Embedder, chunks: Sequence[ImageChunk]) -> tuple[np.ndarray, list[str | None]]:
    """Vectors (NaN rows for failures) and one error message (or None) per image."""
    res: Any = embedder.embed_images([c.image_path for c in chunks], on_error="collect")
    errs: list[str | None] = [None] * len(chunks)
    for e in res.errors:
        errs[e.index] = str(e.error)
    return np.asarray(res.vectors, np.float32), errs


def ingest(
    index: MultiModalIndex,
    items: ReadResult | Iterable[Any],
    embedder: Embedder | None,
    *,
    replace_sources: bool = True,
    batch_size: int = 64,
    show_progress: bool = False,
) -> IngestReport:
    """Stream *items* into *index* batch by batch (see the module docstring). *embedder* is None
    only for a keyword-only index."""
    from .._progress import progress_bar as tqdm

    errors: list[FileError] = []
    total: int | None = None
    if isinstance(items, ReadResult):
        errors.extend(items.errors)
        chunks: Iterable[Chunk] = items.chunks
        total = len(items.chunks)
    else:
        chunks = items
        total = len(items) if isinstance(items, Sequence) else None
    seen: dict[str, set[str]] = {}
    failed_sources = {e.source for e in errors}
    added = unchanged = skipped = 0

    with tqdm(total=total, desc="indexing", unit="chunk", disable=not show_progress) as bar:
        for batch in _batches(chunks, batch_size):
            todo: dict[str, Chunk] = {}
            sources: dict[str, list[str]] = {}
            for item in batch:
                try:
                    chunk = as_chunk(item)
                except InvalidInputError as exc:
                    errors.append(FileError(exc.source or "?", exc.reason, type(exc).__name__))
                    continue
                if isinstance(chunk, TextChunk) and not chunk.text.strip():
                    skipped += 1
                    continue
                try:
                    pid, _ = index.point_id(chunk)
                except InvalidInputError as exc:
                    errors.append(FileError(getattr(chunk, "source", "?"), str(exc), type(exc).__name__))
                    failed_sources.add(getattr(chunk, "source", "?"))
                    continue
                seen.setdefault(chunk.source, set()).add(pid)
                todo.setdefault(pid, chunk)
                srcs = sources.setdefault(pid, [])
                if chunk.source not in srcs:
                    srcs.append(chunk.source)
            present = index.merge_sources({pid: sources[pid] for pid in todo})
            unchanged += len(present)
            fresh = [(pid, c) for pid, c in todo.items() if pid not in present]
            points: list[Point] = []
            for chunk, vec, err in _vectors(index, embedder, [c for _, c in fresh]):
                if err is not None:
                    errors.append(FileError(chunk.source, err))
                    failed_sources.add(chunk.source)
                    continue
                try:
                    point = index.make_point(chunk, vec)
                except InvalidInputError as exc:
                    errors.append(FileError(chunk.source, str(exc), type(exc).__name__))
                    failed_sources.add(chunk.source)
                    continue
                point.payload["sources"] = sources[point.id]
                points.append(point)
            index.write_points(points)  # committed: survives a crash of what follows
            added += len(points)
            bar.update(len(batch))

    deleted = 0
    if replace_sources:
        for source, keep in seen.items():
            if not source:  # items without a source (framework documents) are never replaced
                continue
            if source in failed_sources:
                logger.warning("not replacing old points of %s: some of its chunks failed", source)
                continue
            deleted += index.forget(source, keep)
    logger.info("indexed %s new, %s unchanged, %s deleted, %s errors", added, unchanged, deleted, len(errors))
    return IngestReport(added, unchanged, deleted, skipped, tuple(errors))


def _vectors(
    index: MultiModalIndex, embedder: Embedder | None, chunks: Sequence[Chunk]
) -> Iterator[tuple[Chunk, np.ndarray | None, str | None]]:
    """``(chunk, vector, error)`` for each chunk: texts and images each embedded in one batch."""
    if index.keyword_only or embedder is None:
        for c in chunks:
            yield c, None, None
        return
    texts = [c for c in chunks if isinstance(c, TextChunk)]
    images = [c for c in chunks if isinstance(c, ImageChunk)]
    if texts:
        vecs = np.asarray(embedder.embed_texts([c.text for c in texts]), np.float32)
        for c, v in zip(texts, vecs, strict=True):
            yield c, v, None
    if images:
        vecs, errs = _embed_images(embedder, images)
        for c, v, err in zip(images, vecs, errs, strict=True):
            yield c, v, (None if err is None else f"image {c.image_path!r}: {err}")
