"""open_clip's CLIP tokenizer (``SimpleTokenizer``, ``clean="lower"``) without PyTorch.

A port of ``open_clip/tokenizer.py`` (itself OpenAI CLIP's, MIT licence) that returns NumPy
arrays, for the text tower of :mod:`.text_tower`: a text query then imports neither torch nor
open_clip. The BPE vocabulary is open_clip's own file, found without importing open_clip. A test
checks the token ids equal open_clip's on varied texts; the text tower checks again, on probe
texts, when it is exported.
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.util
import itertools
from pathlib import Path

import numpy as np

__all__ = ["ClipTokenizer", "bpe_vocab_file"]

SOT, EOT = "<start_of_text>", "<end_of_text>"


def bpe_vocab_file() -> Path | None:
    """open_clip's ``bpe_simple_vocab_16e6.txt.gz``, located without importing open_clip."""
    try:
        spec = importlib.util.find_spec("open_clip")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "bpe_simple_vocab_16e6.txt.gz"
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=1)
def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def _pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(word))


class ClipTokenizer:
    """Token ids of open_clip's default tokenizer, padded with 0 to *context_length* (truncated
    texts end with the end-of-text token), as an ``int64`` array of shape ``(n, context_length)``."""

    def __init__(self, bpe_path: str | Path, context_length: int = 77) -> None:
        import regex

        self._ftfy = __import__("ftfy")
        self.byte_encoder = _bytes_to_unicode()
        with gzip.open(bpe_path) as fh:
            merges = fh.read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
        pairs = [tuple(m.split()) for m in merges]
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab] + ["".join(p) for p in pairs] + [SOT, EOT]
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.bpe_ranks = {p: i for i, p in enumerate(pairs)}
        self.cache = {SOT: SOT, EOT: EOT}
        self.pat = regex.compile(
            f"{SOT}|{EOT}" + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE
        )
        self.sot_token_id, self.eot_token_id = self.encoder[SOT], self.encoder[EOT]
        self.vocab_size = len(self.encoder)
        self.context_length = context_length

    def _bpe(self, token: str) -> str:
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        word: tuple[str, ...] = (*token[:-1], token[-1] + "</w>")
        pairs = _pairs(word)
        if not pairs:
            return token + "</w>"
        inf = float("inf")
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, inf))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new.extend(word[i:])
                    break
                new.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
            if len(word) == 1:
                break
            pairs = _pairs(word)
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        text = html.unescape(html.unescape(self._ftfy.fix_text(text))).strip()
        text = " ".join(text.split()).strip().lower()
        ids: list[int] = []
        for token in self.pat.findall(text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(token).split(" "))
        return ids

    def __call__(self, texts: list[str], context_length: int | None = None) -> np.ndarray:
        n = context_length or self.context_length
        out = np.zeros((len(texts), n), dtype=np.int64)
        for i, text in enumerate(texts):
            ids = [self.sot_token_id, *self.encode(text), self.eot_token_id]
            if len(ids) > n:
                ids = ids[:n]
                ids[-1] = self.eot_token_id
            out[i, : len(ids)] = ids
        return out
