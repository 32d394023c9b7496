"""Re-embed an index folder with another model, never mixing the two in one index.

:func:`reindex` streams the points of ``INDEX`` (:meth:`MultiModalIndex.scan`), embeds each text
chunk's text and each image with the new model, and writes them, with their payloads and BM25
vectors unchanged, into a new index in the sibling folder ``INDEX.reindex`` whose manifest names
the new model. Only when every point is there does it swap the folders: ``INDEX`` becomes
``INDEX.before-reindex`` (removed at the end unless ``keep_old``), and ``INDEX.reindex`` becomes
``INDEX``. The index a search opens is therefore always one model's, old or new.

Resumable like :meth:`MultiModalIndex.copy_to`: points already in ``INDEX.reindex`` are not
embedded again, so an interrupted reindex is finished by running it again (with the same model;
another model is refused while ``INDEX.reindex`` holds the first one's). A run interrupted during
the swap is completed by the next run. The old index stays locked while it is read, the images
extracted into it (``blobs/``) are linked (or copied) into the new folder, and a pipeline's file
registry (``sources.json``) is carried over.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..embeddings.batch import embed_chunks
from ..errors import ConfigurationError, IndexNotFoundError, InvalidInputError, StoreError
from ..types import Chunk, Embedder, ImageChunk, TextChunk

logger = logging.getLogger(__name__)

__all__ = ["ReindexReport", "reindex", "reindex_folders"]

#: Files of an index folder that are not the store itself and travel with it.
_CARRIED = ("sources.json",)
#: Unreadable images named in an error before the rest are counted.
_SHOWN = 5
#: The renames of the swap (atomic on one file system).
_rename = os.replace


@dataclass(frozen=True, slots=True)
class ReindexReport:
    """What :func:`reindex` did."""

    index_dir: str
    points: int  # points in the new index
    embedded: int  # points embedded by this run (the rest were there from an interrupted run)
    texts: int
    images: int
    skipped: tuple[str, ...]  # points that could not be embedded (skip_unreadable=True), left out: one line each
    model: str  # the new model, described
    previous_model: str
    kept_old: str | None  # where the old index was kept (keep_old=True)
    seconds: float
    unchanged: bool = False  # the index already used this model: nothing was done


def reindex_folders(index_dir: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """``(index, work folder, old-index folder)`` for an index folder."""
    index = Path(os.path.abspath(Path(index_dir).expanduser()))
    return index, index.with_name(index.name + ".reindex"), index.with_name(index.name + ".before-reindex")


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (else copy) the files of *src* into *dst*; blob files are written once, never
    changed in place, so a link is as good as a copy."""

    def link(a: str, b: str) -> Any:
        try:
            if os.path.exists(b):
                return b
            os.link(a, b)
            return b
        except OSError:
            return shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link, dirs_exist_ok=True)


