"""Ingest pipeline: chunks -> embeddings (batched) -> upsert (batched), idempotent, crash-safe.

Each batch is embedded and committed before the next is read, so a failure (or a killed process)
loses at most the batch in flight; everything committed before stays searchable. Points already in
the index (same content id) are neither embedded nor written again.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from ..types import Chunk, Embedder, FileError, ImageChunk, ReadResult, TextChunk

if TYPE_CHECKING:
    from ._engine import Point
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


def _accepts_on_error(embedder: Embedder) -> bool:
    try:
        return "on_error" in inspect.signature(embedder.embed_images).parameters
    except (TypeError, ValueError):
        return False


def _embed_images(embedder: Embedder, chunks: Sequence[ImageChunk], collect: bool) -> tuple[np.ndarray, list[str | None]]:
    """Vectors (NaN rows for failures) and one error message (or None) per image."""
    paths = [c.image_path for c in chunks]
    if collect:
        res: Any = embedder.embed_images(paths, on_error="collect")  # type: ignore[call-arg]
        errs: list[str | None] = [None] * len(chunks)
        for e in res.errors:
            errs[e.index] = str(e.error)
        return np.asarray(res.vectors, np.float32), errs
    try:
        return np.asarray(embedder.embed_images(paths), np.float32), [None] * len(chunks)
    except (InvalidInputError, OSError, ValueError):  # find the bad ones, one by one
        rows, errs = [], []
        for p in paths:
            try:
                rows.append(np.asarray(embedder.embed_images([p]), np.float32)[0])
                errs.append(None)
            except (InvalidInputError, OSError, ValueError) as exc:
                rows.append(None)
                errs.append(str(exc))
        dim = next((len(r) for r in rows if r is not None), 1)
        vecs = np.stack([r if r is not None else np.full(dim, np.nan, np.float32) for r in rows])
        return vecs, errs


def ingest(
    index: MultiModalIndex,
    items: ReadResult | Iterable[Chunk],
    embedder: Embedder,
    *,
    replace_sources: bool = True,
    batch_size: int = 64,
    show_progress: bool = True,
) -> IngestReport:
    from tqdm.auto import tqdm

    engine = index.engine_impl
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
    collect = _accepts_on_error(embedder)

    with tqdm(total=total, desc="indexing", unit="chunk", disable=not show_progress) as bar:
        for batch in _batches(chunks, batch_size):
            todo: dict[str, tuple[Chunk, dict]] = {}
            for chunk in batch:
                if isinstance(chunk, TextChunk) and not chunk.text.strip():
                    skipped += 1
                    continue
                try:
                    pid, payload = index.point_id(chunk)
                except InvalidInputError as exc:
                    errors.append(FileError(getattr(chunk, "source", "?"), str(exc), type(exc).__name__))
                    failed_sources.add(getattr(chunk, "source", "?"))
                    continue
                seen.setdefault(chunk.source, set()).add(pid)
                todo.setdefault(pid, (chunk, payload))
            present = engine.existing(list(todo))
            unchanged += len(present)
            fresh = [(pid, c) for pid, (c, _) in todo.items() if pid not in present]
            texts = [(pid, c) for pid, c in fresh if isinstance(c, TextChunk)]
            images = [(pid, c) for pid, c in fresh if isinstance(c, ImageChunk)]
            points: list[Point] = []
            if texts:
                vecs = np.asarray(embedder.embed_texts([c.text for _, c in texts]), np.float32)
                points.extend(index.make_point(c, v) for (_, c), v in zip(texts, vecs, strict=True))
            if images:
                vecs, errs = _embed_images(embedder, [c for _, c in images], collect)
                for (_, c), v, err in zip(images, vecs, errs, strict=True):
                    if err is None and np.isfinite(v).all():
                        points.append(index.make_point(c, v))
                    else:
                        errors.append(FileError(c.source, f"image {c.image_path!r}: {err or 'no embedding'}"))
                        failed_sources.add(c.source)
            if points:
                engine.upsert(points)  # committed: survives a crash of what follows
                added += len(points)
            bar.update(len(batch))

    deleted = 0
    if replace_sources:
        for source, keep in seen.items():
            if source in failed_sources:
                logger.warning("not replacing old points of %s: some of its chunks failed", source)
                continue
            stale = engine.ids_for_source(source) - keep
            if stale:
                engine.delete(sorted(stale))
                deleted += len(stale)
    logger.info("indexed %s new, %s unchanged, %s deleted, %s errors", added, unchanged, deleted, len(errors))
    return IngestReport(added, unchanged, deleted, skipped, tuple(errors))
