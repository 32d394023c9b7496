"""OCR n-gram terms (retrievers/ocr_terms.py): misread, split and joined words still match the
words as typed; confident words weigh more; the settings are stored and checked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mm_rag_plugin.errors import ConfigurationError
from mm_rag_plugin.retrievers.bm25 import BM25Encoder, idf, merge, settings_problem
from mm_rag_plugin.retrievers.ocr_terms import OcrTerms, normal_form, ocr_words
from mm_rag_plugin.types import ImageChunk, TextChunk


def _words(text: str, confidence: float = 1.0) -> list[tuple[str, float]]:
    return [(w, confidence) for w in text.split()]


def _score(enc: BM25Encoder, query: str, doc: str | list[tuple[str, float]], weight: float = 1.0) -> float:
    """BM25 score of *doc* (OCR'd words) for *query*, without IDF (every term counts 1)."""
    words = _words(doc) if isinstance(doc, str) else doc
    d = enc.encode_document(" ".join(w for w, _ in words), words)
    q = merge(enc.encode_query(query), enc.encode_ocr_query(query, weight))
    stored = dict(zip(d.indices.tolist(), d.values.tolist(), strict=True))
    return sum(v * stored.get(i, 0.0) for i, v in zip(q.indices.tolist(), q.values.tolist(), strict=True))


def _ranks_first(enc: BM25Encoder, query: str, right: str, wrong: str, others: tuple[str, ...] = ()) -> bool:
    """Whether *right* scores above *wrong* for *query*, with the IDF of these documents and
    *others* (as the store computes it: a term many hold weighs less than one few hold)."""
    docs = [enc.encode_document(t, _words(t)) for t in (right, wrong, *others)]
    df: dict[int, int] = {}
    for d in docs:
        for i in d.indices.tolist():
            df[i] = df.get(i, 0) + 1
    q = merge(enc.encode_query(query), enc.encode_ocr_query(query))
    scores = []
    for d in docs[:2]:
        stored = dict(zip(d.indices.tolist(), d.values.tolist(), strict=True))
        scores.append(sum(v * stored.get(i, 0.0) * float(idf(df.get(i, 0), len(docs))) for i, v in zip(q.indices.tolist(), q.values.tolist(), strict=True)))
    return scores[0] > scores[1]


WORDS_ONLY = BM25Encoder(ocr=None)
OCR = BM25Encoder()


def test_normal_form_unites_the_characters_ocr_confuses():
    assert normal_form("OR10003674") == normal_form("0R1OOO3674") == normal_form("ORlOOO3674")
    assert normal_form("RM51.70") == normal_form("RM51-70") == normal_form("RM51,70")
    assert normal_form("CORNER") == normal_form("COMER")  # rn read as m
    assert normal_form("B8") == normal_form("88") and normal_form("S5") == normal_form("SS")
    assert normal_form("(BHD).") == "bhd"  # punctuation at the edges goes
    assert normal_form("0R1000", confusion=False) == "0r1000"


def test_a_misread_company_name_ranks_first_only_with_ocr_terms():
    query = "PERMATA CAHAYA HARDWARE SDN BHD"
    right = "PERMATA CAHAYA HARDWAKE SDN BND"  # two letters misread
    wrong = "EMAS JAYA HARDWARE SDN BHD"  # another company, read well
    assert not _ranks_first(WORDS_ONLY, query, right, wrong)
    assert _ranks_first(OCR, query, right, wrong)


def test_a_misread_word_still_shares_ngrams_with_the_word_typed():
    assert _score(WORDS_ONLY, "HARDWARE", "HARDWAKE") == 0.0
    assert _score(OCR, "HARDWARE", "HARDWAKE") > 0.0
    assert _score(OCR, "SDN BHD", "SDN BND") > _score(WORDS_ONLY, "SDN BHD", "SDN BND") > 0


def test_an_amount_split_by_ocr_matches_the_amount_typed_whole():
    right, wrong = "TOTAL RM 12.50", "TOTAL RM 13.50 RM12"
    assert _ranks_first(OCR, "RM12.50", right, wrong)
    # and the other way round: the amount read whole, the query typed with a space
    assert _ranks_first(OCR, "RM 12.50", "TOTAL RM12.50", "TOTAL RM13.50 12")


def test_o_and_zero_in_receipt_numbers():
    query = "OR10003674"
    right = "No: OR1OOO3674"  # zeros read as the letter O
    wrong = "No: OR10003647"  # another receipt's number, read right
    assert not _ranks_first(WORDS_ONLY, query, right, wrong)
    assert _ranks_first(OCR, query, right, wrong)
    assert _ranks_first(OCR, "CS1OO68476", "No: CS10068476", "No: CS10068467")  # O typed for 0 in the query


def test_a_word_joined_by_ocr_matches_the_words_typed():
    streets = ("NO 7 JALAN MAJU 2", "NO 9 JALAN EMAS 1", "NO 4 JALAN PERMATA 6")  # JALAN is a common word
    assert _ranks_first(OCR, "JALAN SINAR 3", "NO 5 JALANSINAR 3", "NO 5 JALAN KENCANA 3", streets)
    assert not _ranks_first(WORDS_ONLY, "JALAN SINAR 3", "NO 5 JALANSINAR 3", "NO 5 JALAN KENCANA 3", streets)


def test_low_confidence_words_weigh_less():
    weighted = BM25Encoder(ocr=OcrTerms(confidence=True))
    text = "ZANZIBAR TRADING"
    sure = weighted.encode_document(text, _words(text, 0.95))
    unsure = weighted.encode_document(text, _words(text, 0.3))
    assert sure.indices.tolist() == unsure.indices.tolist()
    assert sure.values.sum() > unsure.values.sum()
    words = {i: v for i, v in zip(WORDS_ONLY.encode_document(text).indices.tolist(), WORDS_ONLY.encode_document(text).values.tolist(), strict=True)}
    for i, v in zip(unsure.indices.tolist(), unsure.values.tolist(), strict=True):
        if i in words:
            assert v == pytest.approx(words[i])  # word terms are not weighted: BM25 unchanged
    # so of two receipts that read the same misread word, the confident reading ranks first
    query = "ZANZIBOR"
    assert _score(weighted, query, _words("ZANZIBAR", 0.9)) > _score(weighted, query, _words("ZANZIBAR", 0.2)) > 0
    # without confidence weights (the default) both weigh the same
    plain = OCR
    assert _score(plain, query, _words("ZANZIBAR", 0.9)) == pytest.approx(_score(plain, query, _words("ZANZIBAR", 0.2)))


def test_word_terms_and_text_without_ocr_are_unchanged():
    text = "KEDAI RUNCIT ALI SDN BHD TOTAL RM12.50 25/12/2018"
    assert OCR.encode_document(text).indices.tolist() == WORDS_ONLY.encode_document(text).indices.tolist()
    assert OCR.encode_query(text).indices.tolist() == WORDS_ONLY.encode_query(text).indices.tolist()
    assert len(WORDS_ONLY.encode_ocr_query(text)) == 0  # an index without OCR terms: queries get none
    assert len(OCR.encode_ocr_query(text, 0.0)) == 0
    with_ocr = OCR.encode_document(text, _words(text))
    assert set(WORDS_ONLY.encode_document(text).indices.tolist()) < set(with_ocr.indices.tolist())


def test_ocr_words_of_chunks():
    img = ImageChunk(id="i", source="r.png", image_path="r.png", content_hash="h", ocr_text="SDN BND",
                     metadata={"ocr_words": [["SDN", 96.0, 0, 0, 9, 9], ["BND", 41.5, 10, 0, 19, 9]]})
    assert ocr_words(img) == [("SDN", 0.96), ("BND", 0.415)]
    plain = ImageChunk(id="j", source="s.png", image_path="s.png", content_hash="h", ocr_text="SDN BHD")
    assert ocr_words(plain) == [("SDN", 1.0), ("BHD", 1.0)]
    assert ocr_words(ImageChunk(id="k", source="t.png", image_path="t.png", content_hash="h")) is None
    assert ocr_words(TextChunk(id="t", text="typed text", source="a.pdf", position=0)) is None
    scanned = TextChunk(id="s", text="SDN BND", source="a.pdf", position=0, metadata={"ocr": True})
    assert ocr_words(scanned) == [("SDN", 1.0), ("BND", 1.0)]


def test_settings_are_stored_validated_and_old_configs_have_none():
    config = OCR.config()
    assert config["ocr"] == {"version": 1, "n": 3, "confusion": True, "confidence": False}
    assert json.loads(json.dumps(config)) == config
    assert BM25Encoder.from_config(config).ocr == OcrTerms()
    old = {k: v for k, v in config.items() if k != "ocr"}  # written before OCR terms existed
    assert BM25Encoder.from_config(old).ocr is None
    assert BM25Encoder.from_config({**config, "ocr": None}).config()["ocr"] is None
    for bad in ({"version": 2, "n": 3, "confusion": True, "confidence": True}, {"version": 1, "n": 9, "confusion": True, "confidence": True},
                {"version": 1, "n": 3}, "yes", {"version": 1, "n": 3, "confusion": 1, "confidence": True}):
        assert settings_problem({**config, "ocr": bad}).startswith("ocr ")
        with pytest.raises(ConfigurationError, match=r"bm25\.ocr"):
            BM25Encoder.from_config({**config, "ocr": bad}, "ix/manifest.json")
    with pytest.raises(ConfigurationError, match="n from 2 to 5"):
        OcrTerms(n=1)


def test_query_weight_scales_the_ngrams():
    one = OCR.encode_ocr_query("HARDWARE", 1.0)
    two = OCR.encode_ocr_query("HARDWARE", 2.0)
    assert np.allclose(two.values, 2 * one.values)
    assert one.values.sum() == pytest.approx(1.0)  # a word's n-grams share its weight


def test_the_searcher_adds_ngrams_when_bm25_is_searched_alone_or_when_asked():
    from types import SimpleNamespace

    from mm_rag_plugin.retrievers.search import OCR_WEIGHT, SearchOptions, _plan

    index = SimpleNamespace(bm25=OCR)
    words = len(OCR.encode_query("HARDWARE"))
    vector = np.ones(4, np.float32)

    def bm25_terms(options: SearchOptions, vec: np.ndarray | None) -> int:
        (bm25,) = [q for q in _plan(index, options, "HARDWARE", vec, (), 10) if q.name == "bm25"]
        return len(bm25.sparse)

    alone = bm25_terms(SearchOptions(), None)
    assert alone > words and bm25_terms(SearchOptions(mode="keyword"), vector) == alone
    assert bm25_terms(SearchOptions(), vector) == words  # beside dense lists: words only
    assert bm25_terms(SearchOptions(weights={"dense_text": 0, "dense_image": 0}), vector) == alone
    assert bm25_terms(SearchOptions(weights={"ocr": OCR_WEIGHT}), vector) == alone
    assert bm25_terms(SearchOptions(weights={"ocr": 0}), None) == words
    with pytest.raises(ConfigurationError, match="unknown list"):
        SearchOptions(weights={"ocr": -1})