def reindex(
    index_dir: str | os.PathLike[str],
    embedder: Embedder,
    *,
    batch_size: int = 64,
    keep_old: bool = False,
    skip_unreadable: bool = False,
    show_progress: bool = False,
) -> ReindexReport:
    """Re-embed the index folder *index_dir* with *embedder* (see the module docstring).

    Points that cannot be embedded (an unreadable image; a vector of the new model that is zero or
    not finite: the rule of :func:`~mm_rag_plugin.embeddings.batch.embed_chunks`) stop the reindex
    before the swap (the work done is kept; fix them and run again), unless ``skip_unreadable``:
    then they are left out of the new index and listed in the report."""
    from ..retrievers.index import MultiModalIndex
    from ..retrievers.manifest import describe_model, model_identity, same_model

    if batch_size < 1:
        raise ConfigurationError(f"batch_size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    index, work, old_copy = reindex_folders(index_dir)
    new_identity = model_identity(embedder)
    new_name = describe_model(new_identity)

    if not index.exists() and old_copy.is_dir() and (work / "manifest.json").is_file():
        # interrupted between the two renames of the swap: the work folder was complete
        logger.warning("%s: finishing a reindex interrupted during the swap", index)
        _rename(work, index)
        kept = _drop_old(old_copy, keep_old)
        with MultiModalIndex(index, keyword_only=True, create=False) as ix:
            n = len(ix)
        return ReindexReport(str(index), n, 0, 0, 0, (), new_name, "(finished an earlier reindex)", kept,
                             round(time.perf_counter() - started, 3))
    if index.exists() and old_copy.exists():
        raise StoreError(
            f"{old_copy} exists (the index before an earlier reindex, kept); move or remove it before reindexing again"
        )

    old = MultiModalIndex(index, keyword_only=True, create=False)
    try:
        previous = describe_model(old.model)
        if old.model is not None and same_model(old.model, new_identity):
            if work.exists():
                shutil.rmtree(work)
            return ReindexReport(str(index), len(old), 0, 0, 0, (), new_name, previous, None,
                                 round(time.perf_counter() - started, 3), unchanged=True)
        try:
            new = MultiModalIndex(
                work, embedder=embedder, bm25=old.bm25, quantization=old.quantization,  # type: ignore[arg-type]
                oversampling=old.oversampling if old.quantization else None, show_progress=False,
                blobs=old.blobs,  # the same store: the points name their images there
                text_model=old.text_model,  # the text model's vectors are carried as they are
                clip_windows=old.clip_windows,  # the same windows, embedded again by the new model
            )
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"{work} holds an unfinished reindex with another model ({exc}); finish it with that model, "
                f"or remove {work} to start over"
            ) from exc
        try:
            embedded, texts, images, skipped = _copy_points(old, new, embedder, batch_size, skip_unreadable, show_progress)
            expected = len(old) - len(skipped)
            if len(new) != expected:
                raise StoreError(f"reindex into {work} ended with {len(new)} of {expected} points; run it again")
            if old.blob_dir is not None and old.blob_dir.is_dir() and new.blob_dir is not None:
                _link_tree(old.blob_dir, new.blob_dir)
            for name in _CARRIED:
                if (index / name).is_file():
                    shutil.copy2(index / name, work / name)
            new.optimize()
            points = len(new)
        finally:
            new.close()
    finally:
        old.close()

    # the swap: after the first rename a rerun finishes it (see above)
    _rename(index, old_copy)
    _rename(work, index)
    kept = _drop_old(old_copy, keep_old)
    return ReindexReport(
        str(index), points, embedded, texts, images, tuple(skipped), new_name, previous, kept,
        round(time.perf_counter() - started, 3),
    )


def _drop_old(old_copy: Path, keep: bool) -> str | None:
    if keep:
        return str(old_copy)
    shutil.rmtree(old_copy, ignore_errors=True)
    return None


def _copy_points(
    old: Any, new: Any, embedder: Embedder, batch_size: int, skip_unreadable: bool, show_progress: bool
) -> tuple[int, int, int, list[str]]:
    """Stream *old*'s points into *new* with new vectors; returns (embedded, texts, images, skipped)."""
    from .._progress import progress_bar as tqdm
    from ..retrievers.engine import Point

    embedded = texts = images = 0
    skipped: list[str] = []
    bad: list[str] = []
    with tqdm(total=len(old), unit="point", desc="reindexing", disable=not show_progress) as bar:
        for batch in old.scan(batch_size):
            present = new.existing([p.id for p in batch])
            if present:
                _refresh_payloads(new, [p for p in batch if p.id in present])
            todo = [p for p in batch if p.id not in present]
            points = []
            if todo:
                chunks, refused = _as_chunks(old, todo)
                for p in refused:  # an image file the old index refuses to read (its warning says why)
                    line = f"{p.payload.get('source') or p.id}: image not read: the index refuses its file"
                    (skipped if skip_unreadable else bad).append(line)
                gone = {p.id for p in refused}
                todo = [p for p in todo if p.id not in gone]
                done = embed_chunks(embedder, chunks)  # the one loop, the one error rule
                for e in done.errors:
                    (skipped if skip_unreadable else bad).append(str(e))
                windowed = new.window_vectors(chunks, done.vectors)
                wins = [None] * len(todo) if windowed is None else windowed.vectors
                if windowed is not None:
                    for e in windowed.errors:
                        (skipped if skip_unreadable else bad).append(str(e))
                points = [
                    Point(p.id, vec, p.sparse, p.payload, p.text, wv)
                    for p, vec, wv in zip(todo, done.vectors, wins, strict=True)
                    if vec is not None and (windowed is None or p.id not in {todo[e.index].id for e in windowed.errors})
                ]
            new.write_points(points)  # committed: a rerun skips these
            embedded += len(points)
            texts += sum(1 for p in points if p.payload.get("kind") != "image")
            images += sum(1 for p in points if p.payload.get("kind") == "image")
            bar.update(len(batch))
    if bad:
        more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
        raise InvalidInputError(
            f"{len(bad)} point{'s' if len(bad) != 1 else ''} cannot be embedded: {'; '.join(bad[:_SHOWN])}{more}. The points done so far are kept "
            f"in {new.where}: restore the images and run reindex again, or leave them out (--skip-unreadable)"
        )
    if len(new) > len(old) - len(skipped):
        _drop_extra(old, new)
    return embedded, texts, images, skipped


