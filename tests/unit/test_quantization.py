"""Quantized dense vectors in Qdrant Edge (``quantization="int8" | "binary"``): Qdrant's own scalar
and binary quantization, kept in RAM, with rescoring by the float originals.

Edge quantizes a segment when ``optimize()`` indexes it, which happens once a segment holds
``indexing_threshold_kb`` of vectors; the tests lower that threshold (64 KB) so that 2,000 vectors
are indexed and quantized as a large corpus would be.

Data: 2,000 unit vectors in 128-d, in 200 clusters of 10 (a random centre plus noise), so a query
has real near neighbours. Queries: 100 perturbed copies of stored vectors, and 100 pure random
ones (whose "top 10" is the upper tail of the noise, the hardest case). The reference is the same
data in an index without quantization (exact: unindexed segments are searched exhaustively, and
HNSW at this size finds the exact top 10).

Measured when these tests were written (qdrant-edge-py 0.9): int8 returned exactly the exact top
10 for 100 % of both query kinds; binary (default oversampling 10) found 99.9 % of the top 10 of
perturbed copies and about 72 % of the top 10 of random queries (24 % with oversampling 1, 94 %
with 30). Thresholds leave room for rare ties only.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from qdrant_client import QdrantClient

from mm_rag_plugin.errors import ConfigurationError
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.retrievers._edge import EdgeEngine
from mm_rag_plugin.retrievers._filters import parse_filters
from mm_rag_plugin.retrievers.engine import ListQuery
from mm_rag_plugin.types import ImageChunk, TextChunk
from tests._filter_oracle import match

DIM = 128
N = 2000
CLUSTERS = 200


@pytest.fixture(scope="module", autouse=True)
def small_indexing_threshold():
    """Index (HNSW + quantized copy) every segment over 64 KB of vectors."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(EdgeEngine.__init__.__kwdefaults__, "indexing_threshold_kb", 64)
        yield


def make_vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vecs = centres[np.arange(n) % CLUSTERS] + 0.8 * rng.normal(size=(n, DIM)) / np.sqrt(DIM)
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


