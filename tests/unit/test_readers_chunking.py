from __future__ import annotations

import itertools

import pytest

from mm_rag_plugin.errors import ConfigurationError
from mm_rag_plugin.readers.chunking import TextSplitter, count_words

PARAS = "\n\n".join(" ".join(f"Sentence {p}.{s} has a few words in it." for s in range(6)) for p in range(8))


def test_pieces_fit_and_cover_the_text() -> None:
    sp = TextSplitter(200, 40)
    spans = sp.split_spans(PARAS)
    assert len(spans) > 5
    assert all(len(s.text) <= 200 for s in spans)
    for s in spans:
        assert PARAS[s.start : s.end] == s.text
    # every sentence appears in at least one piece
    for p in range(8):
        for s in range(6):
            assert any(f"Sentence {p}.{s} " in x.text for x in spans)


def test_cuts_on_sentence_boundaries_and_overlaps() -> None:
    spans = TextSplitter(200, 60).split_spans(PARAS)
    for s in spans[:-1]:
        assert s.text.endswith("."), s.text[-30:]
    overlapping = sum(1 for a, b in itertools.pairwise(spans) if b.start < a.end)
    assert overlapping >= len(spans) // 2


def test_paragraph_boundary_preferred() -> None:
    text = "a" * 50 + ". " + "b" * 50 + ".\n\n" + "c" * 60 + "."
    pieces = TextSplitter(150, 0).split(text)
    assert pieces[0].endswith("b" * 50 + ".")
    assert pieces[1] == "c" * 60 + "."


def test_no_overlap_means_disjoint() -> None:
    spans = TextSplitter(120, 0).split_spans(PARAS)
    assert all(b.start >= a.end for a, b in itertools.pairwise(spans))


def test_huge_word_is_hard_cut() -> None:
    # no boundary inside the overlap window: pieces do not overlap rather than cut a word twice
    assert "".join(TextSplitter(100, 10).split("x" * 250)) == "x" * 250
    assert [len(p) for p in TextSplitter(100, 10).split("x" * 250)] == [100, 100, 50]


def test_token_unit() -> None:
    sp = TextSplitter(30, 5, unit="tokens")
    pieces = sp.split(PARAS)
    assert all(count_words(p) <= 30 for p in pieces)
    assert len(pieces) > 5


def test_empty_and_whitespace() -> None:
    assert TextSplitter().split("") == []
    assert TextSplitter().split("  \n\n  ") == []


@pytest.mark.parametrize(
    "kwargs", [dict(chunk_size=0), dict(chunk_size=10, chunk_overlap=10), dict(unit="lines")]
)
def test_bad_options(kwargs: dict) -> None:
    with pytest.raises(ConfigurationError):
        TextSplitter(**kwargs)
