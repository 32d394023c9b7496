"""The LlamaIndex vector store: the query modes, MetadataFilters, deletes, and the framework paths
(VectorStoreIndex, MultiModalVectorStoreIndex, RetrieverQueryEngine with multimodal=True),
written after the patterns of LlamaIndex's own vector-store tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.genai import types as genai_types
from llama_index.core import Document, MockEmbedding, Settings, StorageContext, VectorStoreIndex
from llama_index.core.indices.multi_modal import MultiModalVectorStoreIndex
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import ImageDocument, ImageNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.llms.google_genai import GoogleGenAI
from PIL import Image

from mm_rag_plugin import ConfigurationError, InvalidInputError
from mm_rag_plugin.integrations.llama_index import OpenCLIPEmbedding
from mm_rag_plugin.integrations.llama_index.vector_stores import MultiModalVectorStore
from tests.integration.fake_gemini import FakeGemini, Reply

DIM = 3


def _nodes() -> list[TextNode]:
    """Nodes with metadata and embeddings, like LlamaIndex's vector-store tests."""
    rows = [
        ("AF3828", "lorem ipsum", {"author": "Stephen King", "theme": "Friendship", "rank": 1}, [1.0, 0.0, 0.0], "d1"),
        ("AF3829", "lorem ipsum", {"author": "Mark Twain", "theme": "Death", "rank": 2}, [0.0, 1.0, 0.0], "d1"),
        ("AF3830", "lorem ipsum", {"author": "J.K. Rowling", "theme": "Friendship", "rank": 3}, [0.0, 0.0, 1.0], "d2"),
        ("AF3831", "dolor sit amet", {"author": "Mark Twain", "theme": "Adventure", "rank": 4, "tags": ["a", "b"]}, [0.7, 0.7, 0.0], "d3"),
    ]
    out = []
    for nid, text, meta, emb, doc in rows:
        node = TextNode(id_=nid, text=text, metadata=meta, embedding=emb)
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc)
        out.append(node)
    return out


@pytest.fixture
def store() -> MultiModalVectorStore:
    s = MultiModalVectorStore(dim=DIM)
    s.add(_nodes())
    return s


def _ids(store: MultiModalVectorStore, filters: MetadataFilters | None = None, **query) -> list[str]:
    q = VectorStoreQuery(query_embedding=query.pop("emb", [1.0, 0.0, 0.0]), similarity_top_k=query.pop("k", 10), filters=filters, **query)
    return list(store.query(q).ids or [])