def make_chunks(n: int) -> list:
    """Members of one cluster (i, i+200, ...) span the 10 sources; 2 of every 10 are images."""
    out = []
    for i in range(n):
        src, words, page = f"doc{(i // CLUSTERS) % 10}.pdf", f"item{i} word{i % 50} common", i % 20 + 1
        if (i // CLUSTERS) % 5 == 4:
            out.append(ImageChunk(id=f"img{i}", source=src, image_path=f"/imgs/{i}.png", content_hash=f"h{i}",
                                  ocr_text=words, page=page))
        else:
            out.append(TextChunk(id=f"txt{i}", text=words, source=src, page=page, position=i))
    return out


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class Lookup:
    """Embedder answering queries from a table."""

    dim = DIM

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def embed_texts(self, texts):
        return np.stack([self.table[t] for t in texts])

    def embed_images(self, images, **kw):
        raise AssertionError("not used")

    def embed_query(self, text=None, *, image=None):
        return self.table[text]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    vecs = make_vectors(N)
    copied = rng.integers(0, N, 100)
    perturbed = unit(vecs[copied] + 0.5 * rng.normal(size=(100, DIM)) / np.sqrt(DIM))
    random = unit(rng.normal(size=(100, DIM)))
    return make_chunks(N), vecs, perturbed, random, copied


def open_index(path, quantization=None, **kw):
    return MultiModalIndex(path, dim=DIM, show_progress=False, quantization=quantization, **kw)


def dense_top(ix: MultiModalIndex, queries: np.ndarray, limit: int = 10, **kw) -> list[list[tuple[str, float]]]:
    return [ix.search_lists([ListQuery("dense", limit, dense=q, **kw)], ())[0] for q in queries]


@pytest.fixture(scope="module")
def built(tmp_path_factory, data):
    """One folder per setting (None, "int8", "binary"), the exact top 10s, and the stored originals."""
    chunks, vecs, perturbed, random, _ = data
    root = tmp_path_factory.mktemp("quant")
    folders = {}
    for q in (None, "int8", "binary"):
        folders[q] = root / str(q)
        with open_index(folders[q], q) as ix:
            assert ix.add_embedded(chunks, vecs) == N
            ix.optimize()
            if q is None:
                pids = [ix.point_id(c)[0] for c in chunks]
                exact = {"perturbed": dense_top(ix, perturbed), "random": dense_top(ix, random)}
                originals = ix.vectors(pids)
    return folders, pids, exact, originals


def ids(hits: list[tuple[str, float]]) -> list[str]:
    return [i for i, _ in hits]


def recall(got, exact) -> float:
    return float(np.mean([len(set(ids(g)) & set(ids(e))) / len(e) for g, e in zip(got, exact, strict=True)]))


#: Cosine above which a neighbour is real here: cluster mates of a query score 0.45-0.9, while the
#: best of 2,000 unrelated vectors scores about sqrt(2 ln 2000 / 128) = 0.34.
REAL = 0.4


def finds_real(got: list[tuple[str, float]], exact: list[tuple[str, float]]) -> bool:
    """Every real neighbour of the exact list is in *got*."""
    return {i for i, s in exact if s >= REAL} <= set(ids(got))


def assert_exact_scores(results, queries, originals) -> None:
    for res, q in zip(results, queries, strict=True):
        assert res, "no results"
        got = np.array([s for _, s in res])
        want = np.array([float(originals[i] @ q) for i, _ in res])
        assert np.allclose(got, want, rtol=0, atol=1e-5)
        assert list(got) == sorted(got, reverse=True)


# ---------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"quantization": "int4"}, ["'int8'", "'binary'"]),
        ({"quantization": "INT8"}, ["'int8'", "'binary'"]),
        ({"quantization": "int8", "oversampling": 0.5}, [">= 1"]),
        ({"quantization": "binary", "oversampling": "2"}, [">= 1"]),
        ({"quantization": "binary", "oversampling": float("inf")}, [">= 1"]),
        ({"oversampling": 3.0}, ["quantization="]),
    ],
)
@pytest.mark.parametrize("where", ["folder", "client"])
def test_invalid_settings_raise(tmp_path, kw, words, where):
    client = QdrantClient(location=":memory:") if where == "client" else None
    with pytest.raises(ConfigurationError) as err:
        if client is None:
            MultiModalIndex(tmp_path / "ix", dim=8, show_progress=False, **kw)
        else:
            MultiModalIndex(client=client, dim=8, show_progress=False, **kw)
    assert all(w in str(err.value) for w in words), str(err.value)
    # rejected before anything is created
    assert not (tmp_path / "ix").exists()
    if client is not None:
        assert client.get_collections().collections == []
        client.close()


def test_quantization_lives_in_the_shard_and_is_kept_on_reopen(built, data):
    folders = built[0]
    _, _, _, random, _ = data
    assert json.loads((folders[None] / "shard" / "edge_config.json").read_text()).get("quantization_config") is None
    for q, key in (("int8", "scalar"), ("binary", "binary")):
        config = json.loads((folders[q] / "shard" / "edge_config.json").read_text())["quantization_config"]
        assert config[key]["always_ram"] is True
        quantized = [p for p in (folders[q] / "shard").rglob("*") if "quantized" in p.name]
        assert quantized, f"{q}: optimize() built no quantized vectors"
    assert not [p for p in (folders[None] / "shard").rglob("*") if "quantized" in p.name]
    # reopened without quantization=: the shard's own kind, with its default oversampling
    with open_index(folders["binary"], "binary") as ix:
        explicit = dense_top(ix, random[:30])
    with open_index(folders["binary"]) as ix:
        assert (ix.quantization, ix.oversampling) == ("binary", 10.0)
        assert dense_top(ix, random[:30]) == explicit
    with open_index(folders["int8"]) as ix:
        assert (ix.quantization, ix.oversampling) == ("int8", 3.0)


# ---------------------------------------------------------------------- quality
def test_int8_returns_the_exact_top10_with_exact_scores(built, data):
    folders, _, exact, originals = built
    _, _, perturbed, random, _ = data
    with open_index(folders["int8"], "int8") as ix:
        assert ix.quantization == "int8" and ix.oversampling == 3.0
        for name, queries in (("perturbed", perturbed), ("random", random)):
            got = dense_top(ix, queries)
            same = np.mean([ids(g) == ids(e) for g, e in zip(got, exact[name], strict=True)])
            assert same >= 0.97, (name, same)  # measured 1.00
            assert_exact_scores(got, queries, originals)


