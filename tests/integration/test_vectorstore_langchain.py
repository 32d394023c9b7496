"""The LangChain vector store: langchain-tests' standard suite (sync and async, with the suite's
own embeddings and with the CLIP model), then images, hybrid retrieval, MMR, filters, persistence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_tests.integration_tests.vectorstores import VectorStoreIntegrationTests
from PIL import Image
from qdrant_client import models

from mm_rag_plugin import ConfigurationError, InvalidInputError, MultiModalIndex
from mm_rag_plugin.integrations.langchain import OpenCLIPEmbeddings
from mm_rag_plugin.integrations.langchain.vectorstores import MultiModalVectorStore


class TestStandardSuite(VectorStoreIntegrationTests):
    """The suite as every LangChain vector store runs it: its fake embeddings, an in-memory store."""

    @pytest.fixture
    def vectorstore(self) -> Iterator[MultiModalVectorStore]:  # type: ignore[override]
        store = MultiModalVectorStore(self.get_embeddings())
        try:
            yield store
        finally:
            store.close()


class TestStandardSuiteClipOnDisk(VectorStoreIntegrationTests):
    """The same suite with the CLIP model and a Qdrant Edge folder."""

    @pytest.fixture
    def vectorstore(self, embedder, tmp_path: Path) -> Iterator[MultiModalVectorStore]:  # type: ignore[override]
        store = MultiModalVectorStore(OpenCLIPEmbeddings(embedder=embedder), path=str(tmp_path / "ix"))
        try:
            yield store
        finally:
            store.close()


def _shape(path: Path, color: str) -> str:
    Image.new("RGB", (64, 64), color).save(path)
    return str(path)


@pytest.fixture
def clip(embedder) -> OpenCLIPEmbeddings:
    return OpenCLIPEmbeddings(embedder=embedder)


def test_images_are_searchable_by_text_and_by_image(clip, tmp_path: Path) -> None:
    store = MultiModalVectorStore(clip, path=str(tmp_path / "ix"))
    red, blue = _shape(tmp_path / "red.png", "red"), _shape(tmp_path / "blue.png", "blue")
    ids = store.add_images([red, blue], [{"tag": "r"}, {"tag": "b"}])
    store.add_texts(["a note about invoices"], [{"tag": "t"}])
    docs = store.get_by_ids(ids)
    assert [d.metadata["image_path"] for d in docs] == [red, blue]
    assert all(d.metadata["kind"] == "image" for d in docs)
    assert store.similarity_search_by_image(red, k=1)[0].id == ids[0]
    only_images = store.similarity_search("a red square", k=5, filter={"kind": "image"})
    assert {d.id for d in only_images} == set(ids)
    store.close()


def test_a_broken_image_is_reported_and_the_others_are_stored(clip, tmp_path: Path) -> None:
    store = MultiModalVectorStore(clip)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    good = _shape(tmp_path / "ok.png", "green")
    with pytest.raises(InvalidInputError, match=r"broken\.png") as err:
        store.add_images([good, str(bad)], ids=["g", "b"])
    assert "1 stored" in str(err.value)
    assert [d.id for d in store.get_by_ids(["g", "b"])] == ["g"]


def test_default_retriever_is_hybrid_and_finds_keywords(clip) -> None:
    store = MultiModalVectorStore(clip)
    store.add_texts(
        ["invoice INV-00421 total 12.50", "a photo of a cat", "meeting notes from tuesday"],
        ids=["inv", "cat", "notes"],
    )
    retriever = store.as_retriever(search_kwargs={"k": 2})
    assert retriever.search_type == "hybrid"
    assert retriever.invoke("tuesday")[0].id == "notes"  # BM25 finds what the tiny CLIP cannot


def test_retriever_rejects_unknown_options(clip) -> None:
    store = MultiModalVectorStore(clip)
    with pytest.raises(Exception, match="unknown option"):
        store.as_retriever(search_kwargs={"kk": 3})
    with pytest.raises(Exception, match="k must be an integer >= 1"):
        store.as_retriever(search_kwargs={"k": 0})
    with pytest.raises(Exception, match="search_type"):
        store.as_retriever(search_type="nearest")
    with pytest.raises(ConfigurationError, match="unknown option"):
        store.similarity_search("x", k=2, search_kwargs={"k": 1})


def test_mmr_prefers_diverse_documents() -> None:
    store = MultiModalVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_texts(["same", "same", "other"], ids=["a", "b", "c"])
    plain = store.similarity_search("same", k=2)
    assert {d.id for d in plain} == {"a", "b"}
    diverse = store.max_marginal_relevance_search("same", k=2, fetch_k=3, lambda_mult=0.1)
    assert {d.id for d in diverse} in ({"a", "c"}, {"b", "c"})
    retriever = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 3, "lambda_mult": 0.1})
    assert "c" in {d.id for d in retriever.invoke("same")}


def test_filters_dict_and_qdrant_models() -> None:
    store = MultiModalVectorStore(DeterministicFakeEmbedding(size=8))
    store.add_texts(
        ["one", "two", "three", "four"],
        [{"lang": "en", "n": 1}, {"lang": "de", "n": 2}, {"lang": "en", "n": 3}, {"lang": "fr", "n": 4, "source": "x.pdf"}],
        ids=["1", "2", "3", "4"],
    )

    def ids(flt) -> set[str]:
        return {d.id for d in store.similarity_search("one", k=10, filter=flt)}

    assert ids({"lang": "en"}) == {"1", "3"}
    assert ids({"n": {"gte": 2, "lt": 4}}) == {"2", "3"}
    assert ids({"lang": {"nin": ["en"]}}) == {"2", "4"}
    assert ids({"lang": {"ne": "en"}}) == {"2", "4"}
    assert ids({"$or": [{"lang": "de"}, {"n": 4}]}) == {"2", "4"}
    # LangChain's operator spelling (Chroma, PGVector, Pinecone)
    assert ids({"lang": {"$in": ["de", "fr"]}}) == {"2", "4"}
    assert ids({"lang": {"$nin": ["en"]}}) == {"2", "4"}
    assert ids({"n": {"$gt": 1, "$lte": 3}}) == {"2", "3"}
    assert ids({"n": {"$gte": 2, "$ne": 3}}) == {"2", "4"}
    assert ids({"lang": {"$eq": "en"}, "$not": {"n": {"$lt": 2}}}) == {"3"}
    with pytest.raises(InvalidInputError, match="'in' takes a list"):
        ids({"lang": {"$in": "en"}})
    assert ids({"source": "x.pdf"}) == {"4"}
    qf = models.Filter(
        must=[models.FieldCondition(key="metadata.lang", match=models.MatchAny(any=["en", "fr"]))],
        must_not=[models.FieldCondition(key="metadata.n", range=models.Range(gte=3))],
    )
    assert ids(qf) == {"1"}
    store.delete(filter={"lang": "en"})
    assert ids(None) == {"2", "4"}
    with pytest.raises(InvalidInputError, match="kind"):
        ids({"kind": "video"})


def test_from_texts_persists_and_reopens_with_its_model(clip, tmp_path: Path) -> None:
    folder = str(tmp_path / "ix")
    store = MultiModalVectorStore.from_texts(["alpha", "beta"], clip, [{"i": 1}, {"i": 2}], ids=["a", "b"], path=folder)
    store.close()
    again = MultiModalVectorStore(path=folder)  # no embedding given: the index loads its model
    assert again.get_by_ids(["b"]) == [Document(id="b", page_content="beta", metadata={"i": 2})]
    assert again.similarity_search("alpha", k=1)[0].id == "a"
    again.close()
    with pytest.raises(ConfigurationError, match="never mixes models"):
        MultiModalVectorStore(DeterministicFakeEmbedding(size=clip.embedder.dim), path=folder)


def test_wraps_an_index_built_from_files(embedder, tmp_path: Path) -> None:
    from mm_rag_plugin.types import TextChunk

    with MultiModalIndex(tmp_path / "ix", embedder=embedder) as index:
        index.add([TextChunk(id="c1", text="quarterly revenue grew", source="/docs/report.pdf", page=3)])
        store = MultiModalVectorStore(index=index)
        [doc] = store.similarity_search("revenue", k=1)
        assert doc.metadata["source"] == "/docs/report.pdf" and doc.metadata["page"] == 3
        assert store.get_by_ids([doc.id]) == [doc]
        assert [d.id for d in store.similarity_search("revenue", k=1, filter={"page": 3})] == [doc.id]
        store.delete([doc.id])
        assert len(index) == 0


async def test_async_hybrid_retriever(clip) -> None:
    store = MultiModalVectorStore(clip)
    await store.aadd_texts(["alpha report", "beta summary"], ids=["a", "b"])
    docs = await store.as_retriever(search_kwargs={"k": 1}).ainvoke("summary")
    assert [d.id for d in docs] == ["b"]


def test_add_images_without_ids_replaces_the_same_image(clip, tmp_path: Path) -> None:
    """An image added twice without ids is one item (its id comes from its bytes and source); the
    same bytes under another source, or other bytes, are other items."""
    store = MultiModalVectorStore(clip)
    red = _shape(tmp_path / "red.png", "red")
    first = store.add_images([red], [{"tag": "r"}])
    again = store.add_images([red], [{"tag": "r2"}])
    assert first == again
    assert store.index.count() == 1
    assert store.get_by_ids(first)[0].metadata["tag"] == "r2"
    other_source = store.add_images([red], [{"source": "elsewhere.png"}])
    _shape(tmp_path / "red.png", "blue")  # new bytes, same path
    new_bytes = store.add_images([red])
    assert len({*first, *other_source, *new_bytes}) == 3
    assert store.index.count() == 3
    store.close()
