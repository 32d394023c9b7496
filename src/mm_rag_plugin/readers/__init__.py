"""Readers (framework-free core): PDF, HTML, Markdown, DOCX, PPTX, XLSX/CSV, images and text into chunks.

Names are imported lazily, so ``import mm_rag_plugin.readers`` loads no parser; each reader imports
its parser (pypdfium2, bs4, python-docx, markdown-it-py, pytesseract) when constructed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._base import BaseReader, ReaderConfig
    from .blobs import BlobStore
    from .chunking import TextSplitter
    from .docx import DocxReader
    from .html import HtmlReader
    from .image import ImageReader
    from .loader import DocumentLoader, load_documents, read_file
    from .markdown import MarkdownReader
    from .ocr import OcrResult, TesseractOCR
    from .pdf import PdfReader
    from .pptx import PptxReader
    from .spreadsheet import CsvReader, XlsxReader
    from .text import TextReader

_LAZY: dict[str, str] = {
    "BaseReader": "._base",
    "ReaderConfig": "._base",
    "BlobStore": ".blobs",
    "TextSplitter": ".chunking",
    "DocxReader": ".docx",
    "HtmlReader": ".html",
    "ImageReader": ".image",
    "DocumentLoader": ".loader",
    "load_documents": ".loader",
    "read_file": ".loader",
    "MarkdownReader": ".markdown",
    "OcrResult": ".ocr",
    "TesseractOCR": ".ocr",
    "PdfReader": ".pdf",
    "PptxReader": ".pptx",
    "CsvReader": ".spreadsheet",
    "XlsxReader": ".spreadsheet",
    "TextReader": ".text",
}

__all__ = [
    "BaseReader",
    "BlobStore",
    "CsvReader",
    "DocumentLoader",
    "DocxReader",
    "HtmlReader",
    "ImageReader",
    "MarkdownReader",
    "OcrResult",
    "PdfReader",
    "PptxReader",
    "ReaderConfig",
    "TesseractOCR",
    "TextReader",
    "TextSplitter",
    "XlsxReader",
    "load_documents",
    "read_file",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
