"""Real alignment and real OCR: the tiny trained CLIP finds shapes by their description, and BM25
over tesseract's OCR text finds an image by the words printed in it when dense search misses it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from qdrant_client import QdrantClient

from mm_rag_plugin.ids import content_hash
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.retrievers.engine import ListQuery
from mm_rag_plugin.testing import draw_shape
from mm_rag_plugin.types import ImageChunk, ReadResult, TextChunk

SIGNS = {"sign": "ZANZIBAR INVOICE", "sign2": "QUARTERLY BUDGET", "sign3": "HARBOUR TIMETABLE"}


def _font(size: int):
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        pytest.skip("no DejaVu TrueType font installed (apt-get install fonts-dejavu-core)")


def _image_chunk(path, img: Image.Image, ocr_text: str = "") -> ImageChunk:
    img.save(path)
    return ImageChunk(id=path.stem, source=str(path), image_path=str(path), content_hash=content_hash(path.read_bytes()),
                      width=img.width, height=img.height, ocr_text=ocr_text)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    pytesseract = pytest.importorskip("pytesseract")
    d = tmp_path_factory.mktemp("clip_ocr")
    chunks = [
        _image_chunk(d / f"{color}_{kind}.png", draw_shape(color, kind, size=64))
        for color, kind in [("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "square")]
    ]
    for name, words in SIGNS.items():
        sign = Image.new("RGB", (520, 120), "white")
        ImageDraw.Draw(sign).text((20, 30), words, fill="black", font=_font(40))
        ocr = pytesseract.image_to_string(sign).strip()
        assert words.split()[0] in ocr.upper()  # real OCR read the printed words
        chunks.append(_image_chunk(d / f"{name}.png", sign, ocr))
    chunks += [
        TextChunk(id="t1", text="Notes about the weather in spring.", source="notes.txt", position=0),
        TextChunk(id="t2", text="A recipe for sourdough bread.", source="notes.txt", position=1),
        TextChunk(id="t3", text="", source="notes.txt", position=2),  # empty text: skipped, no crash
    ]
    return chunks


@pytest.fixture(params=["edge", "remote"])
def index(request, tmp_path, embedder, corpus):
    """The corpus in a Qdrant Edge folder, or behind qdrant-client (a stand-in server)."""
    client = QdrantClient(location=":memory:") if request.param == "remote" else None
    where = {"client": client} if client is not None else {"path": tmp_path / "index"}
    with MultiModalIndex(embedder=embedder, show_progress=False, **where) as ix:
        assert ix.engine == {"edge": "qdrant-edge", "remote": "qdrant"}[request.param]
        report = ix.add(ReadResult(corpus))
        assert report.ok and report.added == len(corpus) - 1 and report.skipped_empty == 1
        ix.chunks_by_id = {c.id: c for c in corpus}  # for the tests' convenience
        yield ix
    if client is not None:
        client.close()


def test_text_query_finds_the_matching_image(index):
    hits = FusedRetriever(index, k=5).retrieve("a red circle")
    images = [h for h in hits if h.chunk.kind == "image"]
    assert images[0].chunk.id == "red_circle"
    assert images[0].ranks["dense_image"] == 1
    only_images = FusedRetriever(index, k=1).retrieve("a blue square", filters={"kind": "image"})
    assert [h.chunk.id for h in only_images] == ["blue_square"]


def test_image_query_finds_the_same_shape(index, tmp_path):
    probe = tmp_path / "probe.png"
    draw_shape("green", "triangle", size=64, rng=__import__("random").Random(7)).save(probe)
    hits = FusedRetriever(index, k=3).retrieve(image=str(probe), filters={"kind": "image"})
    assert hits[0].chunk.id == "green_triangle"


def test_ocr_words_find_the_image_through_bm25_when_dense_misses(index):
    # text + image query: a sign's printed words, and a picture of a red circle. BM25 over the OCR
    # text ranks the sign first and fusion keeps it first, whatever dense search does (the tiny
    # CLIP cannot read: its dense top image is another picture for at least one of the signs)
    picture = index.chunks_by_id["red_circle"].image_path
    dense_missed = []
    for name, words in SIGNS.items():
        query = words.lower()
        dense = FusedRetriever(index, k=1, weights={"bm25": 0}).retrieve(query, image=picture, filters={"kind": "image"})
        if dense[0].chunk.id != name:
            dense_missed.append(name)
        hits = FusedRetriever(index, k=5).retrieve(query, image=picture)
        assert hits[0].chunk.id == name
        assert hits[0].ranks["bm25"] == 1 and hits[0].chunk.image_path.endswith(f"{name}.png")
    assert dense_missed, "dense search alone found every sign; the BM25 rescue was not exercised"
    bm25_only = FusedRetriever(index, k=5, weights={"dense_text": 0, "dense_image": 0}).retrieve("Zanzibar")
    assert [h.chunk.id for h in bm25_only] == ["sign"]


def test_rrf_returns_the_union_correctly_ordered(index):
    r = FusedRetriever(index, k=50, dedupe=False)
    hits = r.retrieve("zanzibar red circle")
    vec = np.asarray(index.embedder.embed_query("zanzibar red circle"), np.float32)
    lists = [
        ListQuery("dense_text", 50, dense=vec, kind="text"),
        ListQuery("dense_image", 50, dense=vec, kind="image"),
        ListQuery("bm25", 50, sparse=index.bm25.encode_query("zanzibar red circle")),
    ]
    union = {pid for res in index.search_lists(lists, ()) for pid, _ in res}
    assert len(hits) == len(union) == 9  # every indexed point, each once
    for h in hits:
        assert h.score == pytest.approx(sum(1 / (60 + rank) for rank in h.ranks.values()))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
