"""An index reopened without a model loads its own for dense search."""

from __future__ import annotations

import pytest

from mm_rag_plugin import FusedRetriever, MultiModalIndex, TextChunk
from mm_rag_plugin.errors import ConfigurationError

TEXTS = ["a red circle on the left", "a blue bar on the right", "a green triangle on the left"]


def test_an_index_opened_without_a_model_loads_its_own(tmp_path, embedder) -> None:
    chunks = [TextChunk(id=f"t{i}", text=t, source=f"doc{i}.txt") for i, t in enumerate(TEXTS)]
    with MultiModalIndex(tmp_path / "ix", embedder=embedder) as ix:
        ix.add(chunks)
        want = [(h.chunk.source, h.ranks) for h in FusedRetriever(ix, k=3).retrieve("blue bar")]
    with MultiModalIndex(tmp_path / "ix", create=False) as ix:
        assert ix.embedder is None  # opening alone loads nothing (info, keyword search stay fast)
        got = [(h.chunk.source, h.ranks) for h in FusedRetriever(ix, k=3).retrieve("blue bar")]
        assert ix.embedder is not None and ix.embedder.model_name == embedder.model_name
    assert got == want and "dense_text" in got[0][1]


def test_an_index_of_supplied_vectors_still_needs_them(tmp_path) -> None:
    with MultiModalIndex(tmp_path / "ix", dim=8) as ix, pytest.raises(ConfigurationError, match="needs the index's model"):
        FusedRetriever(ix)


def test_a_store_without_a_model_names_its_own_argument(tmp_path) -> None:
    from mm_rag_plugin.integrations.langchain import MultiModalVectorStore as LangChainStore
    from mm_rag_plugin.integrations.llama_index import MultiModalVectorStore as LlamaIndexStore

    with pytest.raises(ConfigurationError, match=r"pass embedding= \(") as lc:
        LangChainStore(path=str(tmp_path / "lc"))
    assert "embedder=" not in str(lc.value)
    with pytest.raises(ConfigurationError, match=r"pass embed_model= \("):
        LlamaIndexStore(path=str(tmp_path / "li"))
    with pytest.raises(ConfigurationError, match=r"pass embedding= \("):
        LangChainStore()  # in memory
    assert not (tmp_path / "lc").exists() and not (tmp_path / "li").exists()  # a refused store creates nothing
