"""MultiModalIndex on both engines (Qdrant Edge in a folder, and qdrant-client against a stand-in
server, ``client=QdrantClient(location=":memory:")``): same results, persistence, idempotency,
source replacement, filters and edge cases. Vectors are precomputed random unit vectors (the
engines are under test here, not the model)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from qdrant_client import QdrantClient

from mm_rag_plugin.errors import ConfigurationError, InvalidInputError
from mm_rag_plugin.ids import content_hash
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.retrievers._filters import parse_filters
from mm_rag_plugin.retrievers.engine import ListQuery
from mm_rag_plugin.types import ImageChunk, TextChunk

DIM = 16
WORDS = [f"w{i}" for i in range(300)]


class VectorTable:
    """An Embedder answering from a fixed table (queries hash to random unit vectors)."""

    dim = DIM

    def __init__(self) -> None:
        self.table: dict[str, np.ndarray] = {}

    def _vec(self, key: str) -> np.ndarray:
        if key not in self.table:
            v = np.random.default_rng(int(content_hash(key)[:8], 16)).normal(size=DIM).astype(np.float32)
            self.table[key] = v / np.linalg.norm(v)
        return self.table[key]

    def embed_texts(self, texts):
        return np.stack([self._vec("t:" + t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    def embed_images(self, images, *, on_error="raise"):
        vecs = np.stack([self._vec("i:" + str(p)) for p in images]) if images else np.zeros((0, DIM), np.float32)
        return SimpleNamespace(vectors=vecs, errors=()) if on_error == "collect" else vecs

    def embed_query(self, text=None, *, image=None):
        parts = ([self._vec("t:" + text)] if text else []) + ([self._vec("i:" + str(image))] if image is not None else [])
        v = np.sum(parts, axis=0)
        return (v / np.linalg.norm(v)).astype(np.float32)


def corpus(n: int, seed: int = 0, *, unique_lengths: bool = False):
    """Random word chunks; with ``unique_lengths`` no two BM25 scores can tie."""
    rng = np.random.default_rng(seed)
    chunks = []
    for i in range(n):
        size = 3 + i if unique_lengths else int(rng.integers(3, 40))
        words = " ".join(rng.choice(WORDS, size=size))
        src = f"doc{i % 7}.pdf"
        if i % 4 == 0:
            chunks.append(ImageChunk(id=f"img{i}", source=src, image_path=f"/imgs/{i}.png", content_hash=f"h{i}",
                                     ocr_text=words if i % 8 else "", page=i % 5 + 1))
        else:
            chunks.append(TextChunk(id=f"txt{i}", text=words, source=src, page=i % 5 + 1, position=i))
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    return chunks, vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


@pytest.fixture(params=["edge", "remote"])
def store(request, tmp_path):
    """``store(name, **kw)`` opens index *name*: an Edge folder, or a collection behind one
    qdrant-client per name (reopening *name* reaches the same data)."""
    clients: dict[str, QdrantClient] = {}

    def open_(name: str = "ix", **kw):
        kw = {"dim": DIM, "show_progress": False, **kw}
        if request.param == "edge":
            return MultiModalIndex(tmp_path / name, **kw)
        if name not in clients:
            clients[name] = QdrantClient(location=":memory:")
        return MultiModalIndex(client=clients[name], **kw)

    open_.kind = request.param
    yield open_
    for c in clients.values():
        c.close()


def test_edge_and_server_rank_identically(tmp_path):
    chunks, vecs = corpus(600)
    q = VectorTable()
    client = QdrantClient(location=":memory:")
    with MultiModalIndex(tmp_path / "edge", embedder=q, show_progress=False) as a, \
            MultiModalIndex(client=client, embedder=q, show_progress=False) as b:
        assert (a.engine, b.engine) == ("qdrant-edge", "qdrant")
        assert a.add_embedded(chunks, vecs) == b.add_embedded(chunks, vecs) == 600
        assert len(a) == len(b) == 600 and a.count("image") == b.count("image") == 150
        rng = np.random.default_rng(1)
        for trial in range(10):
            text = " ".join(rng.choice(WORDS, size=3))
            qv = q.embed_texts([text])[0]
            lists = [ListQuery("dense_text", 30, dense=qv, kind="text"), ListQuery("dense_image", 30, dense=qv, kind="image"),
                     ListQuery("bm25", 30, sparse=a.bm25.encode_query(text))]
            filt = parse_filters(None if trial % 2 else {"page": [1, 2, 3]})
            ra, rb = a.search_lists(lists, filt), b.search_lists(lists, filt)
            for la, lb in zip(ra, rb, strict=True):
                assert la, "empty list"
                assert [i for i, _ in la] == [i for i, _ in lb]
                assert np.allclose([s for _, s in la], [s for _, s in lb], rtol=1e-4)
            ha = FusedRetriever(a, k=10).retrieve(text)
            hb = FusedRetriever(b, k=10).retrieve(text)
            assert [h.id for h in ha] == [h.id for h in hb]
            assert [h.ranks for h in ha] == [h.ranks for h in hb]
    client.close()


def test_server_and_client_fusion_agree(tmp_path):
    # Qdrant ranks equal scores in its own order when fusing; without ties the two paths must agree
    chunks, vecs = corpus(400, seed=3, unique_lengths=True)
    q = VectorTable()
    with MultiModalIndex(tmp_path, embedder=q, show_progress=False) as ix:
        ix.add_embedded(chunks, vecs)
        rng = np.random.default_rng(2)
        for _ in range(8):
            text = " ".join(rng.choice(WORDS, size=2))
            client = FusedRetriever(ix, k=15, dedupe=False).retrieve(text)
            server = FusedRetriever(ix, k=15, dedupe=False, fusion="server", explain=True).retrieve(text)
            assert client
            assert [h.id for h in client] == [h.id for h in server]
            assert [h.score for h in client] == pytest.approx([h.score for h in server])
            assert [h.ranks for h in client] == [h.ranks for h in server]


def test_ingest_is_idempotent_replaces_changed_sources_and_persists(store):
    emb = VectorTable()
    a = [TextChunk(id="a1", text="alpha one", source="a.txt"), TextChunk(id="a2", text="alpha two", source="a.txt")]
    b = [ImageChunk(id="b1", source="b.png", image_path="/b.png", content_hash="hb", ocr_text="beta")]
    with store(embedder=emb) as ix:
        r = ix.add([*a, *b])
        assert (r.added, r.unchanged, r.deleted) == (3, 0, 0)
        r = ix.add([*a, *b])
        assert (r.added, r.unchanged, r.deleted) == (0, 3, 0)
        assert len(ix) == 3
        changed = [TextChunk(id="a1", text="alpha one revised", source="a.txt")]
        r = ix.add(changed)
        assert (r.added, r.deleted) == (1, 2)
        assert ix.count("text") == 1 and ix.count("image") == 1
    with store(embedder=emb) as ix:  # reopened
        assert ix.manifest["points"] == len(ix) == 2
        hits = FusedRetriever(ix).retrieve("revised")
        assert hits[0].chunk.text == "alpha one revised" and hits[0].ranks.get("bm25") == 1
        assert ix.delete_source("b.png") == 1
        assert ix.count("image") == 0
    with store() as ix:
        assert len(ix) == ix.manifest["points"] == 1


def test_empty_index_image_only_index_and_edge_queries(store):
    emb = VectorTable()
    with store(embedder=emb) as ix:
        r = FusedRetriever(ix, k=5)
        assert r.retrieve("anything") == []
        assert r.retrieve("") == [] and r.retrieve(None) == []
        rep = ix.add([TextChunk(id="e", text="   ", source="e.txt"),
                      ImageChunk(id="i", source="i.png", image_path="/i.png", content_hash="x"),
                      ImageChunk(id="j", source="j.png", image_path="/j.png", content_hash="y", ocr_text="giraffe")])
        assert rep.skipped_empty == 1 and rep.added == 2
        hits = r.retrieve("giraffe")
        assert next(h.chunk.id for h in hits) == "j" and hits[0].ranks.get("bm25") == 1
        assert {h.chunk.id for h in hits} == {"i", "j"}  # dense finds the image without text too
        huge = "giraffe " + " ".join(f"filler{i}" for i in range(20000))
        assert r.retrieve(huge)[0].chunk.id in {"i", "j"}
        assert r.retrieve("giraffe", image="/j.png")[0].chunk.id == "j"
        with pytest.raises(InvalidInputError):
            r.retrieve(b"not a str")  # type: ignore[arg-type]


def test_filters_quotas_threshold_and_dedupe(store):
    emb = VectorTable()
    chunks, vecs = corpus(200, seed=5)
    with store(embedder=emb) as ix:
        ix.add_embedded(chunks, vecs)
        r = FusedRetriever(ix, k=8)
        text = "w1 w2 w3 w4 w5"
        hits = r.retrieve(text, filters={"source": "doc3.pdf", "page": {"gte": 2, "lte": 3}})
        assert hits and all(h.chunk.source == "doc3.pdf" and 2 <= h.chunk.page <= 3 for h in hits)
        images = r.retrieve(text, filters={"kind": "image"})
        assert images and all(h.chunk.kind == "image" for h in images)
        assert r.retrieve(text, filters={"page": []}) == []
        with pytest.raises(InvalidInputError):
            r.retrieve(text, filters={"page": {"near": 3}})
        plain = FusedRetriever(ix, k=4, weights={"dense_image": 0}).retrieve(text)
        quota = FusedRetriever(ix, k=4, weights={"dense_image": 0}, quotas={"image": 3}).retrieve(text)
        n_img = sum(h.chunk.kind == "image" for h in quota)
        assert n_img >= 3 and len(quota) == 4
        assert [h.id for h in quota if h.chunk.kind == "text"] == [h.id for h in plain if h.chunk.kind == "text"][: 4 - n_img]
        top = r.retrieve(text)
        cut = FusedRetriever(ix, k=8, score_threshold=top[2].score).retrieve(text)
        assert [h.id for h in cut] == [h.id for h in top if h.score >= top[2].score]
    # near-identical texts (different content, so two points) in two sources collapse to the better one
    with store("dup", embedder=emb) as ix:
        ix.add([TextChunk(id="d1", text="Zebra crossing", source="1.txt"), TextChunk(id="d2", text="zebra  crossing", source="2.txt")])
        assert len(ix) == 2
        assert len(FusedRetriever(ix).retrieve("zebra")) == 1
        assert len(FusedRetriever(ix, dedupe=False).retrieve("zebra")) == 2


def test_reopen_checks_dimension_and_lock(store):
    with store() as first:
        if store.kind == "edge":  # a second open in this process shares the open shard (no longer refused)
            with store() as second:
                assert second.dim == first.dim
            assert len(first) == 0  # closing the second left the first open
    with pytest.raises(ConfigurationError, match="16-d"):
        store(dim=8)
    with pytest.raises(ConfigurationError, match="dim="):
        store("new", dim=None)
    with store(dim=None) as ix:  # the recorded size is used
        assert ix.dim == DIM


def test_engine_is_chosen_by_the_arguments(tmp_path) -> None:
    with MultiModalIndex(tmp_path / "a", dim=DIM, show_progress=False) as ix:
        assert ix.engine == "qdrant-edge" and ix.where == str(tmp_path / "a")
    assert (tmp_path / "a" / "manifest.json").is_file() and (tmp_path / "a" / "shard").is_dir()
    with MultiModalIndex(tmp_path / "a", show_progress=False) as ix:
        assert ix.engine == "qdrant-edge" and ix.dim == DIM
    with MultiModalIndex(dim=DIM, show_progress=False) as ix:  # no folder: Edge in a temporary folder
        assert ix.engine == "qdrant-edge" and ix.where == ":memory:"
        scratch = ix._engine.folder  # looks inside on purpose
        assert scratch.is_dir()
    assert not scratch.exists()  # removed on close
    client = QdrantClient(location=":memory:")
    with MultiModalIndex(client=client, dim=DIM, show_progress=False) as ix:
        assert ix.engine == "qdrant" and ix.remote
    client.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # a server index writes no folder


FILTERS = [
    {"source": "doc3.pdf"},
    {"page": {"gte": 2, "lt": 4}},
    {"page": {"ne": 3}},
    {"page": {"nin": [1, 2]}},
    {"page": {"in": [1, 5]}, "kind": "image"},
    {"$or": [{"kind": "image"}, {"page": 1}]},
    {"$not": {"source": ["doc1.pdf", "doc2.pdf"]}},
    {"$and": [{"kind": "text"}, {"$or": [{"page": 2}, {"source": "doc0.pdf"}]}]},
    {"metadata.lang": "en"},
    {"metadata.lang": {"nin": ["en"]}},
    {"page": {"$in": [1, 5]}, "kind": {"$eq": "image"}},
    {"page": {"$gte": 2, "$ne": 3}},
    {"metadata.lang": {"$nin": ["en"]}, "page": {"$lt": 4}},
]


@pytest.mark.parametrize("flt", FILTERS, ids=[str(f) for f in FILTERS])
def test_engine_filters_agree_with_the_python_evaluation(store, flt) -> None:
    from tests._filter_oracle import match

    chunks, vecs = corpus(80, seed=9)
    chunks = [
        dataclasses.replace(c, metadata={"lang": "en"} if i % 3 == 0 else {"lang": "de"} if i % 3 == 1 else {})
        for i, c in enumerate(chunks)
    ]
    with store() as ix:
        ix.add_embedded(chunks, vecs)
        conditions = parse_filters(flt)
        expected = {p.id for batch in ix.scan() for p in batch if match(p.payload, conditions)}
        assert expected, "the filter should match something"
        assert set(ix.ids_where(conditions)) == expected
        assert ix.sources() == sorted({c.source for c in chunks})


def test_misspelled_filter_fields_and_kinds_are_errors(store) -> None:
    chunks, vecs = corpus(10)
    with store(embedder=VectorTable()) as ix:
        ix.add_embedded(chunks, vecs)
        r = FusedRetriever(ix, k=3)
        with pytest.raises(InvalidInputError, match="did you mean 'kind'"):
            r.retrieve("w1", filters={"knd": "image"})
        with pytest.raises(InvalidInputError, match="'text' or 'image'"):
            r.retrieve("w1", filters={"kind": "video"})


class _CountingEngine:
    """Records every method called on an index's engine (looks inside the index on purpose)."""

    def __init__(self, engine):
        self._inner, self.calls = engine, []

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*a, **kw):
            self.calls.append(name)
            return attr(*a, **kw)

        return counted


