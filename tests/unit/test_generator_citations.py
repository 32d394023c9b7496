from __future__ import annotations

from mm_rag_plugin.generators import cited_numbers, parse_citations
from tests._generator_helpers import text_hit


def test_single_and_grouped_markers_in_order_of_first_use():
    assert cited_numbers("A [2]. B [1, 3]. C [2].", 3) == [2, 1, 3]


def test_semicolons_ranges_and_spaces():
    assert cited_numbers("see [1;4] and [ 2 - 3 ]", 5) == [1, 4, 2, 3]
    assert cited_numbers("reversed [3-1]", 5) == [1, 2, 3]


def test_out_of_range_numbers_are_ignored():
    assert cited_numbers("[0] [4] [2] [99999]", 3) == [2]
    assert cited_numbers("[1-999999]", 3) == [1, 2, 3]  # huge range: no blow-up, clipped


def test_not_citations():
    text = "a list [a], a year [2024 is not cited when out of range], a link [1](http://x), array[0 1]"
    assert cited_numbers(text, 5) == []
    assert cited_numbers("no sources [1]", 0) == []


def test_parse_citations_maps_to_hits():
    hits = [text_hit("a", "x", source="a.pdf", page=3), text_hit("b", "y", source="b.pdf", page=None)]
    cites = parse_citations("Fact [2]. Other [1][2].", hits)
    assert [(c.number, c.hit.id, c.source, c.page) for c in cites] == [
        (2, "b", "b.pdf", None),
        (1, "a", "a.pdf", 3),
    ]
