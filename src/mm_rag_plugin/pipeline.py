"""``MultiModalRAG``: the whole pipeline behind one object (read -> embed -> index -> search -> answer).

    from mm_rag_plugin import MultiModalRAG

    with MultiModalRAG(".mm_rag") as rag:
        rag.ingest(["docs/"])
        hits = rag.search("the inverter fault screen", k=5)
        print(rag.ask("What does fault E-217 mean?").text)

When the embedding model cannot be loaded (offline machine, no local checkpoint), the pipeline
still works with keyword search (BM25 over text, OCR text, alt text and captions) and says why
in :attr:`MultiModalRAG.notice`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigurationError, ModelLoadError
from .types import Answer, Embedder, FileError, Hit, ImageInput

logger = logging.getLogger(__name__)

__all__ = ["IngestSummary", "KeywordOnlyEmbedder", "MultiModalRAG"]

_SETTINGS = "mm_rag.json"


class KeywordOnlyEmbedder:
    """Stands in for a model when none can be loaded: zero vectors, dense search switched off."""

    def __init__(self, dim: int = 1) -> None:
        self.dim = dim

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts), self.dim), np.float32)

    def embed_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        return np.zeros((len(images), self.dim), np.float32)


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What :meth:`MultiModalRAG.ingest` did, file by file and chunk by chunk."""

    files: int = 0  # files read successfully
    texts: int = 0  # text chunks read
    images: int = 0  # image chunks read
    duplicate_images: int = 0  # images whose bytes were already seen (indexed once per place)
    added: int = 0  # new points written to the index
    unchanged: int = 0  # already indexed with the same content
    deleted: int = 0  # stale points of changed files removed
    errors: tuple[FileError, ...] = field(default_factory=tuple)
    keyword_only: bool = False

    @property
    def ok(self) -> bool:
        """True when at least one file was read (what the CLI's exit code means)."""
        return self.files > 0


