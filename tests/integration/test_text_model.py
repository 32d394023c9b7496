"""A text model beside CLIP: a second named dense vector (``text``) in the same Qdrant point.

The text model here is a user's model made in the test: a hashed bag of words that knows a few
synonyms (``car`` means ``automobile``), deterministic, so what its list adds can be told apart
from BM25 (which knows no synonyms) and from the tiny CLIP (whose lists are switched off where a
ranking is pinned).
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from mm_rag_plugin import ImageChunk, TextChunk
from mm_rag_plugin.errors import ConfigurationError
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex

SYNONYMS = {"car": "automobile", "cars": "automobile", "vehicle": "automobile"}


class HashedWords:
    """A tiny text embedding model: each word (synonyms folded) hashed into one of *dim* slots."""

    def __init__(self, dim: int = 64, name: str = "hashed-words") -> None:
        self._dim, self.name = dim, name

    @property
    def dim(self) -> int:
        return self._dim

    def _row(self, text: str) -> np.ndarray:
        v = np.zeros(self._dim, np.float32)
        for word in re.findall(r"\w+", text.lower()):
            v[zlib.crc32(SYNONYMS.get(word, word).encode()) % self._dim] += 1.0
        v[0] += 1e-3  # never all zeros
        return v / np.linalg.norm(v)

    def embed_documents(self, texts):
        return np.stack([self._row(t) for t in texts]) if texts else np.zeros((0, self._dim), np.float32)

    def embed_query(self, text):
        return self._row(text)

    def identity(self):
        return {"kind": "test", "name": self.name}


A = "the automobile museum closed early today"  # BM25's match for "automobile"
B = "car car car engine"  # the text model's match (car is automobile to it)
FILLER = ["bread recipes with rye flour", "the history of sailing ships", "garden soil and compost"]
ONLY_CLIP = {"dense_text": 0.0, "dense_image": 0.0}


def _chunks(source: str = "doc.txt") -> list[TextChunk]:
    return [TextChunk(id=f"c{i}", text=t, source=source, position=i) for i, t in enumerate([A, B, *FILLER])]


@pytest.fixture
def index(tmp_path, embedder):
    ix = MultiModalIndex(tmp_path / "ix", embedder=embedder, text_embedder=HashedWords())
    report = ix.add(_chunks())
    assert report.ok and report.added == 5
    yield ix
    ix.close()


def _top(ix, weights, **kw) -> list[str]:
    hits = FusedRetriever(ix, weights=weights, rrf_k=1, dedupe=False, **kw).retrieve("automobile", k=5)
    return [h.chunk.text for h in hits]


def test_text_list_changes_the_ranking_as_its_weight_says(index):
    assert _top(index, {**ONLY_CLIP, "text_model": 0.0})[0] == A  # BM25 alone: the word itself
    assert _top(index, {**ONLY_CLIP, "bm25": 0.0})[0] == B  # the text model alone: its synonym
    # A is first in BM25 and second in the text list; B only first in the text list: with
    # rrf_k=1, B passes A once the text list weighs more than k + 2 = 3
    assert _top(index, {**ONLY_CLIP, "text_model": 1.0})[0] == A
    assert _top(index, {**ONLY_CLIP, "text_model": 5.0})[0] == B
    hit = FusedRetriever(index, weights=ONLY_CLIP).retrieve("automobile", k=5)
    by_text = {h.chunk.text: h for h in hit}
    assert by_text[B].ranks == {"text_model": 1}  # explained like the other lists
    assert by_text[A].ranks == {"bm25": 1, "text_model": 2}
    assert by_text[B].list_scores["text_model"] > 0.9


def test_server_fusion_and_a_server_index_rank_the_same(index):
    qdrant_client = pytest.importorskip("qdrant_client")
    with index.copy_to(client=qdrant_client.QdrantClient(":memory:")) as server:
        server.attach(index.embedder)
        server.attach_text(HashedWords())
        for weights in ({**ONLY_CLIP, "bm25": 0.0}, {**ONLY_CLIP, "text_model": 5.0}):
            assert _top(server, weights) == _top(index, weights)
        assert _top(index, {**ONLY_CLIP, "bm25": 0.0}, fusion="server")[0] == B


def test_copy_carries_the_text_vectors(index, tmp_path):
    with index.copy_to(tmp_path / "copy") as copy:
        assert copy.text_model == index.text_model
        source = {p.id: p.text for batch in index.scan() for p in batch}
        copied = {p.id: p.text for batch in copy.scan() for p in batch}
    assert copied.keys() == source.keys() and all(v is not None for v in copied.values())
    for pid, v in source.items():
        np.testing.assert_allclose(copied[pid], v, rtol=1e-6)
    with MultiModalIndex(tmp_path / "copy", embedder=index.embedder, text_embedder=HashedWords()) as again:
        assert _top(again, {**ONLY_CLIP, "bm25": 0.0})[0] == B


def test_manifest_records_and_refuses_another_text_model(tmp_path, embedder):
    path = tmp_path / "ix"
    MultiModalIndex(path, embedder=embedder, text_embedder=HashedWords()).close()
    with MultiModalIndex(path, create=False) as ix:
        assert ix.text_model == {"kind": "test", "name": "hashed-words", "dim": 64}
    for other in (HashedWords(name="other-words"), HashedWords(dim=32)):
        with pytest.raises(ConfigurationError, match="built with text model test hashed-words, 64-d, not test") as err:
            MultiModalIndex(path, embedder=embedder, text_embedder=other)
        assert "\n" not in str(err.value)
    # opened without it: writes need it, a search cannot load a model it only knows by name
    with MultiModalIndex(path, embedder=embedder) as ix:
        with pytest.raises(ConfigurationError, match="text_embedder="):
            ix.add(_chunks())
        with pytest.raises(ConfigurationError, match="cannot be loaded by name"):
            FusedRetriever(ix)
        assert FusedRetriever(ix, weights={"text_model": 0}).retrieve("automobile") == []  # nothing added
        ix.attach_text(HashedWords())
        assert ix.add(_chunks()).added == 5


def test_index_without_a_text_model_works_as_before(tmp_path, embedder):
    path = tmp_path / "old"
    with MultiModalIndex(path, embedder=embedder) as ix:
        ix.add(_chunks())
        assert "text_model" not in ix.manifest and ix.text_model is None
        assert all(p.text is None for batch in ix.scan() for p in batch)
    with MultiModalIndex(path, embedder=embedder) as ix:
        plain = FusedRetriever(ix).retrieve("automobile", k=5)
        weighted = FusedRetriever(ix, weights={"text_model": 3.0}).retrieve("automobile", k=5)
        assert [(h.chunk.id, h.score, h.ranks) for h in weighted] == [(h.chunk.id, h.score, h.ranks) for h in plain]
        assert all("text_model" not in h.ranks for h in plain)
        assert ix.verify() == []
    with pytest.raises(ConfigurationError, match="built without a text model"):
        MultiModalIndex(path, embedder=embedder, text_embedder=HashedWords())


def test_images_get_the_vector_of_their_text_only(tmp_path, embedder, shared_data):
    image = str(shared_data / "clip_skimage" / "images" / "chelsea.png")
    from pathlib import Path

    from mm_rag_plugin.ids import content_hash

    digest = content_hash(Path(image).read_bytes())
    captioned = ImageChunk(id="i1", source=image, image_path=image, content_hash=digest, caption="a car parked outside")
    bare = ImageChunk(id="i2", source=image + "#2", image_path=image, content_hash=digest, page=2)
    with MultiModalIndex(tmp_path / "ix", embedder=embedder, text_embedder=HashedWords()) as ix:
        assert ix.add([captioned, bare]).ok
        points = {p.payload.get("caption") or "": p for batch in ix.scan() for p in batch}
        assert points[""].text is None
        np.testing.assert_allclose(points["a car parked outside"].text, HashedWords().embed_query("a car parked outside"), rtol=1e-6)
        assert ix.verify() == []
        hits = FusedRetriever(ix, weights={**ONLY_CLIP, "bm25": 0.0}, dedupe=False).retrieve("automobile", k=2)
        assert [h.chunk.caption for h in hits] == ["a car parked outside"]  # the bare image has no text vector


class _Flipped:
    """Another CLIP-space model for a reindex: the tiny model's vectors, negated."""

    def __init__(self, inner) -> None:
        self.inner, self.dim = inner, inner.dim

    def identity(self):
        return {"name": "flipped-tiny", "pretrained": None, "weights": None}

    def embed_texts(self, texts):
        return -self.inner.embed_texts(texts)

    def embed_images(self, images, *, on_error="raise"):
        from types import SimpleNamespace

        got = self.inner.embed_images(images, on_error=on_error)
        return SimpleNamespace(vectors=-np.asarray(got.vectors), errors=got.errors)

    def embed_query(self, text=None, *, image=None):
        return -self.inner.embed_query(text, image=image)