@pytest.mark.parametrize("engine", ["edge", "qdrant-client"])
def test_one_engine_call_per_query_unless_asked_to_explain(tmp_path, engine):
    chunks, vecs = corpus(200, seed=5, unique_lengths=True)
    where = {"client": QdrantClient(location=":memory:")} if engine == "qdrant-client" else {"path": tmp_path}
    with MultiModalIndex(**where, embedder=VectorTable(), show_progress=False) as ix:
        ix.add_embedded(chunks, vecs)
        counter = ix._engine = _CountingEngine(ix._engine)
        text = " ".join(WORDS[:2])
        # defaults: dedupe and near-duplicate removal on (payloads and vectors come with the hits)
        client = FusedRetriever(ix, k=5).retrieve(text)
        assert client and counter.calls == ["search"]
        assert all(h.ranks for h in client)
        counter.calls.clear()
        hits = FusedRetriever(ix, k=5, fusion="server").retrieve(text)
        assert hits and counter.calls == ["fused"]
        assert all(h.ranks == {} for h in hits)
        assert [h.id for h in hits] == [h.id for h in client]  # equal weights: the same ranking
        counter.calls.clear()
        explained = FusedRetriever(ix, k=5, fusion="server", explain=True).retrieve(text)
        assert counter.calls == ["fused", "search"]
        assert [h.id for h in explained] == [h.id for h in hits] and all(h.ranks for h in explained)
        counter.calls.clear()
        FusedRetriever(ix, k=5, near_duplicate_threshold=None, dedupe=False).retrieve(text)
        assert counter.calls == ["search"]
        ix._engine = counter._inner
        # below the engine: a server gets one request per query, payloads and vectors in it; Qdrant
        # Edge (in this process) answers the lists with ids, then reads the payloads and vectors of
        # the hits the query gets to (one read for both), never the lists' every hit
        if engine == "qdrant-client":
            sent = _count_calls(where["client"], ("query_points", "query_batch_points", "retrieve", "scroll"))
            for fusion in ("client", "server"):
                sent.clear()
                assert FusedRetriever(ix, k=5, fusion=fusion).retrieve(text)
                assert len(sent) == 1 and sent[0] in ("query_points", "query_batch_points"), (fusion, sent)
        else:
            edge = ix._engine._inner
            shard = edge.shard
            edge.shard = proxy = _CountingEngine(shard)  # the native shard's methods cannot be replaced
            try:
                for fusion in ("client", "server"):
                    proxy.calls.clear()
                    assert FusedRetriever(ix, k=5, fusion=fusion).retrieve(text)
                    sent = [c for c in proxy.calls if c in ("query", "query_batch", "retrieve")]
                    # the head's payloads and vectors in one read
                    assert sent[0] in ("query", "query_batch") and sent[1:] == ["retrieve"], (fusion, sent)
            finally:
                edge.shard = shard