def test_default_query_returns_nodes_whole(store) -> None:
    res = store.query(VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0], similarity_top_k=2))
    assert res.ids == ["AF3828", "AF3831"]
    assert res.similarities[0] == pytest.approx(1.0, abs=1e-5)
    node = res.nodes[0]
    assert node.metadata == {"author": "Stephen King", "theme": "Friendship", "rank": 1}
    assert node.ref_doc_id == "d1" and node.get_content() == "lorem ipsum"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (MetadataFilters(filters=[MetadataFilter(key="theme", value="Friendship")]), {"AF3828", "AF3830"}),
        (MetadataFilters(filters=[MetadataFilter(key="rank", value=2, operator=FilterOperator.GT)]), {"AF3830", "AF3831"}),
        (MetadataFilters(filters=[MetadataFilter(key="rank", value=2, operator=FilterOperator.LTE)]), {"AF3828", "AF3829"}),
        (MetadataFilters(filters=[MetadataFilter(key="author", value="Mark Twain", operator=FilterOperator.NE)]), {"AF3828", "AF3830"}),
        (MetadataFilters(filters=[MetadataFilter(key="theme", value=["Death", "Adventure"], operator=FilterOperator.IN)]), {"AF3829", "AF3831"}),
        (MetadataFilters(filters=[MetadataFilter(key="theme", value=["Friendship"], operator=FilterOperator.NIN)]), {"AF3829", "AF3831"}),
        (MetadataFilters(filters=[MetadataFilter(key="tags", value="b", operator=FilterOperator.CONTAINS)]), {"AF3831"}),
        (MetadataFilters(filters=[MetadataFilter(key="tags", value=["a", "b"], operator=FilterOperator.ALL)]), {"AF3831"}),
        (MetadataFilters(filters=[MetadataFilter(key="tags", value=None, operator=FilterOperator.IS_EMPTY)]), {"AF3828", "AF3829", "AF3830"}),
        (
            MetadataFilters(
                filters=[MetadataFilter(key="theme", value="Friendship"), MetadataFilter(key="rank", value=3, operator=FilterOperator.GTE)],
                condition=FilterCondition.AND,
            ),
            {"AF3830"},
        ),
        (
            MetadataFilters(
                filters=[MetadataFilter(key="theme", value="Death"), MetadataFilter(key="rank", value=4)],
                condition=FilterCondition.OR,
            ),
            {"AF3829", "AF3831"},
        ),
        (
            MetadataFilters(
                filters=[
                    MetadataFilter(key="author", value="Mark Twain"),
                    MetadataFilters(
                        filters=[MetadataFilter(key="rank", value=2), MetadataFilter(key="theme", value="Adventure")],
                        condition=FilterCondition.OR,
                    ),
                ],
                condition=FilterCondition.AND,
            ),
            {"AF3829", "AF3831"},
        ),
        (MetadataFilters(filters=[MetadataFilter(key="theme", value="Friendship")], condition=FilterCondition.NOT), {"AF3829", "AF3831"}),
    ],
)
def test_metadata_filters(store, filters, expected) -> None:
    assert set(_ids(store, filters)) == expected


def test_unsupported_filter_operator_is_an_error(store) -> None:
    flt = MetadataFilters(filters=[MetadataFilter(key="author", value="Mark", operator=FilterOperator.TEXT_MATCH)])
    with pytest.raises(InvalidInputError, match="text_match"):
        _ids(store, flt)


def test_hybrid_sparse_and_mmr_modes(store) -> None:
    assert _ids(store, query_str="dolor", mode=VectorStoreQueryMode.SPARSE)[0] == "AF3831"
    assert _ids(store, query_str="dolor", mode=VectorStoreQueryMode.TEXT_SEARCH) == ["AF3831"]
    hybrid = _ids(store, query_str="dolor", mode=VectorStoreQueryMode.HYBRID, emb=[0.0, 0.0, 1.0], alpha=0.5)
    assert set(hybrid[:2]) == {"AF3830", "AF3831"}  # the dense best and the keyword best
    assert _ids(store, query_str="dolor", mode=VectorStoreQueryMode.HYBRID, emb=[0.0, 0.0, 1.0], alpha=0.0)[0] == "AF3831"
    assert _ids(store, query_str="dolor", mode=VectorStoreQueryMode.HYBRID, emb=[0.0, 0.0, 1.0], alpha=1.0)[0] == "AF3830"
    plain = _ids(store, k=2, emb=[1.0, 0.1, 0.0])
    assert plain == ["AF3828", "AF3831"]
    diverse = _ids(store, k=2, emb=[1.0, 0.1, 0.0], mode=VectorStoreQueryMode.MMR, mmr_threshold=0.2)
    assert diverse[0] == "AF3828" and diverse[1] != "AF3831"
    with pytest.raises(ConfigurationError, match="svm"):
        _ids(store, mode=VectorStoreQueryMode.SVM)


def test_deletes_get_nodes_and_clear(store) -> None:
    store.delete("d1")
    assert set(_ids(store)) == {"AF3830", "AF3831"}
    store.delete_nodes(node_ids=["AF3830"])
    assert _ids(store) == ["AF3831"]
    assert [n.node_id for n in store.get_nodes(node_ids=["AF3831", "nope"])] == ["AF3831"]
    flt = MetadataFilters(filters=[MetadataFilter(key="author", value="Mark Twain")])
    assert [n.node_id for n in store.get_nodes(filters=flt)] == ["AF3831"]
    store.clear()
    assert _ids(store) == []


