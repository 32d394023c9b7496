"""One searcher behind every entry point: the same index, query and options rank the same way
through ``FusedRetriever``, the LangChain retriever and vector store retriever, and the
LlamaIndex retriever and vector store retriever (dense, hybrid and MMR; with and without a filter).
"""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from llama_index.core import VectorStoreIndex
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

from mm_rag_plugin import MultiModalRAG
from mm_rag_plugin.integrations.langchain.retrievers import MultiModalRetriever as LCRetriever
from mm_rag_plugin.integrations.langchain.vectorstores import MultiModalVectorStore as LCStore
from mm_rag_plugin.integrations.llama_index.embeddings import OpenCLIPEmbedding
from mm_rag_plugin.integrations.llama_index.retrievers import MultiModalRetriever as LIRetriever
from mm_rag_plugin.integrations.llama_index.vector_stores import MultiModalVectorStore as LIStore
from mm_rag_plugin.retrievers import FusedRetriever

QUERIES = ("a photo of a cat", "layout detection of documents", "rocket launch")
K = 6


@pytest.fixture(scope="module")
def index(tmp_path_factory, embedder, shared_data):
    """Shared images and real PDFs with figures, ingested with the tiny model (no OCR: quick)."""
    docs = tmp_path_factory.mktemp("docs")
    for image in sorted((shared_data / "clip_skimage" / "images").iterdir())[:8]:
        shutil.copy(image, docs / image.name)
    for name in ("unst__embedded-images.pdf", "unst__layout-parser-paper-fast.pdf", "ppsf__google-doc-document.pdf"):
        shutil.copy(shared_data / "pdfs" / "text_figures" / name, docs / name)
    rag = MultiModalRAG(tmp_path_factory.mktemp("ix") / "index", embedder=embedder, show_progress=False)
    summary = rag.ingest(docs, workers=0, ocr=False)
    assert not summary.errors and rag.index.count("image") >= 8 and rag.index.count("text") >= 10
    yield rag.index
    rag.close()


def _chunk_ids_lc(docs) -> list[str]:
    return [d.metadata["id"] for d in docs]


def _chunk_ids_li(nodes) -> list[str]:
    return [n.node.metadata["id"] for n in nodes]


# the same options, spelled as each entry point spells them
CASES = {
    "dense": (
        {"mode": "dense", "dedupe": False, "near_duplicate_threshold": None},
        ("similarity", {}),
        ("default", {}),
    ),
    "hybrid": (
        {"mode": "hybrid"},  # the retrievers' defaults: duplicate and near-duplicate removal on
        ("hybrid", {}),
        ("hybrid", {}),
    ),
    "hybrid-plain": (
        {"mode": "hybrid", "dedupe": False, "near_duplicate_threshold": None, "weights": {"bm25": 2.0}},
        ("hybrid", {"dedupe": False, "near_duplicate_threshold": None, "weights": {"bm25": 2.0}}),
        ("hybrid", {"dedupe": False, "near_duplicate_threshold": None, "weights": {"bm25": 2.0}}),
    ),
    "mmr": (
        {"mode": "mmr", "prefetch_k": 20, "lambda_mult": 0.3, "dedupe": False, "near_duplicate_threshold": None},
        ("mmr", {"fetch_k": 20, "lambda_mult": 0.3}),
        ("mmr", {"mmr_prefetch_k": 20, "mmr_threshold": 0.3}),
    ),
    "dense-deduped": (
        {"mode": "dense"},  # dense, with the retrievers' post-processing asked for in the stores
        ("similarity", {"dedupe": True, "near_duplicate_threshold": 0.98}),
        ("default", {"dedupe": True, "near_duplicate_threshold": 0.98}),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kind", [None, "image"])
def test_every_entry_point_ranks_alike(index, case, kind):
    fused_opts, (lc_type, lc_kwargs), (li_mode, li_kwargs) = CASES[case]
    fused = FusedRetriever(index, k=K, **fused_opts)
    lc_store = LCStore(index=index)
    li_store = LIStore(index=index)
    li_index = VectorStoreIndex.from_vector_store(li_store, embed_model=OpenCLIPEmbedding(embedder=index.embedder))
    filters = {"kind": kind} if kind else None
    li_filters = MetadataFilters(filters=[MetadataFilter(key="kind", value=kind)]) if kind else None
    lc_search = {"k": K, **lc_kwargs, **({"filter": filters} if filters else {})}
    for query in QUERIES:
        expected = [h.chunk.id for h in fused.retrieve(query, filters=filters)]
        assert expected, (case, kind, query)
        if kind:
            assert all(h.chunk.kind == kind for h in fused.retrieve(query, filters=filters))
        through = {
            "langchain MultiModalRetriever": [d.id for d in LCRetriever(retriever=fused, k=K, filters=filters).invoke(query)],
            "llama_index MultiModalRetriever": [n.node.node_id for n in LIRetriever(fused, similarity_top_k=K, filters=filters).retrieve(query)],
            "langchain store.as_retriever": _chunk_ids_lc(
                lc_store.as_retriever(search_type=lc_type, search_kwargs=lc_search).invoke(query)
            ),
            "llama_index VectorStoreIndex.as_retriever": _chunk_ids_li(
                li_index.as_retriever(
                    similarity_top_k=K, vector_store_query_mode=li_mode, filters=li_filters, vector_store_kwargs=li_kwargs
                ).retrieve(query)
            ),
        }
        for name, got in through.items():
            assert got == expected, f"{name} ({case}, kind={kind}, {query!r})"


def test_the_options_change_the_ranking(index):
    """The cases above are not all the same ranking: the options are applied."""
    query = QUERIES[0]
    rankings = {
        case: tuple(h.chunk.id for h in FusedRetriever(index, k=K, **CASES[case][0]).retrieve(query))
        for case in CASES
    }
    assert len(set(rankings.values())) >= 3, rankings
