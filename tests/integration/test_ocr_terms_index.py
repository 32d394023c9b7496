"""OCR n-gram terms in a real keyword-only index (Qdrant Edge folder, and qdrant-client local mode
as a server stand-in): a query typed right finds the receipt whose OCR misread it, first, only with
the n-grams; the settings are in the manifest, an index made before them opens and searches
without them, other settings are refused, and copies and verification carry them."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from qdrant_client import QdrantClient

from mm_rag_plugin.errors import ConfigurationError, StoreError
from mm_rag_plugin.ids import content_hash
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.retrievers.bm25 import BM25Encoder
from mm_rag_plugin.retrievers.ocr_terms import OcrTerms
from mm_rag_plugin.types import ImageChunk, ReadResult

#: What OCR read on each receipt image (as the image reader stores it: text, and each word with
#: its confidence and box). The first one joined and misread the company's words and misread the
#: receipt number.
READINGS = {
    "misread": "CAHAYAHARDWAKE SDN BND\nNo: OR1OOO3674\nTOTAL RM 12.50",
    "other": "EMAS BUDI HARDWARE SDN BHD\nNo: OR10003647\nTOTAL RM 13.50",
    "third": "MAJU TIMUR BAKERY SDN BHD\nNo: OR10003911\nTOTAL RM 8.20",
    "fourth": "SETIA MEGAN HARDWARE SDN BHD\nNo: OR10003702\nTOTAL RM 44.00",
}
QUERIES = ("CAHAYA HARDWARE", "OR10003674")


@pytest.fixture(scope="module")
def receipts(tmp_path_factory):
    d = tmp_path_factory.mktemp("receipts")
    chunks = []
    for n, (name, text) in enumerate(READINGS.items()):
        path = d / f"{name}.png"
        Image.new("RGB", (64 + n, 48), "white").save(path)
        words = [[w, 40.0 if w in ("CAHAYAHARDWAKE", "BND", "OR1OOO3674") else 93.0, 0, 0, 10, 10] for w in text.split()]
        chunks.append(ImageChunk(id=name, source=str(path), image_path=str(path), content_hash=content_hash(path.read_bytes()),
                                 width=64 + n, height=48, ocr_text=text, ocr_confidence=80.0, metadata={"ocr_words": words}))
    return chunks


@pytest.fixture(params=["edge", "remote"])
def where(request, tmp_path):
    if request.param == "edge":
        yield {"path": tmp_path / "index"}
    else:
        client = QdrantClient(location=":memory:")
        yield {"client": client}
        client.close()


def _first(ix: MultiModalIndex, query: str, **options) -> str:
    hits = FusedRetriever(ix, k=1, **options).retrieve(query)
    return hits[0].chunk.id if hits else ""


def test_a_misread_receipt_ranks_first_only_with_ocr_terms(where, receipts):
    with MultiModalIndex(keyword_only=True, show_progress=False, **where) as ix:
        assert ix.add(ReadResult(receipts)).added == len(receipts)
        assert ix.manifest["bm25"]["ocr"] == OcrTerms().config()
        for query in QUERIES:
            assert _first(ix, query) == "misread", query
            assert _first(ix, query, weights={"ocr": 0}) != "misread", query  # the words alone miss it
        assert ix.verify() == []  # stored vectors are what the payloads encode to, n-grams included


def test_an_index_without_ocr_terms_misses_it(tmp_path, receipts):
    with MultiModalIndex(tmp_path / "plain", keyword_only=True, bm25=BM25Encoder(ocr=None), show_progress=False) as ix:
        ix.add(ReadResult(receipts))
        assert ix.manifest["bm25"]["ocr"] is None
        assert all(_first(ix, q) != "misread" for q in QUERIES)
        assert ix.verify() == []


def test_an_index_made_before_ocr_terms_opens_and_searches_without_them(tmp_path, receipts):
    folder = tmp_path / "old"
    with MultiModalIndex(folder, keyword_only=True, bm25=BM25Encoder(ocr=None), show_progress=False) as ix:
        ix.add(ReadResult(receipts))
    manifest_file = folder / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["bm25"]["ocr"]  # as written before the setting existed
    manifest_file.write_text(json.dumps(manifest))
    with MultiModalIndex(folder, create=False, show_progress=False) as ix:
        assert ix.bm25.ocr is None and "ocr" not in ix.manifest["bm25"]
        assert _first(ix, "EMAS BUDI HARDWARE") == "other"
        assert _first(ix, QUERIES[0]) != "misread"  # no n-grams, in the documents or the query
        assert ix.verify() == []
    # an index with other OCR settings is refused, not searched with n-grams it never held
    with pytest.raises(ConfigurationError, match="BM25 settings"):
        MultiModalIndex(folder, create=False, show_progress=False, bm25=BM25Encoder())
    new = tmp_path / "new"
    with MultiModalIndex(new, keyword_only=True, show_progress=False) as ix:
        ix.add(ReadResult(receipts[:1]))
    with pytest.raises(ConfigurationError, match="BM25 settings"):
        MultiModalIndex(new, create=False, show_progress=False, bm25=BM25Encoder(ocr=OcrTerms(n=4)))
    damaged = json.loads((new / "manifest.json").read_text())
    damaged["bm25"]["ocr"]["n"] = 42
    (new / "manifest.json").write_text(json.dumps(damaged))
    with pytest.raises(StoreError, match=r"manifest\.json: damaged index: bm25\.ocr n must be"):
        MultiModalIndex(new, create=False, show_progress=False)


def test_a_copy_carries_the_ocr_terms(tmp_path, where, receipts):
    with MultiModalIndex(tmp_path / "src", keyword_only=True, show_progress=False) as ix:
        ix.add(ReadResult(receipts))
        with ix.copy_to(tmp_path / "copy" if "path" in where else None, **({} if "path" in where else where), show_progress=False) as copy:
            assert copy.manifest["bm25"] == ix.manifest["bm25"] and copy.bm25.ocr == OcrTerms()
            assert _first(copy, QUERIES[0]) == "misread"
            assert copy.verify() == []
