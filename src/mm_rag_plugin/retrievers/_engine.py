"""What the index needs from a storage engine (Qdrant, or the in-process numpy engine)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ._filters import Condition
from .bm25 import SparseVector

__all__ = ["DENSE", "SPARSE", "Engine", "ListQuery", "Point"]

#: Vector names in the store: one shared CLIP space, and BM25.
DENSE = "clip"
SPARSE = "bm25"


@dataclass(frozen=True, slots=True)
class Point:
    id: str  # UUID, derived from the payload
    kind: str  # "text" | "image"
    source: str
    dense: np.ndarray  # unit float32
    sparse: SparseVector  # may be empty
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One ranked list: a dense search restricted to a kind, or a BM25 search."""

    name: str
    limit: int
    dense: np.ndarray | None = None
    sparse: SparseVector | None = None
    kind: str | None = None
    min_score: float | None = None


class Engine(Protocol):
    name: str
    supports_server_fusion: bool

    def stored_config(self) -> dict[str, Any] | None: ...
    def create(self, config: dict[str, Any]) -> None: ...
    def existing(self, ids: Sequence[str]) -> set[str]: ...
    def upsert(self, points: Sequence[Point]) -> None: ...
    def delete(self, ids: Sequence[str]) -> None: ...
    def ids_for_source(self, source: str) -> set[str]: ...
    def count(self, kind: str | None = None) -> int: ...
    def search(self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...]) -> list[list[tuple[str, float]]]: ...
    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...
    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...
    def close(self) -> None: ...
