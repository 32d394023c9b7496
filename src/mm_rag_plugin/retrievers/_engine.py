"""What the index needs from a storage engine (Qdrant, or the in-process numpy engine)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigurationError
from ._filters import Condition
from .bm25 import SparseVector

__all__ = ["DENSE", "QUANTIZATIONS", "SPARSE", "Engine", "ListQuery", "Point", "check_quantization"]

#: Vector names in the store: one shared CLIP space, and BM25.
DENSE = "clip"
SPARSE = "bm25"

#: Accepted ``quantization`` values, and the default oversampling of each (both engines).
QUANTIZATIONS = (None, "int8", "binary")
DEFAULT_OVERSAMPLING = {"int8": 3.0, "binary": 10.0}


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
    def memory_bytes(self) -> dict[str, int]: ...
    def close(self) -> None: ...


def check_quantization(quantization: str | None, oversampling: float | None) -> tuple[str | None, float]:
    """Validate ``quantization`` / ``oversampling``; returns them with the default oversampling filled in."""
    if quantization not in QUANTIZATIONS:
        raise ConfigurationError(f"quantization must be None, 'int8' or 'binary', got {quantization!r}")
    if oversampling is None:
        return quantization, DEFAULT_OVERSAMPLING.get(quantization or "", 1.0)
    if quantization is None:
        raise ConfigurationError("oversampling applies to a quantized index: pass quantization='int8' or 'binary'")
    if isinstance(oversampling, bool) or not isinstance(oversampling, numbers.Real) or not 1 <= oversampling < math.inf:
        raise ConfigurationError(f"oversampling must be a number >= 1, got {oversampling!r}")
    return quantization, float(oversampling)
