"""Items addressed by the caller's ids: the core of the LangChain and LlamaIndex vector stores.

The index proper addresses points by content (re-reading a file adds nothing). Framework vector
stores address them by the ids their users pass: ``add(..., ids=["1"])`` twice replaces item
``"1"``, ``delete(["1"])`` removes it, ``get(["1"])`` reads it back. :class:`KeyedStore` gives those
semantics over a :class:`~.index.MultiModalIndex` (Qdrant Edge or a Qdrant server), with the same
manifest checks, vector checks and BM25 vectors as every other write, so the framework stores can
be searched densely, by keywords, fused (RRF), or with maximal marginal relevance.

An item added through a framework keeps that framework's metadata verbatim (``framework`` in its
payload says which); items ingested from files answer with the library's flat chunk metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._payload import chunk_to_payload, payload_to_chunk
from ..errors import ConfigurationError, InvalidInputError
from ..types import Chunk
from ._filters import Condition
from .engine import Point
from .index import MultiModalIndex, key_point_id
from .search import SearchOptions, search

__all__ = ["KeyedStore", "Stored"]


@dataclass(frozen=True, slots=True)
class Stored:
    """One stored item: the caller's id, the chunk, its raw payload, and a search score."""

    key: str
    chunk: Chunk
    payload: Mapping[str, Any]
    score: float | None = None
    pid: str = ""  # the point id in the store

    @property
    def framework(self) -> str | None:
        """The framework that added the item (``"langchain"``, ``"llama_index"``), or None."""
        return self.payload.get("framework")

    @property
    def user_metadata(self) -> dict[str, Any]:
        """The metadata to show a framework user: verbatim for items a framework added, the flat
        chunk metadata for items ingested from files."""
        if self.framework:
            return dict(self.payload.get("metadata") or {})
        return chunk_to_payload(self.chunk)


class KeyedStore:
    """Id-addressed writes and reads, and searches, over *index*.

    ``kind="text"`` or ``"image"`` restricts every read to that kind, and gives the store ids of
    its own (LlamaIndex keeps text and images in two stores of one multimodal index)."""

    def __init__(self, index: MultiModalIndex, *, kind: Literal["text", "image"] | None = None) -> None:
        if kind not in (None, "text", "image"):
            raise ConfigurationError(f"kind must be None, 'text' or 'image', got {kind!r}")
        self.index = index
        self.kind = kind

    def point_id(self, key: str) -> str:
        """Where the item *key* lives: a store of one kind keeps its own ids (LlamaIndex stores an
        image node's text in the text store and its image in the image store, under one node id)."""
        return key_point_id(key if self.kind is None else f"{self.kind}\x1f{key}")

    # ------------------------------------------------------------------ writes
    def put(
        self,
        items: Sequence[tuple[str, Chunk, np.ndarray | None]],
        *,
        framework: str,
        extra: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[str]:
        """Store ``(id, chunk, vector)`` items, replacing items with the same id (the last of
        repeated ids wins). *extra*: payload fields per item (``ref_doc_id``). Returns the ids.
        The whole call is checked before anything is written."""
        points: dict[str, Point] = {}
        texted = self.index.text_vectors([chunk for _, chunk, _ in items])  # the index's text model, if any
        if texted is not None and texted.errors:
            raise InvalidInputError(str(texted.errors[0]), source=texted.errors[0].source)
        windowed = self.index.window_vectors([chunk for _, chunk, _ in items], [vector for _, _, vector in items])
        if windowed is not None and windowed.errors:
            raise InvalidInputError(str(windowed.errors[0]), source=windowed.errors[0].source)
        for n, (key, chunk, vector) in enumerate(items):
            if not isinstance(key, str) or not key:
                raise InvalidInputError(f"ids must be non-empty strings, got {key!r}", source=f"ids[{n}]")
            tv = None if texted is None else texted.vectors[n]
            wv = None if windowed is None else windowed.vectors[n]
            point = self.index.make_point(chunk, vector, key=key, point_id=self.point_id(key), text=tv, windows=wv)
            point.payload["framework"] = framework
            if extra is not None:
                point.payload.update(extra[n])
            points[point.id] = point
        self.index.write_points(list(points.values()))
        return [key for key, _, _ in items]

    def delete(self, keys: Sequence[str]) -> int:
        """Remove the items with these ids (ids not stored are ignored); returns how many were."""
        return self.index.delete([self.point_id(k) for k in keys])

    def delete_where(self, conditions: tuple[Condition, ...]) -> int:
        """Remove every item matching *conditions* (at least one condition is required)."""
        if not conditions:
            raise InvalidInputError("delete_where needs a filter (refusing to delete everything)", source="filters")
        return self.index.delete_where(self._conditions(conditions))

    def clear(self) -> int:
        """Remove every item (of this store's kind)."""
        return self.index.delete_where(self._conditions(()))

    # ------------------------------------------------------------------ reads
    def get(self, keys: Sequence[str]) -> list[Stored]:
        """The stored items with these ids, in the order asked (ids not stored are left out)."""
        pids = [self.point_id(k) for k in keys]
        payloads = self.index.payloads(pids)
        out = []
        for pid in pids:
            p = payloads.get(pid)
            if p is not None and (self.kind is None or p.get("kind") == self.kind):
                out.append(self._stored(pid, p))
        return out

    def get_where(self, conditions: tuple[Condition, ...]) -> list[Stored]:
        """Every stored item matching *conditions* (of this store's kind)."""
        pids = self.index.ids_where(self._conditions(conditions))
        payloads = self.index.payloads(pids)
        return [self._stored(pid, payloads[pid]) for pid in pids if pid in payloads]

    def _stored(self, pid: str, payload: dict[str, Any], score: float | None = None) -> Stored:
        return Stored(str(payload.get("key") or pid), payload_to_chunk(payload), payload, score, pid)

    def _conditions(self, conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
        if self.kind is None:
            return conditions
        return (*conditions, Condition("kind", "eq", self.kind))

    def search(
        self,
        options: SearchOptions,
        *,
        vector: np.ndarray | None = None,
        text: str | None = None,
        conditions: tuple[Condition, ...] = (),
    ) -> list[Stored]:
        """The best ``options.k`` items (of this store's kind), best first, by the searcher every
        entry point shares (:mod:`.search`): ``dense`` (score: cosine), ``keyword`` (BM25),
        ``hybrid`` (fused RRF score) or ``mmr`` (cosine), with the options' post-processing."""
        matches = search(self.index, options, text=text, vector=vector, conditions=self._conditions(conditions))
        return [self._stored(m.id, dict(m.payload), m.score) for m in matches]
