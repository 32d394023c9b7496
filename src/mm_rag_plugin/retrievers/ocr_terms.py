"""OCR-tolerant keyword terms: character n-grams of confusion-normalised words.

OCR misreads characters (``SDN BHD`` read ``SDN BND``, ``0`` for ``O``, ``1`` for ``l``), and
splits or joins words (``RM 12.50`` for ``RM12.50``, ``JALANSINAR`` for ``JALAN SINAR``); a word
term of BM25 then never matches. The terms here survive that: each word of OCR'd text is
lower-cased, put in a normal form where the characters OCR confuses are one (``0``/``o``,
``1``/``l``/``i``/``|``/``!``, ``5``/``s``, ``8``/``b``, ``6``/``g``, ``rn``/``m``, every
``.,-:/`` inside a word is ``.``), and cut into character n-grams with word-boundary markers
(``#sdn#`` gives ``#sd``, ``sdn``, ``dn#``). A misread or joined word still shares most of its
n-grams with the word as typed.

The n-grams live in the same sparse vector as the BM25 word terms, hashed in their own namespace
(:func:`gram_index`), so an index needs no other vector and its BM25 terms and scores are unchanged:
a document's n-gram values are BM25 term-frequency weights (the word terms' saturation and length),
where each occurrence counts 1 (or, with ``confidence``, the OCR confidence of its word, 0..1), and a query's
n-grams weigh ``weight / (n-grams of the word)`` each, so a query word found whole adds at most
about ``weight`` times its n-grams' IDF. Only OCR'd text gets n-grams (image chunks' OCR text, and
text chunks read by OCR from scanned pages): text from a text layer holds the characters typed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import ConfigurationError, echo

__all__ = ["OCR_TERMS_VERSION", "OcrTerms", "gram_index", "normal_form", "ocr_words"]

#: Version of the n-gram analysis (normal form, markers, weights); stored with an index.
OCR_TERMS_VERSION = 1

#: Characters OCR confuses, each mapped to one representative (after lower-casing).
_CONFUSE = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "!": "l", "5": "s", "8": "b", "6": "g",
                          ",": ".", "-": ".", ":": ".", "/": ".", "’": "'"})
#: A word: a run of anything but white space.
_WORD = re.compile(r"\S+")
#: What a word must not start or end with.
_EDGE = re.compile(r"^[\W_]+|[\W_]+$")
#: Lowest weight a word's confidence gives it (a word read at confidence 0 is still a reading).
MIN_CONFIDENCE_WEIGHT = 0.1

_KEYS = frozenset({"version", "n", "confusion", "confidence"})


@lru_cache(maxsize=1 << 16)
def normal_form(word: str, confusion: bool = True) -> str:
    """*word* lower-cased, its edges' punctuation cut and, with *confusion*, in the normal form
    of the characters OCR confuses (``"SDN-BHD"`` -> ``"sdn.bhd"``, ``"0R1000"`` -> ``"orlooo"``)."""
    w = _EDGE.sub("", word.lower())
    if confusion:
        w = w.replace("rn", "m").translate(_CONFUSE)
    return w


@lru_cache(maxsize=1 << 16)
def _grams(word: str, n: int) -> tuple[str, ...]:
    marked = f"#{word}#"
    if n == 0 or len(marked) <= n:
        return (marked,)
    return tuple(marked[i : i + n] for i in range(len(marked) - n + 1))


@lru_cache(maxsize=1 << 18)
def gram_index(gram: str) -> int:
    """The sparse index of an n-gram: a BM25 term index of its own namespace (no word term is
    ``"\\x1f"`` followed by characters)."""
    from .bm25 import term_index

    return term_index("\x1f" + gram)


def ocr_words(chunk: Any) -> list[tuple[str, float]] | None:
    """The OCR'd words of *chunk* with the weight of each (its OCR confidence, 0..1; 1 where it is
    not known), or ``None`` when the chunk holds no OCR'd text. An image chunk's words come from
    its ``ocr_words`` metadata (word, confidence, box) when they are there, else from ``ocr_text``;
    a text chunk counts as OCR'd when its metadata says ``ocr: true`` (a scanned page)."""
    if getattr(chunk, "kind", None) == "image":
        text = getattr(chunk, "ocr_text", "") or ""
        if not text.strip():
            return None
        boxes = (getattr(chunk, "metadata", None) or {}).get("ocr_words")
        if isinstance(boxes, list) and boxes:
            out = []
            for w in boxes:
                if isinstance(w, list | tuple) and len(w) >= 2 and isinstance(w[0], str) and _number(w[1]):
                    out.append((w[0], min(1.0, max(MIN_CONFIDENCE_WEIGHT, float(w[1]) / 100.0))))
            if out:
                return out
        return [(w, 1.0) for w in _WORD.findall(text)]
    metadata = getattr(chunk, "metadata", None) or {}
    if metadata.get("ocr") is True:
        return [(w, 1.0) for w in _WORD.findall(getattr(chunk, "text", "") or "")]
    return None


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class OcrTerms:
    """Settings of the OCR n-gram terms: ``n`` characters per gram (0: the whole word, one term in
    its normal form), ``confusion`` (the normal form of confused characters), ``confidence`` (an
    occurrence counts its word's OCR confidence)."""

    n: int = 3
    confusion: bool = True
    #: Off by default: on bench_ocr_quality's corpus weighting by confidence lowered recall@1 (all
    #: 0.90 -> 0.88; ``benchmarks/bench_ocr_variants.py``): a misread word's low confidence also
    #: lowers the n-grams it still reads right, the ones that find it.
    confidence: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or not (self.n == 0 or 2 <= self.n <= 5):
            raise ConfigurationError(f"OCR n-grams need n from 2 to 5 (or 0: whole words), got {echo(self.n)}")
        if not isinstance(self.confusion, bool) or not isinstance(self.confidence, bool):
            raise ConfigurationError("OCR n-gram settings confusion and confidence must be true or false")

    def config(self) -> dict[str, object]:
        return {"version": OCR_TERMS_VERSION, "n": self.n, "confusion": self.confusion, "confidence": self.confidence}

    @classmethod
    def from_config(cls, config: Any) -> OcrTerms | None:
        """The settings stored with an index (``None``: an index without OCR n-grams)."""
        problem = settings_problem(config)
        if problem:
            raise ConfigurationError(f"damaged index: bm25.ocr {problem}")
        if config is None:
            return None
        return cls(n=config["n"], confusion=config["confusion"], confidence=config["confidence"])

    def document_counts(self, words: Iterable[tuple[str, float]]) -> dict[int, float]:
        """Per n-gram index, its count in *words* (each occurrence counts its word's weight, or 1
        without ``confidence``)."""
        counts: dict[int, float] = {}
        for word, weight in words:
            w = normal_form(word, self.confusion)
            if len(w) < 2:
                continue
            count = weight if self.confidence else 1.0
            for g in _grams(w, self.n):
                i = gram_index(g)
                counts[i] = counts.get(i, 0.0) + count
        return counts

    def query_weights(self, text: str, weight: float) -> dict[int, float]:
        """Per n-gram index of the query *text*: ``weight`` shared by the n-grams of each word
        (a gram of several words weighs the most any gives it)."""
        out: dict[int, float] = {}
        for word in _WORD.findall(text or ""):
            w = normal_form(word, self.confusion)
            if len(w) < 2:
                continue
            grams = _grams(w, self.n)
            share = weight / len(grams)
            for g in grams:
                i = gram_index(g)
                if share > out.get(i, 0.0):
                    out[i] = share
        return out


def settings_problem(config: Any) -> str | None:
    """What is wrong with stored OCR n-gram settings (``None``, or an object of :meth:`OcrTerms.config`)."""
    if config is None:
        return None
    if not isinstance(config, Mapping):
        return f"must be an object or null, got {echo(config)}"
    unknown = sorted(set(config) - _KEYS)
    if unknown or set(config) != _KEYS:
        return f"must hold {sorted(_KEYS)}, got {echo(sorted(config))}"
    if config["version"] != OCR_TERMS_VERSION or config["version"].__class__ is not int:
        return f"version {echo(config['version'])} is not this version's ({OCR_TERMS_VERSION}); re-ingest into a new index"
    n = config["n"]
    if n.__class__ is not int or not (n == 0 or 2 <= n <= 5):
        return f"n must be 0 or a whole number from 2 to 5, got {echo(n)}"
    if config["confusion"].__class__ is not bool or config["confidence"].__class__ is not bool:
        return "confusion and confidence must be true or false"
    return None
