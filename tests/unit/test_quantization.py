"""Quantized dense vectors in the numpy engine (``quantization="int8" | "binary"``).

Data: 5,000 unit vectors in 512-d, in 500 clusters of 10 (a random centre plus noise; the 10th
neighbour of a member sits near cosine 0.5, unrelated vectors near 0), so a query has real near
neighbours. Queries: 200 perturbed copies of stored vectors, and 100 pure random ones (whose "top
10" is the upper tail of the noise, the hardest case). The reference is the same folder opened
without quantization (the exact float32 engine).

Measured when these tests were written (numpy 2.4, x86-64): int8 returned exactly the exact
engine's top 10 (and top 50) for 100 % of both query kinds; binary (default oversampling 10)
found 100 % of the top 10 of perturbed copies, and 42-47 % of the top 10 of random queries (where
every neighbour is noise, cosines 0.13-0.16). Thresholds leave room for rare ties only.
"""

from __future__ import annotations

import numpy as np
import pytest

from mm_rag_plugin.errors import ConfigurationError
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.retrievers._engine import ListQuery
from mm_rag_plugin.retrievers._filters import match, parse_filters
from mm_rag_plugin.types import ImageChunk, TextChunk

DIM = 512
N = 5000
CLUSTERS = 500


def make_vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vecs = centres[np.arange(n) % CLUSTERS] + 0.8 * rng.normal(size=(n, DIM)) / np.sqrt(DIM)
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


def make_chunks(n: int) -> list:
    """Members of one cluster (i, i+500, ...) span the 10 sources; 2 of every 10 are images."""
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

    def embed_images(self, images):
        raise AssertionError("not used")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    vecs = make_vectors(N)
    copied = rng.integers(0, N, 200)
    perturbed = unit(vecs[copied] + 0.5 * rng.normal(size=(200, DIM)) / np.sqrt(DIM))
    random = unit(rng.normal(size=(100, DIM)))
    return make_chunks(N), vecs, perturbed, random, copied


def open_index(path, quantization=None, **kw):
    return MultiModalIndex(path, engine="numpy", dim=DIM, show_progress=False, quantization=quantization, **kw)


def dense_top(ix: MultiModalIndex, queries: np.ndarray, limit: int = 10, **kw) -> list[list[tuple[str, float]]]:
    return [ix.search_lists([ListQuery("dense", limit, dense=q, **kw)], ())[0] for q in queries]


@pytest.fixture(scope="module")
def built(tmp_path_factory, data):
    """The folder (written without quantization), the exact top 10s, and the stored originals."""
    chunks, vecs, perturbed, random, _ = data
    folder = tmp_path_factory.mktemp("quant") / "ix"
    with open_index(folder) as ix:
        assert ix.add_embedded(chunks, vecs) == N
        pids = [ix.point_id(c)[0] for c in chunks]
        exact = {"perturbed": dense_top(ix, perturbed), "random": dense_top(ix, random)}
        originals = ix.vectors(pids)
        originals = {k: v.copy() for k, v in originals.items()}
    return folder, pids, exact, originals


def ids(hits: list[tuple[str, float]]) -> list[str]:
    return [i for i, _ in hits]


#: Cosine above which a neighbour is real here: cluster mates of a query score 0.45-0.9, while the
#: best of 5,000 unrelated vectors scores about sqrt(2 ln 5000 / 512) = 0.18.
REAL = 0.3


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
@pytest.mark.parametrize("engine", ["numpy", "qdrant"])
def test_invalid_settings_raise(tmp_path, kw, words, engine):
    with pytest.raises(ConfigurationError) as err:
        MultiModalIndex(tmp_path / "ix", engine=engine, dim=8, show_progress=False, **kw)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert not (tmp_path / "ix").exists()  # rejected before anything is created


# ---------------------------------------------------------------------- quality
def test_int8_returns_the_exact_top10_with_exact_scores(built, data):
    folder, _, exact, originals = built
    _, _, perturbed, random, _ = data
    with open_index(folder, "int8") as ix:
        assert ix.quantization == "int8" and ix.oversampling == 3.0
        for name, queries in (("perturbed", perturbed), ("random", random)):
            got = dense_top(ix, queries)
            same = np.mean([ids(g) == ids(e) for g, e in zip(got, exact[name], strict=True)])
            assert same >= 0.99, (name, same)  # measured 1.00
            assert_exact_scores(got, queries, originals)