def test_binary_recall_and_exact_scores(built, data):
    folders, _, exact, originals = built
    _, _, perturbed, random, _ = data
    with open_index(folders["binary"], "binary") as ix:
        assert ix.oversampling == 10.0
        got = dense_top(ix, perturbed)
        assert recall(got, exact["perturbed"]) >= 0.98  # measured 0.999: the whole cluster is found
        assert np.mean([finds_real(g, e) for g, e in zip(got, exact["perturbed"], strict=True)]) >= 0.97
        assert_exact_scores(got, perturbed, originals)
        # random queries: the neighbours are noise that sign bits barely rank; measured 0.72,
        # while 100 candidates drawn blindly would give about 100/2000 = 0.05
        got = dense_top(ix, random)
        assert recall(got, exact["random"]) >= 0.5
        assert_exact_scores(got, random, originals)


def test_more_oversampling_finds_more(built, data):
    folders, _, exact, _ = built
    _, _, _, random, _ = data
    recalls = []
    for os_ in (1.0, 30.0):
        with open_index(folders["binary"], "binary", oversampling=os_) as ix:
            recalls.append(recall(dense_top(ix, random), exact["random"]))
    assert recalls[1] > recalls[0] + 0.3, recalls  # measured 0.24 -> 0.94


def test_vectors_are_the_float_originals(built, data):
    folders, pids, _, _ = built
    _, vecs, _, _, _ = data
    rows = (0, 17, 1234, N - 1)
    some = [pids[i] for i in rows] + ["00000000-0000-0000-0000-000000000000"]
    for q in ("int8", "binary"):
        with open_index(folders[q], q) as ix:
            got = ix.vectors(some)
        assert sorted(got) == sorted(some[:4])
        for i in rows:
            v = got[pids[i]]
            assert v.dtype == np.float32
            assert np.allclose(v, vecs[i], rtol=0, atol=1e-6)


# ---------------------------------------------------------------------- writes, deletes, reopen
@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_delete_and_readd_keep_search_exact(tmp_path, data, quantization):
    chunks, vecs, _, _, _ = data
    n = 1000
    folder = tmp_path / "ix"
    with open_index(folder, quantization) as ix:
        for s in range(0, n, 500):  # two batches, optimized after each (as add() does)
            ix.add_embedded(chunks[s : s + 500], vecs[s : s + 500])
            ix.optimize()
        assert len(ix) == n
        pids = [ix.point_id(c)[0] for c in chunks[:n]]
        gone = set(pids[::2]) | set(pids[1:700:4])
        ix.delete(sorted(gone))
        assert len(ix) == n - len(gone)
        back = list(range(0, 40, 2))  # re-added after the delete
        assert ix.add_embedded([chunks[i] for i in back], vecs[back]) == len(back)
        ix.optimize()
        gone -= {pids[i] for i in back}
        alive = [i for i in range(n) if pids[i] not in gone]
        assert len(ix) == len(alive)
        stored = ix.vectors([pids[i] for i in alive])
        assert len(stored) == len(alive)
        assert all(np.allclose(stored[pids[i]], vecs[i], atol=1e-6) for i in alive)
        mat = np.stack([stored[pids[i]] for i in alive])
        qs = unit(vecs[alive[:40]] + 0.5 * np.random.default_rng(3).normal(size=(40, DIM)) / np.sqrt(DIM))
        got = dense_top(ix, qs)
        same = 0
        for q, res in zip(qs, got, strict=True):
            s = mat @ q
            want = [(pids[alive[j]], float(s[j])) for j in np.argsort(-s)[:10]]
            assert not set(ids(res)) & gone
            assert finds_real(res, want)  # the copied point and its live cluster mates
            same += ids(res) == ids(want)
        assert_exact_scores(got, qs, stored)
        if quantization == "int8":
            assert same >= 38, same
    with open_index(folder) as ix:  # and the folder agrees
        assert len(ix) == len(alive)
        again = dense_top(ix, qs)
    assert [ids(r) for r in again] == [ids(r) for r in got]


