"""BM25 sparse encoding: the analysis (dates, amounts and codes whole, with their parts), document and
query values, the tokenizer version stored with an index, and rankings of receipt-like texts."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from mm_rag_plugin.errors import ConfigurationError
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.retrievers.bm25 import (
    LETTER_PART_WEIGHT,
    MAX_QUERY_TERMS,
    PART_WEIGHT,
    TOKENIZER_VERSION,
    BM25Encoder,
    idf,
    term_index,
)
from mm_rag_plugin.types import TextChunk


def test_tokenize_stems_lowercases_and_drops_stop_words():
    enc = BM25Encoder()
    assert enc.tokenize("The Running dogs ran quickly!") == ["run", "dog", "ran", "quick"]
    assert enc.tokenize("") == []
    assert BM25Encoder(language=None).tokenize("The Dogs") == ["the", "dogs"]


DATE = [("25/12/2018", 1.0), ("25", 0.5), ("12", 0.5), ("2018", 0.5)]


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        # dates: one term (separators unified to "/", leading zeros dropped), their numbers as parts
        ("25/12/2018", DATE),
        ("25.12.2018", DATE),
        ("25-12-2018", DATE),
        ("Date: 25/12/2018", [("date", 1.0), *DATE]),
        ("2018-12-25", DATE),  # year first: written day first
        ("12/25/2018", [("12/25/2018", 1.0), ("12", 0.5), ("25", 0.5), ("2018", 0.5)]),  # never swapped
        ("05/01/2019", [("5/1/2019", 1.0), ("2019", 0.5)]),
        ("31Jul2018", [("31jul2018", 1.0), ("31", 0.5), ("jul", 0.5), ("2018", 0.5)]),
        ("Date:25/12/2018", [("date:25/12/2018", 1.0), ("date", 0.5), ("25/12/2018", 0.5), *DATE[1:]]),
        # amounts: one term, thousands separators gone, no digit groups of their own
        ("12.50", [("12.50", 1.0)]),
        ("RM12.50", [("rm12.50", 1.0), ("rm", 0.5), ("12.50", 0.5)]),
        ("RM 12.50", [("rm", 1.0), ("12.50", 1.0)]),
        ("$1,234.50", [("1234.50", 1.0)]),
        ("RM1,234.50", [("rm1234.50", 1.0), ("rm", 0.5), ("1234.50", 0.5)]),
        ("1.234,50 EUR", [("1234.50", 1.0), ("eur", 1.0)]),
        ("12,50", [("12.50", 1.0)]),
        ("TOTAL 2018.00", [("total", 1.0), ("2018.00", 1.0)]),
        ("1.5kg", [("1.5kg", 1.0), ("1.5", 0.5), ("kg", 0.5)]),
        # codes and identifiers: whole, then parts of two characters or more
        ("E-217", [("e-217", 1.0), ("217", 0.5)]),
        ("INV-00421", [("inv-00421", 1.0), ("inv", 0.5), ("00421", 0.5)]),
        ("A4 paper", [("a4", 1.0), ("paper", 1.0)]),
        ("ISO-9001", [("iso-9001", 1.0), ("iso", 0.5), ("9001", 0.5)]),
        ("ISO9001", [("iso9001", 1.0), ("iso", 0.5), ("9001", 0.5)]),
        ("25th", [("25th", 1.0), ("25", 0.5)]),
        ("user_id", [("user_id", 1.0), ("user", 0.5), ("id", 0.5)]),
        ("9f86d081884c7d65", [("9f86d081884c7d65", 1.0)]),  # a hash: no parts
        ("012-345-6789", [("012-345-6789", 1.0), ("012", 0.5), ("345", 0.5), ("6789", 0.5)]),
        ("10:30", [("10:30", 1.0), ("10", 0.5), ("30", 0.5)]),
        ("state-of-the-art", [("state-of-the-art", 1.0), ("state", 0.5), ("art", 0.5)]),
        ("running-shoes", [("running-shoes", 1.0), ("run", 0.5), ("shoe", 0.5)]),
        # e-mail addresses and URLs: whole, with the local part, domain, host and words as parts
        (
            "John.Doe@Example.com",
            [("john.doe@example.com", 1.0), ("john.doe", 0.5), ("example.com", 0.5), ("john", 0.5),
             ("doe", 0.5), ("exampl", 0.5), ("com", 0.5)],
        ),
        (
            "see https://www.example.com/receipts/2018?id=7.",
            [("see", 1.0), ("www.example.com/receipts/2018", 1.0), ("www.example.com", 0.5),
             ("example.com", 0.5), ("exampl", 0.5), ("com", 0.5), ("receipt", 0.5), ("2018", 0.5),
             ("id", 1.0), ("7", 1.0)],
        ),
        ("http://example.com", [("example.com", 1.0), ("exampl", 0.5), ("com", 0.5)]),
        ("example.com/path", [("example.com/path", 1.0), ("example.com", 0.5), ("exampl", 0.5), ("com", 0.5),
                              ("path", 0.5)]),
        # possessives and other clitics are cut; no single letters; punctuation is no term
        ("John's receipt", [("john", 1.0), ("receipt", 1.0)]),
        ("the shop’s owner", [("shop", 1.0), ("owner", 1.0)]),
        ("INV-00421's total", [("inv-00421", 1.0), ("inv", 0.5), ("00421", 0.5), ("total", 1.0)]),
        ("don't won't can't we're it's I'm", []),
        ("O'Brien", [("o'brien", 1.0), ("brien", 0.5)]),
        ("a b c x S 7 page 4", [("7", 1.0), ("page", 1.0), ("4", 1.0)]),
        ("... --- !!! ___ // $ %", []),
        ("Hi...there", [("hi", 1.0)]),
        ("__init__ _the_ __12__", [("init", 1.0), ("12", 1.0)]),
        # Unicode letters as before; a CJK character is a word of its own
        ("Café STRASSE Straße naïve", [("café", 1.0), ("strass", 1.0), ("straße", 1.0), ("naïv", 1.0)]),
        ("東京タワー 山 第3章", [("東京タワー", 1.0), ("山", 1.0), ("第3章", 1.0)]),
    ],
)
def test_analysis(text, terms):
    enc = BM25Encoder()
    assert enc.analyze(text) == terms
    assert enc.tokenize(text) == [t for t, _ in terms]
    # the query side analyses the same way: all distinct terms; wholes weigh 1, parts 0.5, the
    # letters of a code 0.25 (a term met both ways weighs its most)
    q = enc.encode_query(text)
    expected: dict[int, float] = {}
    for t, w in terms:
        weight = 1.0 if w == 1.0 else LETTER_PART_WEIGHT if t.isalpha() else PART_WEIGHT
        expected[term_index(t)] = max(weight, expected.get(term_index(t), 0.0))
    assert dict(zip(q.indices.tolist(), q.values.tolist(), strict=True)) == expected


def test_random_text_gives_well_formed_terms():
    """Whatever the text: no empty term, no space in one, no single letter standing alone (a CJK
    character or a digit may), parts only after a whole, and the same terms twice."""
    rng = np.random.default_rng(7)
    alphabet = list("abcxyzRMEINV0123456789") + list(" -/.,:@&'’_$%()") + ["é", "ß", "山", "://", "'s", "n't"]
    enc = BM25Encoder()
    for _ in range(300):
        text = "".join(rng.choice(alphabet, size=int(rng.integers(1, 40))))
        terms = enc.analyze(text)
        assert terms == enc.analyze(text) == BM25Encoder().analyze(text), text
        for i, (term, weight) in enumerate(terms):
            assert term and term == term.strip() and " " not in term, (text, terms)
            assert len(term) > 1 or term.isdigit() or term >= "\u2e80", (text, terms)
            assert weight == 1.0 or (i > 0 and weight == PART_WEIGHT), (text, terms)


@pytest.mark.timeout(60)
def test_hostile_tokens_take_linear_time():
    """Tokens nesting clitics, underscores or schemes thousands deep (each cut copies the token)."""
    enc = BM25Encoder()
    for token in ["_'s" * 50_000, "it's" + "'s_" * 50_000, "https://" * 30_000 + "x.com", "a-" * 200_000 + "b",
                  "n't" * 50_000, "_" * 100_000 + "ab" + "_" * 100_000]:
        terms = enc.analyze(token)
        assert all(t and any(c.isalnum() for c in t) for t, _ in terms)
        assert len(enc.encode_document(token)) == len({term_index(t) for t, _ in terms})


def test_repeated_analysis_is_the_same():
    """Tokens are remembered once analysed: a second pass (and a forgotten memo) gives the same terms."""
    enc = BM25Encoder()
    text = "Date: 25/12/2018 TOTAL RM12.50 INV-00421 John's receipts, e-mail ali@shop.com.my"
    first = enc.analyze(text)
    assert enc.analyze(text) == first
    enc._memo.clear()
    assert enc.analyze(text) == first
    assert BM25Encoder().analyze(" ".join([text] * 3)) == first * 3


def test_document_vectors_follow_the_analysis():
    """encode_document (its own memo of term indices) agrees with analyze(), cold and warm."""
    enc = BM25Encoder(avg_len=20)
    texts = [*RECEIPTS.values(), "the of and", "", "Ali's s 's", "see https://www.example.com/a?b=1 ali@x.com.my"]
    for _ in range(2):
        for text in texts:
            terms = enc.analyze(text)
            tf: dict[int, float] = {}
            for term, weight in terms:
                tf[term_index(term)] = tf.get(term_index(term), 0.0) + weight
            length = sum(1 for _, w in terms if w == 1.0)
            norm = 1.2 * (1 - 0.75 + 0.75 * length / 20)
            sv = enc.encode_document(text)
            assert dict(zip(sv.indices.tolist(), sv.values.tolist(), strict=True)) == pytest.approx(
                {i: f * 2.2 / (f + norm) for i, f in tf.items()}, rel=1e-6
            )
        enc._memo.clear()
        enc._ids.clear()


def test_possessive_s_matches_nothing_by_itself():
    enc = BM25Encoder()
    assert len(enc.encode_query("s")) == 0 and len(enc.encode_query("'s")) == 0
    assert enc.encode_query("Ali's").indices.tolist() == enc.encode_query("ali").indices.tolist()
    noisy = enc.encode_document("Ali's s s 's S.")  # OCR noise
    assert noisy.indices.tolist() == [term_index("ali")]


def test_document_values_are_bm25_tf_saturation():
    enc = BM25Encoder(k1=1.2, b=0.75, avg_len=4)
    sv = enc.encode_document("zebra zebra lion")  # 3 terms, len 3
    assert list(sv.indices) == sorted(sv.indices)
    vals = dict(zip(sv.indices.tolist(), sv.values.tolist(), strict=True))
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / 4)
    assert vals[term_index("zebra")] == pytest.approx(2 * 2.2 / (2 + norm), rel=1e-6)
    assert vals[term_index("lion")] == pytest.approx(1 * 2.2 / (1 + norm), rel=1e-6)


def test_parts_count_half_in_term_frequency_and_nothing_in_length():
    assert PART_WEIGHT == 0.5
    enc = BM25Encoder(k1=1.2, b=0.75, avg_len=4)
    # rm12.50 (whole), rm and 12.50 (parts), total, 12.50: three terms long, 12.50 has tf 1.5
    sv = enc.encode_document("RM12.50 total 12.50")
    vals = dict(zip(sv.indices.tolist(), sv.values.tolist(), strict=True))
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / 4)

    def v(tf: float) -> float:
        return tf * 2.2 / (tf + norm)

    assert vals == pytest.approx(
        {term_index("rm12.50"): v(1), term_index("rm"): v(0.5), term_index("12.50"): v(1.5), term_index("total"): v(1)},
        rel=1e-6,
    )
    # a date's parts add no length: the document is as long as the one with a plain word
    assert enc.encode_document("25/12/2018 receipt").values.max() == pytest.approx(
        enc.encode_document("christmas receipt").values.max(), rel=1e-6
    )


def test_query_is_one_per_distinct_term_and_capped():
    enc = BM25Encoder()
    q = enc.encode_query("zebra zebra lions")
    assert len(q) == 2 and np.all(q.values == 1.0)
    assert len(enc.encode_query("the of and")) == 0
    long = " ".join(f"word{i}" for i in range(5000))
    assert len(enc.encode_query(long)) == MAX_QUERY_TERMS
    # a repeated date counts once, wholes and parts alike
    assert len(enc.encode_query("25/12/2018 25/12/2018 2018")) == 4


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
    with pytest.raises(ConfigurationError, match="tokenizer version 1 is not available"):
        BM25Encoder(tokenizer=1)


# ---------------------------------------------------------------------- the settings stored with an index
def test_config_holds_the_tokenizer_version_and_round_trips():
    assert TOKENIZER_VERSION == 2
    enc = BM25Encoder(language="german", k1=1.5, b=0.5, avg_len=250)
    config = enc.config()
    assert config == {"language": "german", "k1": 1.5, "b": 0.5, "avg_len": 250.0, "tokenizer": 2,
                      "ocr": {"version": 1, "n": 3, "confusion": True, "confidence": False}}
    assert json.loads(json.dumps(config)) == config
    assert BM25Encoder(**config).config() == config  # what MultiModalIndex did before from_config
    assert BM25Encoder.from_config(config).config() == config
    assert BM25Encoder.from_config(BM25Encoder().config()).config() == BM25Encoder().config()


def test_a_config_from_the_old_tokenizer_is_refused_clearly():
    old = {"language": "english", "k1": 1.2, "b": 0.75, "avg_len": 100.0}  # version 1 had no key
    with pytest.raises(ConfigurationError) as err:
        BM25Encoder.from_config(old, "/data/ix/manifest.json")
    message = str(err.value)
    assert message.startswith("/data/ix/manifest.json: ")
    assert "tokenizer version 1" in message and "version 2" in message and "re-ingest" in message
    with pytest.raises(ConfigurationError, match="tokenizer version 3"):
        BM25Encoder.from_config({**old, "tokenizer": 3})
    with pytest.raises(ConfigurationError, match="unknown BM25 settings"):
        BM25Encoder.from_config({**old, "tokenizer": 2, "ngrams": 2})


def test_an_index_built_with_the_old_tokenizer_is_refused(tmp_path):
    folder = tmp_path / "ix"
    chunks = [TextChunk(id="r", text="TOTAL RM12.50 on 25/12/2018", source="r.txt", position=0)]
    with MultiModalIndex(folder, keyword_only=True, show_progress=False) as ix:
        ix.add(chunks)
    manifest_file = folder / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    assert manifest["bm25"]["tokenizer"] == TOKENIZER_VERSION
    with MultiModalIndex(folder, create=False, show_progress=False) as ix:  # the current version opens
        assert ix.bm25.config() == manifest["bm25"]
        assert FusedRetriever(ix).retrieve("RM12.50")[0].chunk.text == chunks[0].text
    with pytest.raises(ConfigurationError, match="BM25 settings"):
        MultiModalIndex(folder, create=False, show_progress=False, bm25=BM25Encoder(k1=2.0))
    del manifest["bm25"]["tokenizer"]  # as written before the key existed
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(ConfigurationError) as err:
        MultiModalIndex(folder, create=False, show_progress=False)
    assert str(manifest_file) in str(err.value) and "tokenizer version 1" in str(err.value)
    assert "re-ingest" in str(err.value)
    # refused without damage: the folder is not locked and opens again once the manifest is right
    manifest["bm25"]["tokenizer"] = TOKENIZER_VERSION
    manifest_file.write_text(json.dumps(manifest))
    with MultiModalIndex(folder, create=False, show_progress=False) as ix:
        assert ix.count() == 1


# ---------------------------------------------------------------------- rankings
RECEIPTS = {
    "ali": "KEDAI RUNCIT ALI SDN BHD\nTAX INVOICE INV-00421\nDate: 25/12/2018 Time: 14:02\n"
    "MILO 1KG 1 x 9.90\nROTI 1 x 2.60\nTOTAL RM12.50\nCASH RM20.00 CHANGE RM7.50\nAli's thanks you!",
    "mydin": "MYDIN MART\nTAX INVOICE INV-00412\nDate: 25/11/2018 Time: 10:15\nEGGS 12 x 0.50\n"
    "BREAD 2 x 4.75\nTOTAL RM 15.50\nThank you, please come again",
    "hardware": "KEN HARDWARE TRADING\nINVOICE INV-00124 Ref: 00421\nDate: 01/12/2018\n12 items\n"
    "PAINT 12 x 150.00\nBRUSH 12 x 18.17\nTOTAL RM 2018.00",
    "cafe": "CAFE 12 SEASONS\nReceipt no 2018\nDate: 26-12-2018\nLATTE 2 x 6.25\nTOTAL 12.50\nServed by Sam",
    "pharmacy": "GUARDIAN PHARMACY\nReceipt 7781\n2018-12-24\nVITAMIN C 1 x 12.50\nTOTAL RM 12.50",
    "bakery": "BAKERY 50\n12 buns for 50 sen each\nDate: 12/01/2019\nTOTAL RM 6.00",
}


def numpy_rank(enc: BM25Encoder, query: str) -> list[str]:
    """Documents matching *query*, best first, scored like Qdrant: sum of idf * doc value * query value."""
    docs = {k: enc.encode_document(v) for k, v in RECEIPTS.items()}
    df = Counter(i for sv in docs.values() for i in sv.indices.tolist())
    q = enc.encode_query(query)
    scores = {}
    for k, sv in docs.items():
        d = dict(zip(sv.indices.tolist(), sv.values.tolist(), strict=True))
        s = sum(qv * d[i] * float(idf(df[i], len(docs))) for i, qv in zip(q.indices.tolist(), q.values.tolist(), strict=True) if i in d)
        if s > 0:
            scores[k] = s
    return sorted(scores, key=lambda k: -scores[k])


@pytest.fixture(scope="module")
def edge_index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("receipts") / "ix"
    with MultiModalIndex(folder, keyword_only=True, show_progress=False) as ix:
        ix.add([TextChunk(id=k, text=v, source=f"{k}.txt", position=0) for k, v in RECEIPTS.items()])
        yield ix


def edge_rank(ix: MultiModalIndex, query: str) -> list[str]:
    by_text = {v: k for k, v in RECEIPTS.items()}
    return [by_text[h.chunk.text] for h in FusedRetriever(ix, k=len(RECEIPTS)).retrieve(query)]


@pytest.mark.parametrize("ranker", ["numpy", "edge"])
def test_date_query_ranks_the_receipt_with_that_date_first(ranker, edge_index):
    rank = (lambda q: numpy_rank(BM25Encoder(), q)) if ranker == "numpy" else (lambda q: edge_rank(edge_index, q))
    ranking = rank("25/12/2018")
    assert ranking[0] == "ali"
    # 25/11/2018 shares 25 and 2018; the hardware receipt has 12 items and a total of 2018.00
    assert {"mydin", "hardware"} <= set(ranking[1:])
    assert rank("25.12.2018") == ranking and rank("25-12-2018") == ranking  # one date, however written
    assert rank("24/12/2018")[0] == "pharmacy"  # written 2018-12-24 there: the same whole term


@pytest.mark.parametrize("ranker", ["numpy", "edge"])
def test_amount_and_invoice_queries_rank_the_right_receipt_first(ranker, edge_index):
    rank = (lambda q: numpy_rank(BM25Encoder(), q)) if ranker == "numpy" else (lambda q: edge_rank(edge_index, q))
    assert rank("RM12.50")[0] == "ali"  # whole; the pharmacy and cafe only have its parts
    assert rank("INV-00421")[0] == "ali"  # not INV-00412, nor the hardware receipt's "Ref: 00421"
    assert rank("invoice INV-00412")[0] == "mydin"
    assert rank("total RM 2018.00")[0] == "hardware"


def test_an_amount_query_prefers_the_amount_alone_and_ignores_stray_numbers():
    ranking = numpy_rank(BM25Encoder(), "12.50")
    # the amount standing alone beats the one inside RM12.50; 12 and 50 apart (bakery) never match
    assert set(ranking[:2]) == {"cafe", "pharmacy"} and ranking[2:] == ["ali"]
    # with RM, every receipt in ringgit matches through "rm", below the three holding 12.50
    ranking = numpy_rank(BM25Encoder(), "RM12.50")
    assert ranking[0] == "ali" and set(ranking[1:3]) == {"cafe", "pharmacy"}


def test_the_number_of_a_code_outweighs_its_letters():
    """OCR read the code ``CS10004241`` as ``¢S10004241`` on the right receipt; another receipt has
    ``cs`` twice in noise. The rare number decides, not the letters (a class of receipts)."""
    enc = BM25Encoder()
    corpus = {
        "right": "KEDAI MAJU\nRECEIPT ¢S10004241\nTOTAL RM 8.20\nthank you",
        "noise": "KEDAI JAYA\nRECEIPT CS10004117\nCHANGE cs RM 1.00 cs\nTOTAL RM 3.10",
        **{f"code{i}": f"SHOP {i}\nRECEIPT CS1000{4000 + i}\nTOTAL RM {i}.50" for i in range(4)},
        **{f"other{i}": f"STORE {i}\nRECEIPT {9000 + i}\nTOTAL RM {i}.00" for i in range(120)},
    }
    docs = {k: enc.encode_document(v) for k, v in corpus.items()}
    df = Counter(i for sv in docs.values() for i in sv.indices.tolist())
    q = enc.encode_query("CS10004241")
    scores = {
        k: sum(qv * dict(zip(sv.indices.tolist(), sv.values.tolist(), strict=True)).get(i, 0.0) * float(idf(df[i], len(docs)))
               for i, qv in zip(q.indices.tolist(), q.values.tolist(), strict=True))
        for k, sv in docs.items()
    }
    assert max(scores, key=scores.__getitem__) == "right"