def test_binary_recall_and_exact_scores(built, data):
    folder, _, exact, originals = built
    _, _, perturbed, random, _ = data
    with open_index(folder, "binary") as ix:
        got = dense_top(ix, perturbed)
        recall = np.mean([len(set(ids(g)) & set(ids(e))) / 10 for g, e in zip(got, exact["perturbed"], strict=True)])
        assert recall >= 0.98, recall  # measured 1.00: the whole cluster is found
        assert_exact_scores(got, perturbed, originals)
        # random queries: the neighbours are noise that sign bits barely rank; measured 0.42-0.47,
        # while 100 candidates drawn blindly would give about 100/5000 = 0.02
        got = dense_top(ix, random)
        recall = np.mean([len(set(ids(g)) & set(ids(e))) / 10 for g, e in zip(got, exact["random"], strict=True)])
        assert recall >= 0.3, recall
        assert_exact_scores(got, random, originals)


def test_more_oversampling_finds_more(built, data):
    folder, _, exact, _ = built
    _, _, _, random, _ = data
    recalls = []
    for os_ in (1.0, 30.0):
        with open_index(folder, "binary", oversampling=os_) as ix:
            got = dense_top(ix, random)
        recalls.append(np.mean([len(set(ids(g)) & set(ids(e))) / 10 for g, e in zip(got, exact["random"], strict=True)]))
    assert recalls[1] > recalls[0] + 0.1, recalls


# ---------------------------------------------------------------------- memory
def test_float_matrix_not_in_memory(built):
    folder = built[0]
    with open_index(folder) as ix:
        full = ix.memory_bytes()["dense"]
    assert full == N * DIM * 4
    sizes = {}
    for q in ("int8", "binary"):
        with open_index(folder, q) as ix:
            sizes[q] = ix.memory_bytes()["dense"]
            engine = ix.engine_impl
            big_floats = [
                name for name, a in vars(engine).items()
                if isinstance(a, np.ndarray) and a.dtype == np.float32 and a.ndim == 2
            ]
            assert big_floats == [], big_floats
    assert sizes["int8"] == N * (DIM + 4)  # int8 rows + a float32 scale per row
    assert sizes["binary"] == N * DIM // 8
    assert sizes["int8"] / full == pytest.approx(0.25, abs=0.005)
    assert sizes["binary"] / full == pytest.approx(1 / 32)


def test_vectors_are_the_float_originals(built):
    folder, pids, _, originals = built
    some = [pids[i] for i in (0, 17, 4321, 4999)] + ["not-a-point"]
    for q in ("int8", "binary"):
        with open_index(folder, q) as ix:
            got = ix.vectors(some)
        assert list(got) == some[:4]
        for pid, v in got.items():
            assert v.dtype == np.float32
            assert np.array_equal(v, originals[pid])


# ---------------------------------------------------------------------- writes, reopen, compaction
@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_written_quantized_reopened_either_way(tmp_path, data, built, quantization):
    chunks, vecs, perturbed, _, _ = data
    _, _, exact, originals = built
    folder = tmp_path / "ix"
    with open_index(folder, quantization) as ix:
        for s in range(0, N, 700):  # several batches: the arrays grow while quantized
            ix.add_embedded(chunks[s : s + 700], vecs[s : s + 700])
        first = dense_top(ix, perturbed[:50])
    with open_index(folder) as ix:  # the same folder without quantization: exact
        assert [ids(r) for r in dense_top(ix, perturbed[:50])] == [ids(r) for r in exact["perturbed"][:50]]
    with open_index(folder, quantization) as ix:
        again = dense_top(ix, perturbed[:50])
    assert again == first
    assert np.mean([ids(a) == ids(e) for a, e in zip(again, exact["perturbed"][:50], strict=True)]) >= 0.98
    assert_exact_scores(again, perturbed[:50], originals)