def _count_calls(obj, names):
    """Record calls of *obj*'s methods *names* (by name, in order), for the test's lifetime."""
    sent = []
    for name in names:
        method = getattr(obj, name)

        def counted(*a, _method=method, _name=name, **kw):
            sent.append(_name)
            return _method(*a, **kw)

        setattr(obj, name, counted)
    return sent


def test_near_duplicates_filling_the_top_still_leave_k_distinct_hits(store):
    """Forty near-copies of one picture (distinct bytes, cosine > 0.99) rank first; the retriever
    reads on past them and still returns k hits, one of the copies among them, and reads payloads
    and vectors only about as deep as it needs."""
    emb = VectorTable()
    q = emb.embed_query("w1")
    rng = np.random.default_rng(9)
    copies = [q + rng.normal(size=DIM).astype(np.float32) * 0.01 for _ in range(40)]
    others = rng.normal(size=(60, DIM)).astype(np.float32)
    vecs = np.stack(copies + list(others))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [ImageChunk(id=f"copy{i}", source="scans.pdf", image_path=f"/imgs/c{i}.png", content_hash=f"c{i}") for i in range(40)]
    chunks += [ImageChunk(id=f"other{i}", source="photos.pdf", image_path=f"/imgs/o{i}.png", content_hash=f"o{i}") for i in range(60)]
    with store(embedder=emb) as ix:
        ix.add_embedded(chunks, vecs)
        read: dict[str, list[str]] = {"payloads": [], "vectors": []}
        for name in read:
            real = getattr(ix, name)

            def counted(ids, _real=real, _name=name):
                read[_name].extend(ids)
                return _real(ids)

            setattr(ix, name, counted)
        dense_only = {"bm25": 0, "dense_text": 0}
        hits = FusedRetriever(ix, k=5, weights=dense_only).retrieve("w1")
        assert len(hits) == 5
        assert [h.id.startswith("copy") for h in hits] == [True, False, False, False, False]
        assert len(read["payloads"]) <= 60 and len(read["vectors"]) <= 60  # not all 100
        every = FusedRetriever(ix, k=5, weights=dense_only, dedupe=False).retrieve("w1")
        assert all(h.id.startswith("copy") for h in every)
        # no duplicates in the way: about k payloads and vectors are read, not the whole candidate list
        for ids in read.values():
            ids.clear()
        hits = FusedRetriever(ix, k=5).retrieve("w7 w8")
        assert len(hits) == 5 and len(read["payloads"]) <= 8 and len(read["vectors"]) <= 8


def test_unknown_options_are_errors_not_dropped(tmp_path):
    """Extra keyword arguments go to qdrant_client.QdrantClient with url=; anywhere else (a folder,
    memory, client=) a misspelt option such as quantisation= is an error naming it, and nothing is
    created."""
    for where in ({"path": tmp_path / "ix"}, {"path": None}, {"client": QdrantClient(location=":memory:")}):
        with pytest.raises(ConfigurationError, match="quantisation"):
            MultiModalIndex(**where, dim=DIM, quantisation="int8")
    assert not (tmp_path / "ix").exists()
