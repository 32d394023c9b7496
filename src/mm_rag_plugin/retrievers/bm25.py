"""BM25 as sparse vectors: Snowball-stemmed terms hashed to indices, IDF applied by the store.

A document's value for a term is the BM25 term-frequency part

    tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))

and a query's value is 1 per distinct term. The store multiplies by the inverse document frequency
at query time (Qdrant's sparse ``modifier=IDF``, ``ln(1 + (N - df + 0.5) / (df + 0.5))``; the numpy
engine uses the same formula), so the dot product of the two vectors is the BM25 score and IDF
stays correct as the collection grows. ``avg_len`` is fixed when the index is created (it is stored
with the index) because document values are computed once, at ingest.

Terms are lower-cased ``\\w+`` runs (Unicode aware), minus English stop words, stemmed with the
Snowball stemmer of PyStemmer. Term indices are the first 31 bits of a BLAKE2b hash of the stemmed
term: stable across processes and machines, no vocabulary to persist.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .._optional import require
from ..errors import ConfigurationError

__all__ = ["BM25Encoder", "SparseVector", "term_index"]

_TOKEN = re.compile(r"\w+", re.UNICODE)

#: Common English function words (the usual Lucene/Snowball short list); they carry no topic.
ENGLISH_STOP_WORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves"]
)

#: Longest query (in distinct terms) scored; the rest of a huge query is ignored.
MAX_QUERY_TERMS = 1024


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Sorted unique ``indices`` (uint32) and their float32 ``values``."""

    indices: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


@lru_cache(maxsize=1 << 18)
def term_index(term: str) -> int:
    """The sparse index of a (stemmed) term: 31 bits of its BLAKE2b hash."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little") & 0x7FFFFFFF


class BM25Encoder:
    """Turn texts into BM25 sparse vectors (documents) and term sets (queries).

    ``language`` is any Snowball language PyStemmer knows (``"english"``, ``"german"`` ...) or
    ``None`` for no stemming; stop words are removed for English only.
    """

    def __init__(
        self, *, language: str | None = "english", k1: float = 1.2, b: float = 0.75, avg_len: float = 100.0
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1 or avg_len <= 0:
            raise ConfigurationError(f"BM25 needs k1 >= 0, 0 <= b <= 1, avg_len > 0; got {k1=}, {b=}, {avg_len=}")
        self.language, self.k1, self.b, self.avg_len = language, float(k1), float(b), float(avg_len)
        if language:
            stemmer_mod = require("Stemmer", extra="index", package="PyStemmer")
            try:
                self._stemmer = stemmer_mod.Stemmer(language)
            except KeyError as exc:
                raise ConfigurationError(
                    f"unknown stemmer language {language!r}; known: {sorted(stemmer_mod.algorithms())}"
                ) from exc
        else:
            self._stemmer = None
        self._stop = ENGLISH_STOP_WORDS if language in ("english", "en", "porter") else frozenset()

    def config(self) -> dict[str, object]:
        """The settings that determine document values (stored with the index)."""
        return {"language": self.language, "k1": self.k1, "b": self.b, "avg_len": self.avg_len}

    def tokenize(self, text: str) -> list[str]:
        """Lower-cased, stop-word-free, stemmed terms of *text*, in order."""
        words = [w for w in _TOKEN.findall(text.lower()) if w not in self._stop]
        if self._stemmer is not None:
            words = self._stemmer.stemWords(words)
        return words

    def encode_document(self, text: str) -> SparseVector:
        """BM25 term-frequency weights of *text* (empty vector for text without terms)."""
        terms = self.tokenize(text or "")
        if not terms:
            return _empty()
        counts = Counter(term_index(t) for t in terms)
        idx = np.fromiter(counts.keys(), dtype=np.uint32, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        norm = self.k1 * (1.0 - self.b + self.b * len(terms) / self.avg_len)
        values = tf * (self.k1 + 1.0) / (tf + norm)
        order = np.argsort(idx)
        return SparseVector(idx[order], values[order].astype(np.float32))

    def encode_documents(self, texts: list[str]) -> list[SparseVector]:
        return [self.encode_document(t) for t in texts]

    def encode_query(self, text: str) -> SparseVector:
        """Weight 1 for each distinct query term (the store multiplies in the IDF)."""
        terms = self.tokenize(text or "")
        unique = sorted(list(dict.fromkeys(term_index(t) for t in terms))[:MAX_QUERY_TERMS])
        if not unique:
            return _empty()
        return SparseVector(np.asarray(unique, dtype=np.uint32), np.ones(len(unique), dtype=np.float32))


def _empty() -> SparseVector:
    return SparseVector(np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.float32))


def idf(df: np.ndarray | int, n: int) -> np.ndarray | float:
    """Qdrant's IDF: ``ln(1 + (n - df + 0.5) / (df + 0.5))``."""
    return np.log((n - np.asarray(df, dtype=np.float64) + 0.5) / (np.asarray(df, dtype=np.float64) + 0.5) + 1.0)
