"""Ingest pipeline: chunks -> embeddings (batched) -> upsert (batched), idempotent, crash-safe.

Chunks are consumed from an iterable batch by batch, so memory does not grow with the corpus. Each
batch is embedded and committed before the next is read, so a failure (or a killed process) loses
at most the batch in flight; everything committed before stays searchable. Points already in the
index (same content id) are neither embedded nor written again; when found at a new path, that
path is added to their ``sources``. Chunks are embedded by
:func:`~mm_rag_plugin.embeddings.batch.embed_chunks`: an unreadable image, or a vector that is not
finite or is all zeros, is reported as an error of its file and never stored; the rest are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from .._items import as_chunk
from ..embeddings.batch import ImageVectors, embed_chunks
from ..embeddings.windows import context_length, token_counter
from ..errors import InvalidInputError
from ..types import Chunk, Embedder, FileError, ReadResult, TextChunk

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
    embedded_texts: int = 0  # text chunks embedded by the CLIP model (new points)
    truncated_texts: int = 0  # of those, longer than the model's context: its vector sees their start only
    context_length: int | None = None  # the model's text context in tokens (None: keyword-only, or not counted)

    @property
    def ok(self) -> bool:
        return not self.errors


def _batches(items: Iterable[Chunk], size: int) -> Iterator[list[Chunk]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


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
    embedded_texts = truncated = 0
    count = token_counter(embedder) if embedder is not None and not index.keyword_only else None
    context = None if count is None else context_length(embedder)
    images_seen = ImageVectors()  # an image repeated across documents is embedded once

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
            fresh_chunks = [c for _, c in fresh]
            vectors: list[np.ndarray | None] = [None] * len(fresh_chunks)  # keyword-only: no vectors
            if fresh_chunks and embedder is not None and not index.keyword_only:
                embedded = embed_chunks(embedder, fresh_chunks, images_seen)  # the one loop, the one error rule
                fresh_chunks, (vectors,) = _drop_failed(embedded, fresh_chunks, [embedded.vectors], errors, failed_sources)
            if count is not None and context is not None:  # what the model's context cut (reported, not changed)
                lengths = [count(c.text) for c in fresh_chunks if isinstance(c, TextChunk)]
                embedded_texts += len(lengths)
                truncated += sum(n > context for n in lengths)
            texts: list[np.ndarray | None] = [None] * len(fresh_chunks)
            texted = index.text_vectors(fresh_chunks) if fresh_chunks else None
            if texted is not None:  # the index's text model beside CLIP: same error rule
                fresh_chunks, (vectors, texts) = _drop_failed(texted, fresh_chunks, [vectors, texted.vectors], errors, failed_sources)
            wins: list[np.ndarray | None] = [None] * len(fresh_chunks)
            windowed = index.window_vectors(fresh_chunks, vectors) if fresh_chunks and index.has_windows else None
            if windowed is not None:  # CLIP windows over whole text chunks: same error rule
                fresh_chunks, (vectors, texts, wins) = _drop_failed(
                    windowed, fresh_chunks, [vectors, texts, windowed.vectors], errors, failed_sources
                )
            for chunk, vec, tv, wv in zip(fresh_chunks, vectors, texts, wins, strict=True):
                try:
                    point = index.make_point(chunk, vec, text=tv, windows=wv)
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
    return IngestReport(
        added, unchanged, deleted, skipped, tuple(errors), embedded_texts=embedded_texts, truncated_texts=truncated,
        context_length=context,
    )


def _drop_failed(
    result: Any, chunks: list[Any], columns: list[list[Any]], errors: list[FileError], failed_sources: set[str]
) -> tuple[list[Any], list[list[Any]]]:
    """Record *result*'s failed items (one error line per file, their files kept from being
    replaced) and return *chunks* and each of *columns* without the failed rows."""
    for e in result.errors:
        errors.append(e.file_error())
        failed_sources.add(chunks[e.index].source)
    failed = result.failed
    return [c for n, c in enumerate(chunks) if n not in failed], [[v for n, v in enumerate(col) if n not in failed] for col in columns]
