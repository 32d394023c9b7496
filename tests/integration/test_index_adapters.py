"""LangChain and LlamaIndex retrievers over one FusedRetriever: standard suite, query engine, parity."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests
from llama_index.core.schema import ImageNode, QueryBundle, TextNode

from mm_rag_plugin.ids import content_hash
from mm_rag_plugin.integrations.langchain.retrievers import MultiModalRetriever as LCRetriever
from mm_rag_plugin.integrations.llama_index.retrievers import MultiModalRetriever as LIRetriever
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.testing import draw_shape
from mm_rag_plugin.types import ImageChunk, TextChunk


@pytest.fixture(scope="module")
def core(tmp_path_factory, embedder):
    d = tmp_path_factory.mktemp("adapters")
    chunks = [TextChunk(id=f"t{i}", text=f"note {i} about a {c} {k}", source="notes.txt", position=i)
              for i, (c, k) in enumerate([("red", "circle"), ("blue", "square"), ("green", "triangle"), ("red", "square")])]
    for color, kind in [("red", "circle"), ("blue", "square"), ("yellow", "triangle")]:
        p = d / f"{color}_{kind}.png"
        draw_shape(color, kind).save(p)
        chunks.append(ImageChunk(id=p.stem, source=str(p), image_path=str(p), content_hash=content_hash(p.read_bytes()),
                                 caption=f"a {color} {kind}"))
    ix = MultiModalIndex(d / "index", embedder=embedder, show_progress=False)
    ix.add(chunks)
    yield FusedRetriever(ix)
    ix.close()


class TestLangChainRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _core(self, core):
        type(self)._fused = core

    @property
    def retriever_constructor(self) -> type[LCRetriever]:
        return LCRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"retriever": self._fused}

    @property
    def retriever_query_example(self) -> str:
        return "a red circle"


def test_langchain_documents_carry_ids_scores_and_image_paths(core):
    docs = LCRetriever(retriever=core, k=7).invoke("a red circle")
    assert all(isinstance(d, Document) and d.id for d in docs)
    images = [d for d in docs if d.metadata["kind"] == "image"]
    assert images and all(d.metadata["image_path"].endswith(".png") for d in images)
    assert docs[0].metadata["score"] >= docs[-1].metadata["score"]
    assert "ranks" in docs[0].metadata
    only = LCRetriever(retriever=core, k=7).invoke("a red circle", filters={"kind": "image"})
    assert {d.metadata["kind"] for d in only} == {"image"}


async def test_llama_index_retriever_returns_text_and_image_nodes(core):
    nodes = LIRetriever(core, similarity_top_k=7).retrieve("a red circle")
    assert any(isinstance(n.node, ImageNode) for n in nodes)
    assert any(isinstance(n.node, TextNode) and not isinstance(n.node, ImageNode) for n in nodes)
    assert [n.score for n in nodes] == sorted((n.score for n in nodes), reverse=True)
    again = await LIRetriever(core, similarity_top_k=7).aretrieve("a red circle")
    assert [n.node.node_id for n in again] == [n.node.node_id for n in nodes]
    probe = nodes[0].node
    by_image = LIRetriever(core, similarity_top_k=2, filters={"kind": "image"}).retrieve(
        QueryBundle(query_str="", image_path=next(n.node for n in nodes if isinstance(n.node, ImageNode)).image_path)
    )
    assert by_image and isinstance(by_image[0].node, ImageNode)
    assert probe.node_id


def test_llama_index_retriever_inside_a_query_engine(core):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    engine = RetrieverQueryEngine.from_args(LIRetriever(core, similarity_top_k=3), llm=MockLLM())
    response = engine.query("a red circle")
    assert len(response.source_nodes) == 3
    assert response.source_nodes[0].node.node_id == core.retrieve("a red circle", k=3)[0].chunk.id


@pytest.mark.parametrize("query", ["a red circle", "blue square note", "yellow triangle"])
def test_both_adapters_return_the_same_ids_in_the_same_order(core, query):
    lc = LCRetriever(retriever=core, k=5).invoke(query)
    li = LIRetriever(core, similarity_top_k=5).retrieve(query)
    assert [d.id for d in lc] == [n.node.node_id for n in li]
    assert [d.metadata["score"] for d in lc] == pytest.approx([n.score for n in li])
    assert [d.id for d in lc] == [h.chunk.id for h in core.retrieve(query, k=5)]


def test_unknown_options_and_bad_k_are_errors_not_ignored(core):
    from mm_rag_plugin.errors import ConfigurationError, InvalidInputError

    with pytest.raises(ConfigurationError, match=r"unknown option\(s\) 'search_kwargs' \(search_kwargs: pass k= and filters="):
        LCRetriever(retriever=core, search_kwargs={"k": 2})
    with pytest.raises(ConfigurationError, match=r"'fliters'; accepted: .*filters.*k.*retriever"):
        LCRetriever(retriever=core, fliters={"kind": "image"})
    for k in (0, -1, True, 2.5):
        with pytest.raises(ConfigurationError, match="k must be a whole number >= 1"):
            LCRetriever(retriever=core, k=k)
        with pytest.raises(ConfigurationError, match="similarity_top_k must be a whole number >= 1"):
            LIRetriever(core, similarity_top_k=k)
    lc = LCRetriever(retriever=core, k=3)
    with pytest.raises(ConfigurationError, match="k must be a whole number >= 1, got 0"):
        lc.invoke("a red circle", k=0)  # not silently the default
    with pytest.raises(ConfigurationError, match=r"unknown option\(s\) 'top_k' \(top_k: use k=\)"):
        lc.invoke("a red circle", top_k=2)
    assert len(lc.invoke("a red circle", k=1)) == 1
    with pytest.raises(ConfigurationError, match=r"'k' \(k: use similarity_top_k=\)"):
        LIRetriever(core, k=2)
    with pytest.raises(ConfigurationError, match="needs a FusedRetriever"):
        LIRetriever(core.index)
    # malformed filters fail when the retriever is built, and per call are passed on, not dropped
    with pytest.raises(InvalidInputError, match="filter 'page'"):
        LCRetriever(retriever=core, filters={"page": {"above": 2}})
    with pytest.raises(InvalidInputError, match="filter 'page'"):
        LIRetriever(core, filters={"page": {"above": 2}})
    with pytest.raises(InvalidInputError, match="filter 'page'"):
        lc.invoke("a red circle", filters={"page": {"above": 2}})
    assert {d.metadata["kind"] for d in lc.invoke("a red circle", filters={"kind": "text"})} == {"text"}


def test_fused_retriever_options_are_checked(core):
    from mm_rag_plugin.errors import ConfigurationError

    for options, message in (
        ({"k": 0}, "k and prefetch_k must be >= 1"),
        ({"weights": {"dense": 1.0}}, "weights: unknown list 'dense'"),
        ({"quotas": {"images": 1}}, "quotas are per kind"),
        ({"quotas": {"image": -1}}, "quotas must be >= 0"),
        ({"fusion": "both"}, "fusion must be 'client' or 'server'"),
    ):
        with pytest.raises(ConfigurationError, match=message):
            FusedRetriever(core.index, **options)
    with pytest.raises(TypeError, match="search_kwargs"):
        FusedRetriever(core.index, search_kwargs={"k": 2})