# ---------------------------------------------------------------------- filters, min_score
@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_filters_and_kind_lists(built, data, quantization):
    folders = built[0]
    _, _, perturbed, _, _ = data
    qs = perturbed[:20]
    cases = [
        ("text", None),
        ("image", None),
        (None, {"source": "doc3.pdf"}),
        ("text", {"source": ["doc1.pdf", "doc6.pdf"]}),
        ("image", {"page": {"lte": 10}}),
    ]

    def run(ix):
        out = []
        for kind, flt in cases:
            for q in qs:
                lists = [ListQuery("a", 10, dense=q, kind=kind), ListQuery("b", 5, dense=q, kind=kind)]
                out.append((kind, parse_filters(flt), ix.search_lists(lists, parse_filters(flt))))
        return out

    with open_index(folders[None]) as ix:
        exact = run(ix)
    with open_index(folders[quantization], quantization) as ix:
        got = run(ix)
        payloads = ix.payloads([pid for _, _, r in got for lst in r for pid, _ in lst])
    same = 0
    for (kind, conds, e), (_, _, g) in zip(exact, got, strict=True):
        for lst in g:
            for pid, _ in lst:
                assert kind is None or payloads[pid]["kind"] == kind
                assert match(payloads[pid], conds)
        assert [len(x) for x in g] == [len(x) for x in e] == [10, 5]
        if quantization == "int8":
            same += ids(g[0]) == ids(e[0]) and ids(g[1]) == ids(e[1])
        else:  # a filter leaves few cluster mates; the rest of the list is noise, which binary ranks poorly
            same += finds_real(g[0], e[0]) and finds_real(g[1], e[1])
    assert same / len(got) >= 0.97, same / len(got)


@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_min_score_applies_to_exact_scores(built, data, quantization):
    folders, _, exact, _ = built
    _, _, perturbed, _, _ = data
    with open_index(folders[quantization], quantization) as ix:
        for j in range(20):
            top = exact["perturbed"][j]
            cut = (top[4][1] + top[5][1]) / 2  # between the exact 5th and 6th scores
            got = ix.search_lists([ListQuery("dense", 10, dense=perturbed[j], min_score=cut)], ())[0]
            assert ids(got) == ids(top[:5])
            assert all(s >= cut for _, s in got)


# ---------------------------------------------------------------------- in memory, retriever
def test_in_memory_index(data):
    chunks, vecs, perturbed, _, _ = data
    with MultiModalIndex(None, dim=DIM, show_progress=False, quantization="int8") as ix:
        assert ix.add_embedded(chunks[:1500], vecs[:1500]) == 1500
        ix.optimize()
        scratch = ix._engine.folder  # looks inside on purpose
        assert [p for p in scratch.rglob("*") if "quantized" in p.name]
        pids = [ix.point_id(c)[0] for c in chunks[:1500]]
        stored = ix.vectors(pids)
        mat = np.stack([stored[p] for p in pids])
        for q in perturbed[:20]:
            res = ix.search_lists([ListQuery("dense", 10, dense=q)], ())[0]
            want = [pids[j] for j in np.argsort(-(mat @ q))[:10]]
            assert ids(res) == want
    assert not scratch.exists()


def test_fused_retriever_on_quantized_index(built, data):
    folders = built[0]
    chunks, _, perturbed, random, copied = data
    queries = [f"word{j % 50} q{j}" for j in range(60)]
    table = {q: (perturbed if j < 40 else random)[j % 40] for j, q in enumerate(queries)}
    results = {}
    for q in (None, "int8", "binary"):
        with open_index(folders[q], q) as ix:
            r = FusedRetriever(ix, Lookup(table), k=10)  # near-duplicate removal reads vectors()
            results[q] = [[(h.chunk.id, round(h.score, 9)) for h in r.retrieve(t)] for t in queries]
    assert all(len(h) == 10 for h in results[None])
    same_int8 = np.mean([a == b for a, b in zip(results["int8"], results[None], strict=True)])
    assert same_int8 >= 0.95, same_int8
    # binary: the copied point of a perturbed-copy query is among the hits as often as when exact
    for q in (None, "binary"):
        found = np.mean([chunks[copied[j]].id in {cid for cid, _ in results[q][j]} for j in range(40)])
        assert found >= 0.97, (q, found)