@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_delete_and_compaction_keep_search_exact(tmp_path, data, quantization):
    chunks, vecs, _, _, _ = data
    n = 2000
    folder = tmp_path / "ix"
    with open_index(folder, quantization) as ix:
        ix.add_embedded(chunks[:n], vecs[:n])
        pids = [ix.point_id(c)[0] for c in chunks[:n]]
        engine = ix.engine_impl
        gone = set(pids[::2]) | set(pids[1:1300:4])  # 1000 + 325 > 1000 and > a quarter: compacts
        engine.delete(sorted(gone))
        assert engine._dead == 0 and engine._n == n - len(gone)  # compaction ran
        assert len(ix) == n - len(gone)
        back = list(range(0, 40, 2))  # re-added after compaction: appended to the compacted arrays
        ix.add_embedded([chunks[i] for i in back], vecs[back])
        gone -= {pids[i] for i in back}
        alive = [i for i in range(n) if pids[i] not in gone]
        assert len(ix) == len(alive)
        # exact reference by brute force over the live stored originals
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
            assert same >= 39, same
    with open_index(folder) as ix:  # and the file agrees
        assert len(ix) == len(alive)


# ---------------------------------------------------------------------- filters, min_score
@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_filters_and_kind_lists(built, data, quantization):
    folder = built[0]
    _, _, perturbed, _, _ = data
    qs = perturbed[:30]
    cases = [
        ("text", None),
        ("image", None),
        (None, {"source": "doc3.pdf"}),
        ("text", {"source": ["doc1.pdf", "doc6.pdf"]}),
        ("image", {"page": {"lte": 10}}),  # a payload condition, matched in Python
    ]

    def run(ix):
        out = []
        for kind, flt in cases:
            for q in qs:
                lists = [ListQuery("a", 10, dense=q, kind=kind), ListQuery("b", 5, dense=q, kind=kind)]
                out.append((kind, parse_filters(flt), ix.search_lists(lists, parse_filters(flt))))
        return out

    with open_index(folder) as ix:
        exact = run(ix)
    with open_index(folder, quantization) as ix:
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
    assert same / len(got) >= 0.99, same / len(got)  # measured 1.00


@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_min_score_applies_to_exact_scores(built, data, quantization):
    folder, _, exact, _ = built
    _, _, perturbed, _, _ = data
    with open_index(folder, quantization) as ix:
        for j in range(20):
            top = exact["perturbed"][j]
            cut = (top[4][1] + top[5][1]) / 2  # between the exact 5th and 6th scores
            got = ix.search_lists([ListQuery("dense", 10, dense=perturbed[j], min_score=cut)], ())[0]
            assert ids(got) == ids(top[:5])
            assert all(s >= cut for _, s in got)


# ---------------------------------------------------------------------- in memory, retriever
def test_in_memory_engine(data):
    chunks, vecs, perturbed, _, _ = data
    with MultiModalIndex(None, engine="numpy", dim=DIM, show_progress=False, quantization="int8") as ix:
        assert ix.add_embedded(chunks[:1500], vecs[:1500]) == 1500
        pids = [ix.point_id(c)[0] for c in chunks[:1500]]
        stored = ix.vectors(pids)
        mat = np.stack([stored[p] for p in pids])
        assert ix.memory_bytes()["dense"] < mat.nbytes / 3
        for q in perturbed[:20]:
            res = ix.search_lists([ListQuery("dense", 10, dense=q)], ())[0]
            want = [pids[j] for j in np.argsort(-(mat @ q))[:10]]
            assert ids(res) == want


def test_fused_retriever_on_quantized_index(built, data):
    folder = built[0]
    chunks, _, perturbed, random, copied = data
    queries = [f"word{j % 50} q{j}" for j in range(60)]
    table = {q: (perturbed if j < 40 else random)[j % 40] for j, q in enumerate(queries)}
    results = {}
    for q in (None, "int8", "binary"):
        with open_index(folder, q) as ix:
            r = FusedRetriever(ix, Lookup(table), k=10)  # near-duplicate removal reads vectors()
            results[q] = [[(h.chunk.id, round(h.score, 9)) for h in r.retrieve(t)] for t in queries]
    assert all(len(h) == 10 for h in results[None])
    same_int8 = np.mean([a == b for a, b in zip(results["int8"], results[None], strict=True)])
    assert same_int8 >= 0.98, same_int8
    # binary: the copied point of a perturbed-copy query is among the hits as often as when exact
    for q in (None, "binary"):
        found = np.mean([chunks[copied[j]].id in {cid for cid, _ in results[q][j]} for j in range(40)])
        assert found >= 0.98, (q, found)