def _as_chunks(old: Any, points: Sequence[Any]) -> tuple[list[Chunk], list[Any]]:
    """What each stored point embeds: a text chunk's text, an image chunk's image (its path
    resolved against the old folder); and the image points whose file the old index refuses."""
    paths = old.payloads([p.id for p in points if p.payload.get("kind") == "image"])
    out: list[Chunk] = []
    refused: list[Any] = []
    for p in points:
        source = str(p.payload.get("source") or "")
        if p.payload.get("kind") != "image":
            out.append(TextChunk(id=p.id, text=str(p.payload.get("text") or ""), source=source))
        elif p.id in paths:
            out.append(ImageChunk(id=p.id, source=source, image_path=str(paths[p.id].get("image_path") or ""), content_hash=""))
        else:
            refused.append(p)
    return out, refused


def _refresh_payloads(new: Any, points: Sequence[Any]) -> None:
    """Points already in *new* (an interrupted run) take the old index's current payload (their
    sources may have changed since)."""
    from ..retrievers.engine import Point

    stored = new.fetch([p.id for p in points])
    stale = [p for p in points if p.id in stored and stored[p.id].payload != p.payload]
    if stale:
        vectors = new.vectors([p.id for p in stale])
        stale = [p for p in stale if p.id in vectors]
        wins: list[Any] = [None] * len(stale)
        if new.has_windows:  # the text chunks' windows, embedded again (the store gives back CLIP's vector only)
            texts = [i for i, p in enumerate(stale) if p.payload.get("kind") != "image"]
            chunks = [TextChunk(id=stale[i].id, text=str(stale[i].payload.get("text") or ""), source="") for i in texts]
            windowed = new.window_vectors(chunks, [vectors[stale[i].id] for i in texts])
            for i, w in zip(texts, windowed.vectors, strict=True):
                wins[i] = w
        new.write_points([Point(p.id, vectors[p.id], p.sparse, p.payload, p.text, w) for p, w in zip(stale, wins, strict=True)])


def _drop_extra(old: Any, new: Any) -> None:
    """Delete points of *new* the old index no longer holds (deleted after an interrupted run)."""
    extra: list[str] = []
    for batch in new.scan(512):
        have = old.existing([p.id for p in batch])
        extra += [p.id for p in batch if p.id not in have]
    new.delete(extra)  # committed: the manifest's point count


def check_reindex_target(index_dir: str | os.PathLike[str]) -> None:
    """Raise :class:`IndexNotFoundError` when *index_dir* is not an index folder (and no
    interrupted swap can be finished there)."""
    index, work, old_copy = reindex_folders(index_dir)
    if (index / "manifest.json").is_file():
        return
    if not index.exists() and old_copy.is_dir() and (work / "manifest.json").is_file():
        return
    raise IndexNotFoundError(f"{index}: no index here; run `mm-rag ingest` first")