async def test_async_twins(store) -> None:
    res = await store.aquery(VectorStoreQuery(query_embedding=[0.0, 1.0, 0.0], similarity_top_k=1))
    assert res.ids == ["AF3829"]
    await store.adelete("d2")
    assert "AF3830" not in _ids(store)


def test_vector_store_index_from_documents_with_any_embedding(tmp_path: Path) -> None:
    embed = MockEmbedding(embed_dim=8)
    store = MultiModalVectorStore(path=str(tmp_path / "ix"), embed_model=embed)
    index = VectorStoreIndex.from_documents(
        [Document(text="the invoice total is 12.50", doc_id="inv"), Document(text="cats sleep a lot", doc_id="cat")],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=embed,
    )
    nodes = index.as_retriever(similarity_top_k=1, vector_store_query_mode="hybrid").retrieve("invoice")
    assert nodes[0].node.ref_doc_id == "inv"
    index.delete_ref_doc("inv")
    assert all(n.node.ref_doc_id != "inv" for n in index.as_retriever(similarity_top_k=5).retrieve("invoice"))
    store.close()
    with pytest.raises(ConfigurationError, match="never mixes models"):
        MultiModalVectorStore(path=str(tmp_path / "ix"), embed_model=MockEmbedding(embed_dim=8, embed_batch_size=3) if False else _Other(embed_dim=8))


class _Other(MockEmbedding):
    """Another embedding model of the same size."""


def _png(path: Path, color: str) -> Path:
    Image.new("RGB", (64, 64), color).save(path)
    return path


def test_multimodal_vector_store_index_and_multimodal_query_engine(embedder, tmp_path: Path) -> None:
    clip = OpenCLIPEmbedding(embedder=embedder)
    text_store = MultiModalVectorStore(path=str(tmp_path / "ix"), embed_model=clip, kind="text")
    image_store = text_store.image_store()
    red = _png(tmp_path / "red.png", "red")
    docs = [
        Document(text="The quarterly report says revenue grew.", doc_id="report"),
        ImageDocument(image_path=str(red), text="a red square", doc_id="red"),
    ]
    index = MultiModalVectorStoreIndex.from_documents(
        docs,
        storage_context=StorageContext.from_defaults(vector_store=text_store, image_store=image_store),
        embed_model=clip,
        image_embed_model=clip,
    )
    retriever = index.as_retriever(similarity_top_k=2, image_similarity_top_k=1)
    found = retriever.retrieve("a red square")
    assert "The quarterly report says revenue grew." in [n.node.get_content() for n in found]
    images = [n.node for n in found if isinstance(n.node, ImageNode)]
    assert images and all(img.image_path == str(red) for img in images)
    # one index holds both stores: two texts (the image document's text too) and one image
    assert (text_store.index.count("text"), text_store.index.count("image")) == (2, 1)

    with FakeGemini() as server:
        server.default = Reply.answer("A red square [1].")
        llm = GoogleGenAI(
            model="gemini-2.5-flash", api_key="li-key", max_retries=0,
            http_options=genai_types.HttpOptions(base_url=server.url, timeout=5000),
        )
        engine = RetrieverQueryEngine.from_args(retriever, llm=llm, multimodal=True)
        resp = engine.query("What colour is the square?")
        assert "red square" in str(resp)
        assert [img for _, img in server.requests[-1].images] == [red.read_bytes()]


def test_nodes_without_embeddings_are_embedded_by_the_index_model(embedder) -> None:
    store = MultiModalVectorStore(embed_model=OpenCLIPEmbedding(embedder=embedder))
    store.add([TextNode(id_="n1", text="alpha"), TextNode(id_="n2", text="beta")])
    vec = embedder.embed_query("beta").tolist()
    assert store.query(VectorStoreQuery(query_embedding=vec, similarity_top_k=1)).ids == ["n2"]
    with pytest.raises(InvalidInputError, match="not fetched"):
        store.add([ImageNode(id_="u", image_url="http://example.com/x.png")])


