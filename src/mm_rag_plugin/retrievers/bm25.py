"""BM25 as sparse vectors: analysed terms hashed to indices, IDF applied by the store.

A document's value for a term is the BM25 term-frequency part

    tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))

and a query's value is 1 per distinct term. The store multiplies by the inverse document frequency
at query time (Qdrant's sparse ``modifier=IDF``, ``ln(1 + (N - df + 0.5) / (df + 0.5))``; the numpy
engine uses the same formula), so the dot product of the two vectors is the BM25 score and IDF
stays correct as the collection grows. ``avg_len`` is fixed when the index is created (it is stored
with the index) because document values are computed once, at ingest.

Analysis (tokenizer version 2, :data:`TOKENIZER_VERSION`; documents and queries alike)
-------------------------------------------------------------------------------------
The text is lower-cased and cut into tokens: ``\\w+`` runs (Unicode letters, digits and ``_``),
where one of ``- / . , : @ & ' ’`` or ``://`` between two runs joins them into one token
(``25/12/2018``, ``rm12.50``, ``inv-00421``, ``john.doe@example.com``, a URL up to its query
string). Then:

* A plain word is dropped when it is an English stop word (English only) or a single letter (a
  single CJK character is a word and stays); the rest are stemmed with the Snowball stemmer of
  PyStemmer. A plain number stays, whatever its length. Pure punctuation is never a term.
* ``'s`` and the other English clitics (``'t``, ``'re``, ``'ve``, ``'ll``, ``'d``, ``'m``) are cut:
  ``John's`` is ``john``, ``don't`` is ``do`` (a stop word). The single-letter token ``s`` of
  ``\\w+`` tokenizers (which matched any noisy OCR text with a possessive) no longer exists.
* An amount is one term and has no parts: ``12.50``; thousands separators go (``1,234.50`` and
  ``1.234,50`` are ``1234.50``), a decimal comma before two decimals becomes a point (``12,50`` is
  ``12.50``). Its digit groups are not terms, so the query ``12.50`` never matches a stray ``12``
  and a total of ``2018.00`` never matches the year 2018.
* A date of three numbers with the same ``/``, ``-`` or ``.`` between them is written with ``/``,
  without leading zeros, day first when the year comes first (``25.12.2018``, ``25-12-2018``,
  ``25/12/2018`` and ``2018-12-25`` are all ``25/12/2018``; ``05/01/2019`` is ``5/1/2019``); its
  numbers are its parts. Day and month are never swapped otherwise: ``12/25/2018`` stays as written.
* Any other joined token (a code, identifier, e-mail address, URL, hyphenated word, a run mixing
  letters and digits) is one term, unstemmed (``e-217``, ``inv-00421``, ``iso-9001``, ``a4``,
  ``user_id``, ``john.doe@example.com``; a URL without its scheme), and its parts are terms too:
  its letter runs (stemmed, stop words dropped), its numbers (amounts and dates as above), the local
  part and domain of an e-mail address, the host of a URL with and without ``www.``. ``RM12.50``
  gives ``rm12.50``, ``rm``, ``12.50``; ``INV-00421`` gives ``inv-00421``, ``inv``, ``00421``;
  ``31Jul2018`` gives ``31jul2018``, ``31``, ``jul``, ``2018``; ``25th`` gives ``25th``, ``25``.
* Parts of one character are not terms (``E-217`` gives ``e-217`` and ``217``; ``A4`` only
  ``a4``), and a run alternating letters and digits more than three times (a hash) has no parts.

Weights. A part counts :data:`PART_WEIGHT` (0.5) in its document's term frequency and nothing in
the document's length; a query weighs a whole token 1, a part 0.5 and the letters of a code 0.25
(:data:`LETTER_PART_WEIGHT`: ``cs`` of ``CS10004241`` names a class of receipts, its number the
receipt, so a receipt where OCR read ``cs`` twice must not beat the one holding the number). A part must lose
to the same characters met whole, and still count enough to find a document through it: the query
``RM12.50`` ranks a receipt holding ``RM12.50`` (whole: a rare term, high IDF) above one holding
``RM 12.50``, and the query ``12.50`` ranks an amount standing alone above the ``12.50`` inside
``RM12.50`` (tf 1 against 0.5: about 1.0 against 0.65 after saturation at average length) yet finds
both; the query ``25/12/2018`` ranks the receipt with that date whole above one dated 25/11/2018
(which shares two parts), and still finds ``25 / 12 / 2018`` spelt with spaces or split by OCR.
Parts are left out of the length so that receipts, dense with dates and codes, are not penalised
as long for holding several views of the same characters. A query's parts also find, far lower,
documents that share only a part (the query ``number3`` lists every document holding ``number``
after the one holding ``number3``): a ranked list, like any BM25 query of several terms.

Cost. An encoder remembers the terms of the last distinct tokens it met (up to 32768), so on real
text, which repeats its words, analysis costs about a dictionary lookup per token, less than
version 1 of the analysis (which stemmed every token); text made only of distinct codes and
amounts misses that memory and pays for the full analysis of every token.

Stop words are NLTK's English list without the clitic fragments NLTK keeps for its own tokenizer
(``don``, ``isn``, ``s``, ``t``, ``ll`` ...; this analysis never produces them), plus ``could`` and
``would`` from Snowball's English list. It holds Lucene's 33-word English default (bm25s's
``STOPWORDS_EN``). Stemming is the same Snowball English stemmer bm25s uses; the unit tests compare
both on sample text.

OCR'd text. With ``ocr`` settings (:class:`~.ocr_terms.OcrTerms`, on for new indexes) a document
given its OCR'd words (:meth:`BM25Encoder.encode_document`'s ``ocr_words``) also holds character
n-grams of their confusion-normalised forms, in a namespace of their own, and
:meth:`BM25Encoder.encode_ocr_query` gives a query's n-grams: keyword search that survives OCR's
misreadings (see :mod:`.ocr_terms`). The word terms and their values are the same either way.
An index stored without ``ocr`` settings (made before they existed) has no n-grams, and its
queries get none.

Term indices are the first 31 bits of a BLAKE2b hash of the term: stable across processes and
machines, no vocabulary to persist. The analysis decides every index, so its version is part of
:meth:`BM25Encoder.config`, stored with the index: an index built by another version of the analysis
is refused (:meth:`BM25Encoder.from_config`) instead of being searched with terms it never held.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .._optional import require
from ..errors import ConfigurationError, echo
from .ocr_terms import OcrTerms
from .ocr_terms import settings_problem as ocr_settings_problem

__all__ = [
    "LETTER_PART_WEIGHT", "PART_WEIGHT", "TOKENIZER_VERSION", "BM25Encoder", "SparseVector", "merge", "settings_problem", "term_index",
]

#: Version of the analysis (tokens, terms, weights); stored with an index in ``config()``.
#: Version 1 (no ``tokenizer`` key) was lower-cased ``\w+`` runs, stop words dropped, stemmed.
TOKENIZER_VERSION = 2

#: Term frequency a part of a joined token (``rm`` and ``12.50`` of ``RM12.50``) adds to a document,
#: and the weight of a part in a query.
PART_WEIGHT = 0.5
#: Query weight of the letters of a code (``inv`` of ``INV-00421``): a class of documents (every
#: invoice, every ``RM`` amount), so that a rare number in the code, or the code whole, decides.
LETTER_PART_WEIGHT = 0.25

#: A token: ``\w+`` runs joined by one joiner (or a URL's ``://``) between each two.
_TOKEN = re.compile(r"\w+(?:(?:[-/.,:@&'’]|://)\w+)*")
#: An English clitic ending a token (``'s`` possessive, ``n't`` ...).
_CLITIC = re.compile(r"['’](?:s|t|re|ve|ll|d|m)$")
#: What a token cut at underscores must not start or end with.
_EDGES = "_-/.,:@&'’"
#: What is left of ``n't`` forms whose base is not the word before ``n't``.
_NOT_BASE = {"ca": "can", "wo": "will", "sha": "shall", "ai": "is"}
#: The parts of a joined token: runs of letters, and numbers (with separators inside).
_PIECE = re.compile(r"\d+(?:[-/.,]\d+)*|[^\W\d_]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)+")
_DECIMAL = re.compile(r"\d+\.\d+")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL_COMMA = re.compile(r"\d+,\d\d")
_THOUSANDS_DOTS = re.compile(r"\d{1,3}(?:\.\d{3})+,\d\d?")
_DATE = re.compile(r"(\d{1,4})([./-])(\d{1,2})\2(\d{1,4})")
_DIGITS = re.compile(r"\d+")
_ORDINAL = re.compile(r"(\d+)(?:st|nd|rd|th)")
#: Letter runs of URLs that say nothing about the page.
_URL_NOISE = frozenset({"www", "http", "https", "ftp"})

#: Common English function words (NLTK's English list without clitic fragments, plus Snowball's
#: ``could`` and ``would``); they carry no topic.
ENGLISH_STOP_WORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves"]
)

#: Single letters, never a term on their own; CJK characters (U+2E80 on) are words and not here.
SINGLE_LETTERS = frozenset(c for c in map(chr, range(0x2E80)) if c.isalpha())

#: Longest query (in distinct terms) scored; the rest of a huge query is ignored.
MAX_QUERY_TERMS = 1024

#: Distinct tokens an encoder remembers the terms of (then it forgets them all and starts again).
_MEMO_SIZE = 1 << 15
#: Longest token remembered (a longer one is rare, and would pin its text in memory).
_MEMO_LONGEST = 64

_SETTINGS = frozenset({"language", "k1", "b", "avg_len", "tokenizer", "ocr"})
#: Marks "the default": OCR n-grams on (a new index), as opposed to ``ocr=None`` (none).
_DEFAULT_OCR = OcrTerms()


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


def _amount(number: str) -> str | None:
    """*number* (digits with ``.`` or ``,``) as an amount term, or ``None`` when it is no amount."""
    if _DECIMAL.fullmatch(number):
        return number
    if _THOUSANDS.fullmatch(number):
        return number.replace(",", "")
    if _DECIMAL_COMMA.fullmatch(number):
        return number.replace(",", ".")
    if _THOUSANDS_DOTS.fullmatch(number):
        return number.replace(".", "").replace(",", ".")
    return None


def _date(token: str) -> tuple[str, list[str]] | None:
    """``25.12.2018`` -> (``25/12/2018``, its numbers); ``None`` when *token* is no date."""
    m = _DATE.fullmatch(token)
    if m is None:
        return None
    numbers = [g if len(g) > 2 else str(int(g)) for g in (m[1], m[3], m[4])]
    if len(m[1]) == 4 and len(m[4]) <= 2:  # year first (2018-12-25): day first, as most dates are written
        numbers.reverse()
    return "/".join(numbers), numbers


def _normalize_amounts(token: str) -> str:
    return _NUMBER.sub(lambda m: _amount(m.group()) or m.group(), token) if "," in token else token


class BM25Encoder:
    """Turn texts into BM25 sparse vectors (documents) and term sets (queries).

    ``language`` is any Snowball language PyStemmer knows (``"english"``, ``"german"`` ...) or
    ``None`` for no stemming; stop words are removed for English only. ``tokenizer`` is the version
    of the analysis; only :data:`TOKENIZER_VERSION` is available (it is a setting so that the
    version stored with an index is checked when the index is opened). ``ocr``: the OCR n-gram
    terms of OCR'd text (:class:`~.ocr_terms.OcrTerms` or its ``config()``; its defaults unless
    given, ``None`` for none).
    """

    def __init__(
        self,
        *,
        language: str | None = "english",
        k1: float = 1.2,
        b: float = 0.75,
        avg_len: float = 100.0,
        tokenizer: int = TOKENIZER_VERSION,
        ocr: OcrTerms | Mapping[str, Any] | None = _DEFAULT_OCR,
    ) -> None:
        if _range_problem("k1", k1) or _range_problem("b", b) or _range_problem("avg_len", avg_len):
            raise ConfigurationError(f"BM25 needs k1 >= 0, 0 <= b <= 1, avg_len > 0; got {k1=}, {b=}, {avg_len=}")
        if tokenizer != TOKENIZER_VERSION:
            raise ConfigurationError(
                f"BM25 tokenizer version {tokenizer!r} is not available; this version of mm-rag-plugin has "
                f"version {TOKENIZER_VERSION}"
            )
        self.language, self.k1, self.b, self.avg_len = language, float(k1), float(b), float(avg_len)
        self.tokenizer = TOKENIZER_VERSION
        if isinstance(ocr, Mapping):  # as config() writes it
            ocr = OcrTerms.from_config(ocr)
        elif ocr is not None and not isinstance(ocr, OcrTerms):
            raise ConfigurationError(f"ocr must be OcrTerms settings or None, got {echo(ocr)}")
        self.ocr: OcrTerms | None = ocr
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
        self._drop = self._stop | SINGLE_LETTERS
        self._memo: dict[str, str | tuple[str, ...]] = {}  # token -> its terms (see _learn)
        self._ids: dict[str, int | tuple[int, ...]] = {}  # token -> its terms' indices (see _learn_ids)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str | None = None) -> BM25Encoder:
        """The encoder of an index's stored :meth:`config`.

        A config from another version of the analysis (one without ``tokenizer`` is version 1, from
        before the key existed) raises :class:`ConfigurationError` saying to re-ingest: searching
        it with this analysis would look up terms its documents were never indexed under."""
        prefix = f"{where}: " if where else ""
        version = config.get("tokenizer", 1)
        if version != TOKENIZER_VERSION:
            raise ConfigurationError(
                f"{prefix}the index was built with BM25 tokenizer version {version!r}, and this version of "
                f"mm-rag-plugin analyses text with version {TOKENIZER_VERSION} (dates, amounts and codes kept "
                "whole), so its keyword search would be mis-scored; re-ingest the documents into a new index folder"
            )
        unknown = sorted(set(config) - _SETTINGS)
        if unknown:
            raise ConfigurationError(f"{prefix}unknown BM25 settings {unknown} in the index; it was built by a newer version")
        problem = settings_problem(config)
        if problem:
            raise ConfigurationError(f"{prefix}damaged index: bm25.{problem}")
        # no "ocr" key: an index made before OCR n-grams existed, which holds none
        return cls(**{**config, "ocr": config.get("ocr")})

    def config(self) -> dict[str, object]:
        """The settings that determine document values (stored with the index)."""
        return {"language": self.language, "k1": self.k1, "b": self.b, "avg_len": self.avg_len, "tokenizer": self.tokenizer,
                "ocr": None if self.ocr is None else self.ocr.config()}

    # ------------------------------------------------------------------ analysis
    def tokenize(self, text: str) -> list[str]:
        """The terms of *text* in order, each joined token followed by its parts (see the module)."""
        return self._analyze(text or "")[0]

    def analyze(self, text: str) -> list[tuple[str, float]]:
        """The terms of *text* in order with the term frequency each adds: 1, or
        :data:`PART_WEIGHT` for a part of a joined token."""
        terms, parts = self._analyze(text or "")
        weights = [1.0] * len(terms)
        for i in parts:
            weights[i] = PART_WEIGHT
        return list(zip(terms, weights, strict=True))

    def _analyze(self, text: str) -> tuple[list[str], list[int]]:
        """Terms of *text* and the positions among them of parts.

        Each distinct token is analysed once and remembered (:meth:`_learn`): text repeats its
        words, and a lookup costs less than the checks and the stemmer."""
        terms: list[str] = []
        parts: list[int] = []
        append = terms.append
        known = self._memo.get
        for token in _TOKEN.findall(text.lower()):
            found = known(token)
            if found is None:
                found = self._learn(token)
            if found.__class__ is str:
                if found:
                    append(found)
            else:  # a whole and its parts
                n = len(terms)
                terms += found
                parts += range(n + 1, n + len(found))
        return terms, parts

    def _learn(self, token: str) -> str | tuple[str, ...]:
        """The terms of *token*: one term, ``""`` for none, or a whole followed by its parts."""
        terms = self._token(token)
        found = terms if isinstance(terms, str) else terms[0] if len(terms) == 1 else tuple(terms)
        if len(token) <= _MEMO_LONGEST:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[token] = found
        return found

    def _stem(self, word: str) -> str:
        return self._stemmer.stemWord(word) if self._stemmer is not None else word

    def _token(self, token: str) -> str | list[str]:
        # cut what surrounds the token proper: underscores, clitics, a URL's scheme (a few times
        # only: a hostile token may nest them thousands deep, and each cut copies the token)
        for _ in range(8):
            if token[:1] == "_" or token[-1:] == "_":  # __init__, ___ (a form's blank), _._
                token = token.strip(_EDGES)
                continue
            clitic = _CLITIC.search(token, max(0, len(token) - 4))
            if clitic is not None:
                token = token[: clitic.start()]
                if clitic.group()[1:] == "t" and token.endswith("n"):
                    token = _NOT_BASE.get(token[:-1], token[:-1])
                token = token.rstrip(_EDGES)
                continue
            scheme, sep, rest = token.partition("://")
            if sep and scheme.isalpha():
                token = rest
                continue
            break
        if token.isalpha():
            return "" if token in self._drop else self._stem(token)
        if token.isdigit():
            return token
        if not any(map(str.isalnum, token)):  # nothing left, or what a hostile token leaves
            return ""
        if token[0].isdigit() and _NUMBER.fullmatch(token):
            amount = _amount(token)
            if amount is not None:
                return amount
        return self._joined(token)

    def _joined(self, token: str) -> list[str]:
        """The whole and the parts of a token joining runs of letters and digits."""
        date = _date(token)
        if date is not None:
            out = [date[0]]
            for number in date[1]:
                self._part(number, out)
            return out
        whole = _normalize_amounts(token)
        out = [whole]
        if token.isalnum():  # letters and digits with no joiner: rm12, 31jul2018, a4, 25th, a hash
            ordinal = _ORDINAL.fullmatch(token)
            pieces = [ordinal[1]] if ordinal else _PIECE.findall(token)
            if len(pieces) > 3:
                return out
        else:
            pieces = _PIECE.findall(token)
            if "@" in token:  # e-mail: the local part and the domain, when joined by dots
                local, _, domain = token.rpartition("@")
                out += [s for s in (local, domain) if "." in s and "@" not in s and "/" not in s]
            elif "/" in token or token.startswith("www."):  # a URL: its host, with and without www.
                host = token.split("/", 1)[0].partition(":")[0]
                if "." in host and host[0].isalpha():
                    out += [h for h in dict.fromkeys((host, host[4:] if host.startswith("www.") else "")) if "." in h and h != whole]
        for piece in pieces:
            if piece == token:  # a number that is no amount or date (192.168.1.10, 012-345-6789)
                for number in _DIGITS.findall(piece):
                    self._part(number, out)
            else:
                self._part(piece, out)
        return out

    def _part(self, piece: str, out: list[str]) -> None:
        """Add the terms of *piece* (a letter run or a number found in a joined token) as parts."""
        if len(piece) < 2:
            return
        if not piece[0].isdigit():
            if piece not in self._drop and piece not in _URL_NOISE:
                out.append(self._stem(piece))
            return
        if piece.isdigit():
            out.append(piece)
            return
        amount = _amount(piece)
        if amount is not None:
            out.append(amount)
            return
        date = _date(piece)
        out.append(piece if date is None else date[0])
        for number in _DIGITS.findall(piece) if date is None else date[1]:
            self._part(number, out)

    # ------------------------------------------------------------------ vectors
    def encode_document(self, text: str, ocr_words: list[tuple[str, float]] | None = None) -> SparseVector:
        """BM25 term-frequency weights of *text* (empty vector for text without terms). With
        *ocr_words* (the OCR'd words of the text and the confidence of each, 0..1:
        :func:`~.ocr_terms.ocr_words`) and ``ocr`` settings, also the weights of their n-grams."""
        ids: list[int] = []  # of the terms that count in the length, and fully in term frequency
        part_ids: list[int] = []
        append = ids.append
        known = self._ids.get
        for token in _TOKEN.findall((text or "").lower()):
            found = known(token)
            if found is None:
                found = self._learn_ids(token)
            if found.__class__ is int:
                if found >= 0:
                    append(found)
            else:  # a whole and its parts
                append(found[0])  # type: ignore[index]
                part_ids += found[1:]  # type: ignore[index]
        if not ids:
            return _empty()
        tf: dict[int, float] = dict(Counter(ids))
        for i, n in Counter(part_ids).items():
            tf[i] = tf.get(i, 0.0) + PART_WEIGHT * n
        norm = self.k1 * (1.0 - self.b + self.b * len(ids) / self.avg_len)
        if ocr_words and self.ocr is not None:
            for i, count in self.ocr.document_counts(ocr_words).items():
                tf[i] = tf.get(i, 0.0) + count  # (a hash shared with a word term adds up, as two words do)
        idx = np.fromiter(tf.keys(), dtype=np.uint32, count=len(tf))
        freq = np.fromiter(tf.values(), dtype=np.float64, count=len(tf))
        values = freq * (self.k1 + 1.0) / (freq + norm)
        order = np.argsort(idx)
        return SparseVector(idx[order], values[order].astype(np.float32))

    def _learn_ids(self, token: str) -> int | tuple[int, ...]:
        """The term indices of *token*: one index, -1 for none, or a whole's followed by its parts'."""
        terms = self._memo.get(token)
        if terms is None:
            terms = self._learn(token)
        found = (term_index(terms) if terms else -1) if isinstance(terms, str) else tuple(map(term_index, terms))
        if len(token) <= _MEMO_LONGEST:
            if len(self._ids) >= _MEMO_SIZE:
                self._ids.clear()
            self._ids[token] = found
        return found

    def encode_documents(self, texts: list[str]) -> list[SparseVector]:
        return [self.encode_document(t) for t in texts]

    def encode_query(self, text: str) -> SparseVector:
        """Per distinct query term (the store multiplies in the IDF): 1 for a whole token,
        :data:`PART_WEIGHT` for a part, :data:`LETTER_PART_WEIGHT` for the letters of a code
        (``inv`` of ``INV-00421``, ``cs`` of ``CS10004241``); a term met both ways weighs its most."""
        terms, parts = self._analyze(text or "")
        part_at = set(parts)
        weights: dict[int, float] = {}
        for n, term in enumerate(terms):
            w = 1.0 if n not in part_at else LETTER_PART_WEIGHT if term.isalpha() else PART_WEIGHT
            i = term_index(term)
            if w > weights.get(i, 0.0):
                if i not in weights and len(weights) >= MAX_QUERY_TERMS:
                    continue
                weights[i] = w
        return _from_weights(weights)


    def encode_ocr_query(self, text: str, weight: float = 1.0) -> SparseVector:
        """The OCR n-grams of the query *text*, *weight* shared by the n-grams of each word (empty
        for an index without ``ocr`` settings, or weight 0); added to :meth:`encode_query`'s
        vector by the searcher (:func:`merge`)."""
        if self.ocr is None or not weight > 0:
            return _empty()
        weights = self.ocr.query_weights(text, float(weight))
        return _from_weights(weights)


def merge(a: SparseVector, b: SparseVector) -> SparseVector:
    """The sum of two sparse vectors."""
    if not len(b):
        return a
    if not len(a):
        return b
    idx = np.concatenate([a.indices, b.indices])
    vals = np.concatenate([a.values, b.values])
    uniq, inverse = np.unique(idx, return_inverse=True)
    return SparseVector(uniq.astype(np.uint32), np.bincount(inverse, weights=vals).astype(np.float32))


#: What each numeric setting must be: a finite number in this range.
_RANGES = {
    "k1": (lambda v: v >= 0, "a finite number >= 0"),
    "b": (lambda v: 0 <= v <= 1, "a finite number from 0 to 1"),
    "avg_len": (lambda v: v > 0, "a finite number > 0"),
}


def _range_problem(name: str, value: Any) -> str | None:
    ok, wanted = _RANGES[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or not ok(value):
        return f"{name} must be {wanted}, got {echo(value)}"
    return None


@lru_cache(maxsize=64)
def _known_language(language: str) -> bool:
    stemmer_mod = require("Stemmer", extra="index", package="PyStemmer")
    try:
        stemmer_mod.Stemmer(language)
    except (KeyError, ValueError, TypeError):
        return False
    return True


def settings_problem(config: Mapping[str, Any]) -> str | None:
    """What is wrong with stored BM25 settings *config* (an index's, read from its manifest), as
    ``"<field> must be ..., got ..."``; ``None`` when every value has the right type and range.
    A missing setting takes its default; unknown ones and the analysis version are judged by
    :meth:`BM25Encoder.from_config`."""
    for name in _RANGES:
        if name in config:
            problem = _range_problem(name, config[name])
            if problem:
                return problem
    language = config.get("language")
    if language is not None and not (isinstance(language, str) and (not language or _known_language(language))):
        return f"language must be a stemmer language of PyStemmer or null, got {echo(language)}"
    version = config.get("tokenizer", 1)
    if version.__class__ is not int:
        return f"tokenizer must be an integer, got {echo(version)}"
    problem = ocr_settings_problem(config.get("ocr"))
    if problem:
        return f"ocr {problem}"
    return None


def _from_weights(weights: dict[int, float]) -> SparseVector:
    """A sparse vector of *weights* (index -> value), indices sorted."""
    if not weights:
        return _empty()
    idx = np.fromiter(weights.keys(), dtype=np.uint32, count=len(weights))
    order = np.argsort(idx)
    vals = np.fromiter(weights.values(), dtype=np.float32, count=len(weights))
    return SparseVector(idx[order], vals[order])


def _empty() -> SparseVector:
    return SparseVector(np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.float32))


def idf(df: np.ndarray | int, n: int) -> np.ndarray | float:
    """Qdrant's IDF: ``ln(1 + (n - df + 0.5) / (df + 0.5))``."""
    return np.log((n - np.asarray(df, dtype=np.float64) + 0.5) / (np.asarray(df, dtype=np.float64) + 0.5) + 1.0)
