"""LangChain adapters (``pip install 'mm-rag-plugin[langchain]'``)."""

from __future__ import annotations

from ..._lazy import lazy_exports

# name -> submodule, imported on first access
_LAZY: dict[str, str] = {
    "MultiModalRetriever": ".retrievers",
    "MultiModalVectorStore": ".vectorstores",
    "MultiModalVectorStoreRetriever": ".vectorstores",
    "MultiModalSearchTool": ".tools",
    "MultiModalAnswerTool": ".tools",
    "create_multimodal_search_tool": ".tools",
    "create_multimodal_answer_tool": ".tools",
    "MMRagLoader": ".loaders",
    "OpenCLIPEmbeddings": ".embeddings",
    "LangChainTextModel": ".embeddings",
    "create_multimodal_rag_chain": ".chains",
    "documents_to_messages": ".chains",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