class MultiModalRAG:
    """Ingest documents, search them by text or image, and answer questions with citations.

    *index_dir*: where the index lives (default ``./.mm_rag``); image bytes extracted from
    documents go to ``<index_dir>/blobs``. *embedder*: an embedder to use, or ``"auto"`` to build an
    :class:`~mm_rag_plugin.OpenCLIPEmbedder` from *model_name* / *pretrained* / *checkpoint* /
    *device* (or ``$MM_RAG_MODEL`` ...), falling back to keyword-only search when it cannot be
    loaded, or ``None`` for keyword-only on purpose. *url* / *api_key*: a Qdrant server instead of
    the embedded index. *generator*: an answer generator, or ``"auto"`` (Gemini when
    ``GOOGLE_API_KEY`` / ``GEMINI_API_KEY`` is set, else the extractive fallback).
    *retriever_options* go to :class:`~mm_rag_plugin.FusedRetriever`, *reader_options* to the
    readers (``ocr``, ``chunk_size`` ...). *quantization* (``"int8"`` / ``"binary"``): keep the
    dense vectors quantized in RAM (see :class:`~mm_rag_plugin.MultiModalIndex`).
    """

    def __init__(
        self,
        index_dir: str | os.PathLike[str] = ".mm_rag",
        *,
        embedder: Embedder | str | None = "auto",
        model_name: str | None = None,
        pretrained: str | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        device: str | None = None,
        engine: str = "auto",
        url: str | None = None,
        api_key: str | None = None,
        generator: Any = "auto",
        retriever_options: Mapping[str, Any] | None = None,
        reader_options: Mapping[str, Any] | None = None,
        show_progress: bool = True,
        quantization: str | None = None,
    ) -> None:
        from .retrievers import FusedRetriever, MultiModalIndex

        self.index_dir = Path(index_dir)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.show_progress = show_progress
        self.reader_options = dict(reader_options or {})
        self.reader_options.setdefault("blob_dir", str(self.index_dir / "blobs"))
        self.notice: str | None = None
        settings = self._read_settings()

        model: Embedder | None
        if embedder == "auto":
            model = self._load_model(model_name, pretrained, checkpoint, device)
        elif isinstance(embedder, str):
            raise ConfigurationError(f"embedder must be an embedder, 'auto' or None, got {embedder!r}")
        else:
            model = embedder
            if model is None:
                self.notice = "keyword-only search: no embedding model was requested"
        if model is not None and settings.get("keyword_only"):
            self.notice = (
                f"the index in {self.index_dir} was built without an embedding model, so search is "
                "keyword-only; ingest into a new --index folder to get image and semantic search"
            )
            model = None
        self.keyword_only = model is None
        if self.keyword_only:
            dim = int(settings.get("dim") or 1)
            model = KeywordOnlyEmbedder(dim)
        assert model is not None
        self.embedder: Embedder = model
        index_path = None if url else self.index_dir / "index"
        self.index = MultiModalIndex(
            index_path,
            embedder=self.embedder,
            engine=engine,  # type: ignore[arg-type]
            url=url,
            api_key=api_key,
            show_progress=show_progress,
            quantization=quantization,  # type: ignore[arg-type]
        )
        if not settings:
            self._write_settings({"keyword_only": self.keyword_only, "dim": self.index.dim, "model": self.model_name})
        options = dict(retriever_options or {})
        if self.keyword_only:
            options["weights"] = {**options.get("weights", {}), "dense_text": 0.0, "dense_image": 0.0}
        self.retriever = FusedRetriever(self.index, self.embedder, **options)
        self._generator = generator

    # ------------------------------------------------------------------ setup
    def _load_model(self, model_name, pretrained, checkpoint, device) -> Embedder | None:
        from .embeddings.open_clip import OpenCLIPEmbedder

        try:
            return OpenCLIPEmbedder(
                model_name, pretrained, checkpoint=checkpoint, device=device
            )
        except ModelLoadError as exc:
            self.notice = (
                f"keyword-only search (BM25 over text and OCR): could not load the embedding model ({exc.reason}). "
                "To fix: put the weights on this machine and set MM_RAG_MODEL=local-dir:/path/to/folder "
                "(open_clip_config.json + weights) or MM_RAG_CHECKPOINT=/path/to/weights.bin, "
                "or pass --model / --checkpoint."
            )
            logger.warning("%s", self.notice)
            return None

    def _read_settings(self) -> dict[str, Any]:
        path = self.index_dir / _SETTINGS
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{path}: unreadable index settings ({exc})") from exc

    def _write_settings(self, data: dict[str, Any]) -> None:
        tmp = self.index_dir / (_SETTINGS + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.index_dir / _SETTINGS)

    @property
    def model_name(self) -> str | None:
        return None if self.keyword_only else getattr(self.embedder, "model_name", type(self.embedder).__name__)

    @property
    def generator(self) -> Any:
        if self._generator == "auto":
            from .generators import default_generator

            self._generator = default_generator()
        return self._generator

    # ------------------------------------------------------------------ work
    def ingest(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        workers: int | None = None,
        timeout: float | None = 300.0,
        **reader_options: Any,
    ) -> IngestSummary:
        """Read files/folders/globs and index them. Re-ingesting unchanged files adds nothing;
        changed files replace their old chunks. Bad files are reported in ``errors``, never fatal."""
        from .readers import load_documents

        options = {**self.reader_options, **reader_options}
        read = load_documents(paths, workers=workers, timeout=timeout, show_progress=self.show_progress, **options)
        report = self.index.add(read, show_progress=self.show_progress)
        read_errors = {e.source for e in read.errors}
        sources = {c.source for c in read.chunks}
        return IngestSummary(
            files=len(sources - read_errors) or len(sources),
            texts=len(read.texts),
            images=len(read.images),
            duplicate_images=sum(1 for c in read.images if c.metadata.get("duplicate_of")),
            added=report.added,
            unchanged=report.unchanged,
            deleted=report.deleted,
            errors=tuple(report.errors),
            keyword_only=self.keyword_only,
        )

    def search(
        self,
        query: str | None = None,
        *,
        image: ImageInput | None = None,
        k: int = 5,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """Fused dense + BM25 search by text, image, or both (keyword-only: text)."""
        if image is not None and self.keyword_only:
            raise ConfigurationError(f"searching by image needs the embedding model; {self.notice}")
        return self.retriever.retrieve(query, image=image, k=k, filters=filters)

    def ask(
        self, question: str, *, k: int = 5, image: ImageInput | None = None, filters: Mapping[str, Any] | None = None
    ) -> Answer:
        """Retrieve for *question* and answer it with citations (Gemini, or extractive without a key)."""
        hits = self.search(question, image=image, k=k, filters=filters)
        return self.generator.generate(question, hits)

    def info(self) -> dict[str, Any]:
        """Index statistics and configuration."""
        return {
            "index_dir": str(self.index_dir.resolve()),
            "engine": self.index.engine,
            "items": len(self.index),
            "texts": self.index.count("text"),
            "images": self.index.count("image"),
            "model": self.model_name,
            "dim": self.index.dim,
            "keyword_only": self.keyword_only,
        }

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> MultiModalRAG:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MultiModalRAG({str(self.index_dir)!r}, model={self.model_name!r}, engine={self.index.engine!r})"