def test_settings_embed_model_is_not_needed_for_an_existing_index(embedder, tmp_path: Path) -> None:
    clip = OpenCLIPEmbedding(embedder=embedder)
    first = MultiModalVectorStore(path=str(tmp_path / "ix"), embed_model=clip)
    first.add([TextNode(id_="n1", text="alpha")])
    first.close()
    again = MultiModalVectorStore(path=str(tmp_path / "ix"))  # loads the index's model
    assert again.get_nodes(node_ids=["n1"])[0].get_content() == "alpha"
    assert Settings is not None


def test_nodes_split_from_reader_documents_get_stable_ids(embedder, tmp_path: Path) -> None:
    """Nodes LlamaIndex's splitter cuts from MMRagReader documents get ids derived from the
    document, so inserting the same file twice replaces them; their NEXT / PREVIOUS links name the
    stored ids, and nodes with ids of their own keep them."""
    from llama_index.core.node_parser import SentenceSplitter

    from mm_rag_plugin.integrations.llama_index import MMRagReader

    page = tmp_path / "notes.md"
    page.write_text("# Notes\n\n" + " ".join(f"Sentence number {i} about inverter fault codes." for i in range(60)))
    store = MultiModalVectorStore(path=str(tmp_path / "ix"), embed_model=OpenCLIPEmbedding(embedder=embedder))
    splitter = SentenceSplitter(chunk_size=64, chunk_overlap=0)
    runs = []
    for _ in range(2):
        nodes = splitter.get_nodes_from_documents(MMRagReader().load_data(str(page)))
        assert len(nodes) > 2
        runs.append(store.add(nodes))
    assert runs[0] == runs[1] and len(set(runs[0])) == len(runs[0])
    assert store.index.count() == len(runs[0])
    stored = {n.node_id: n for n in store.get_nodes(runs[0])}
    linked = [n for n in stored.values() if n.next_node is not None]
    assert linked and all(n.next_node.node_id in stored for n in linked)
    own = TextNode(id_="mine", text="my own node", relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="d")})
    assert store.add([own]) == ["mine"]
    store.close()


def test_as_index_searches_a_reopened_store_with_its_own_model(embedder, tmp_path: Path) -> None:
    """``VectorStoreIndex.from_vector_store(store)`` would take ``Settings.embed_model`` (OpenAI);
    ``store.as_index()`` passes the index's model and leaves ``Settings`` alone."""
    clip = OpenCLIPEmbedding(embedder=embedder)
    red = _png(tmp_path / "red.png", "red")
    first = MultiModalVectorStore(path=str(tmp_path / "ix"), embed_model=clip)
    first.add([TextNode(id_="n1", text="alpha invoice"), TextNode(id_="n2", text="beta cat"),
               ImageNode(id_="img", image_path=str(red), text="a red square")])
    first.close()
    before = Settings._embed_model
    store = MultiModalVectorStore(path=str(tmp_path / "ix"))  # no model given: the index loads its own
    index = store.as_index()
    assert isinstance(index, VectorStoreIndex) and isinstance(store.embed_model, OpenCLIPEmbedding)
    found = index.as_retriever(similarity_top_k=1, vector_store_query_mode="hybrid").retrieve("beta cat")
    assert [n.node.node_id for n in found] == ["n2"]
    both = store.as_index(multimodal=True).as_retriever(similarity_top_k=1, image_similarity_top_k=1).retrieve("red")
    assert [n.node.node_id for n in both if isinstance(n.node, ImageNode)] == ["img"]
    assert Settings._embed_model is before
    store.close()


def test_as_index_without_a_model_says_what_to_pass(tmp_path: Path) -> None:
    store = MultiModalVectorStore(path=str(tmp_path / "kw"), keyword_only=True)
    with pytest.raises(ConfigurationError, match=r"kw.*as_index\(embed_model=\.\.\.\)"):
        store.as_index()
    assert isinstance(store.as_index(embed_model=MockEmbedding(embed_dim=4)), VectorStoreIndex)
    store.close()
