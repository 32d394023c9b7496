"""mm-rag-plugin: multimodal (text + image) retrieval-augmented generation.

Public names are imported lazily (PEP 562): ``import mm_rag_plugin`` loads no torch, open_clip,
qdrant-client, google-genai, LangChain or LlamaIndex; each is imported when the name needing it is
first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__
from .errors import (
    ConfigurationError,
    DecompressionBombError,
    GenerationError,
    IndexNotFoundError,
    InvalidInputError,
    MissingDependencyError,
    MMRagError,
    ModelLoadError,
    StoreError,
    UnsupportedFormatError,
)
from .types import Answer, Citation, FileError, Hit, ImageChunk, ItemError, ReadResult, TextChunk

if TYPE_CHECKING:
    from .embeddings.open_clip import EmbeddingResult, OpenCLIPEmbedder
    from .generators import ExtractiveGenerator, GeminiGenerator, PromptOptions, aanswer, answer
    from .pipeline import DeleteSummary, IngestSummary, MultiModalRAG
    from .readers import (
        CsvReader,
        DocumentLoader,
        DocxReader,
        HtmlReader,
        ImageReader,
        MarkdownReader,
        PdfReader,
        PptxReader,
        ReaderConfig,
        TesseractOCR,
        XlsxReader,
        load_documents,
    )
    from .retrievers import FusedRetriever, IngestReport, MultiModalIndex

# name -> module that defines it, imported on first access
_LAZY: dict[str, str] = {
    "OpenCLIPEmbedder": ".embeddings.open_clip",
    "EmbeddingResult": ".embeddings.open_clip",
    "GeminiGenerator": ".generators",
    "ExtractiveGenerator": ".generators",
    "PromptOptions": ".generators",
    "answer": ".generators",
    "aanswer": ".generators",
    "DocumentLoader": ".readers",
    "load_documents": ".readers",
    "ReaderConfig": ".readers",
    "TesseractOCR": ".readers",
    "PdfReader": ".readers",
    "HtmlReader": ".readers",
    "MarkdownReader": ".readers",
    "DocxReader": ".readers",
    "PptxReader": ".readers",
    "XlsxReader": ".readers",
    "CsvReader": ".readers",
    "ImageReader": ".readers",
    "MultiModalIndex": ".retrievers",
    "FusedRetriever": ".retrievers",
    "IngestReport": ".retrievers",
    "MultiModalRAG": ".pipeline",
    "IngestSummary": ".pipeline",
    "DeleteSummary": ".pipeline",
}

__all__ = [
    "Answer",
    "Citation",
    "ConfigurationError",
    "CsvReader",
    "DecompressionBombError",
    "DeleteSummary",
    "DocumentLoader",
    "DocxReader",
    "EmbeddingResult",
    "ExtractiveGenerator",
    "FileError",
    "FusedRetriever",
    "GeminiGenerator",
    "GenerationError",
    "Hit",
    "HtmlReader",
    "ImageChunk",
    "ImageReader",
    "IndexNotFoundError",
    "IngestReport",
    "IngestSummary",
    "InvalidInputError",
    "ItemError",
    "MMRagError",
    "MarkdownReader",
    "MissingDependencyError",
    "ModelLoadError",
    "MultiModalIndex",
    "MultiModalRAG",
    "OpenCLIPEmbedder",
    "PdfReader",
    "PptxReader",
    "PromptOptions",
    "ReadResult",
    "ReaderConfig",
    "StoreError",
    "TesseractOCR",
    "TextChunk",
    "UnsupportedFormatError",
    "XlsxReader",
    "__version__",
    "aanswer",
    "answer",
    "load_documents",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
