"""BM25 sparse encoding."""

from __future__ import annotations

import numpy as np
import pytest

from mm_rag_plugin.errors import ConfigurationError
from mm_rag_plugin.retrievers.bm25 import MAX_QUERY_TERMS, BM25Encoder, idf, term_index


def test_tokenize_stems_lowercases_and_drops_stop_words():
    enc = BM25Encoder()
    assert enc.tokenize("The Running dogs ran quickly!") == ["run", "dog", "ran", "quick"]
    assert enc.tokenize("") == []
    assert BM25Encoder(language=None).tokenize("The Dogs") == ["the", "dogs"]


def test_document_values_are_bm25_tf_saturation():
    enc = BM25Encoder(k1=1.2, b=0.75, avg_len=4)
    sv = enc.encode_document("zebra zebra lion")  # 3 terms, len 3
    assert list(sv.indices) == sorted(sv.indices)
    vals = dict(zip(sv.indices.tolist(), sv.values.tolist(), strict=True))
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / 4)
    assert vals[term_index("zebra")] == pytest.approx(2 * 2.2 / (2 + norm), rel=1e-6)
    assert vals[term_index("lion")] == pytest.approx(1 * 2.2 / (1 + norm), rel=1e-6)


def test_query_is_one_per_distinct_term_and_capped():
    enc = BM25Encoder()
    q = enc.encode_query("zebra zebra lions")
    assert len(q) == 2 and np.all(q.values == 1.0)
    assert len(enc.encode_query("the of and")) == 0
    long = " ".join(f"word{i}" for i in range(5000))
    assert len(enc.encode_query(long)) == MAX_QUERY_TERMS


def test_term_index_is_stable_31_bit():
    assert term_index("zebra") == term_index("zebra") < 2**31
    assert term_index("zebra") != term_index("lion")


def test_idf_matches_qdrant_formula():
    assert idf(1, 10) == pytest.approx(np.log((10 - 1 + 0.5) / 1.5 + 1))


def test_bad_settings():
    with pytest.raises(ConfigurationError):
        BM25Encoder(b=2)
    with pytest.raises(ConfigurationError, match="unknown stemmer"):
        BM25Encoder(language="klingon")