def test_reindex_carries_the_text_model_and_its_vectors(index, embedder):
    from mm_rag_plugin.finetune.reindexing import reindex

    path = index.path
    before = {p.id: p.text for batch in index.scan() for p in batch}
    index.close()
    report = reindex(path, _Flipped(embedder))
    assert report.points == 5
    with MultiModalIndex(path, embedder=_Flipped(embedder), text_embedder=HashedWords()) as ix:
        assert ix.text_model == {"kind": "test", "name": "hashed-words", "dim": 64}
        after = {p.id: p.text for batch in ix.scan() for p in batch}
        assert after.keys() == before.keys()
        for pid, v in before.items():
            np.testing.assert_allclose(after[pid], v, rtol=1e-6)
        assert _top(ix, {**ONLY_CLIP, "bm25": 0.0})[0] == B


def test_both_vector_stores_take_a_framework_text_model(embedder):
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.embeddings import Embeddings
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

    from mm_rag_plugin.integrations.langchain.embeddings import OpenCLIPEmbeddings
    from mm_rag_plugin.integrations.langchain.vectorstores import MultiModalVectorStore as LCStore
    from mm_rag_plugin.integrations.llama_index.embeddings import OpenCLIPEmbedding
    from mm_rag_plugin.integrations.llama_index.vector_stores import MultiModalVectorStore as LIStore

    words = HashedWords()

    class WordsEmbeddings(Embeddings):  # the user's LangChain model
        model: str = "hashed-words"

        def embed_documents(self, texts):
            return words.embed_documents(texts).tolist()

        def embed_query(self, text):
            return words.embed_query(text).tolist()

    class WordsEmbedding(BaseEmbedding):  # the user's LlamaIndex model
        def _get_text_embedding(self, text):
            return words.embed_query(text).tolist()

        def _get_query_embedding(self, query):
            return words.embed_query(query).tolist()

        async def _aget_query_embedding(self, query):
            return self._get_query_embedding(query)

    texts = [A, B, *FILLER]
    lc = LCStore(OpenCLIPEmbeddings(embedder=embedder), text_embedder=WordsEmbeddings())
    lc.add_texts(texts, ids=[f"t{i}" for i in range(len(texts))])
    assert lc.index.text_model["kind"] == "langchain" and lc.index.text_model["model"] == "hashed-words"
    top = lc.hybrid_search("automobile", k=5, weights={**ONLY_CLIP, "bm25": 0.0})
    assert top[0].page_content == B
    assert lc.hybrid_search("automobile", k=5, weights={**ONLY_CLIP, "text_model": 0.0})[0].page_content == A

    li = LIStore(embed_model=OpenCLIPEmbedding(embedder=embedder), text_embedder=WordsEmbedding(model_name="hashed-words"))
    nodes = [TextNode(id_=f"n{i}", text=t, embedding=embedder.embed_texts([t])[0].tolist()) for i, t in enumerate(texts)]
    li.add(nodes)
    assert li._index.text_model["kind"] == "llama_index"
    query = VectorStoreQuery(query_str="automobile", mode=VectorStoreQueryMode.HYBRID, similarity_top_k=5, hybrid_top_k=5)
    got = li.query(query, weights={**ONLY_CLIP, "bm25": 0.0})
    assert got.ids[0] == "n1"
    assert li.query(query, weights={**ONLY_CLIP, "text_model": 0.0}).ids[0] == "n0"


def test_pipeline_takes_a_text_model_and_the_cli_names_its_extra(tmp_path, embedder, model_env):
    from mm_rag_plugin import MultiModalRAG
    from tests._cli import run

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate([A, B, *FILLER]):
        (docs / f"d{i}.md").write_text(text + "\n", encoding="utf-8")
    weights = {**ONLY_CLIP, "bm25": 0.0}
    with MultiModalRAG(tmp_path / "ix", embedder=embedder, text_model=HashedWords(), retriever_options={"weights": weights}) as rag:
        assert not rag.ingest(docs, workers=0).errors
        assert rag.index.text_model["name"] == "hashed-words"
        assert rag.search("automobile", k=1)[0].chunk.text.strip() == B
    with pytest.raises(ConfigurationError, match="cannot be loaded by name"):
        MultiModalRAG(tmp_path / "ix", embedder=embedder)
    try:  # the CLI's --text-model is a sentence-transformers model (extra "text")
        import sentence_transformers  # noqa: F401
    except ImportError:
        code, _, err = run("ingest", str(docs), "--index", str(tmp_path / "ix2"), "--text-model", "some/model", "-q")
        assert code != 0 and "mm-rag-plugin[text]" in err and len(err.strip().splitlines()) == 1
