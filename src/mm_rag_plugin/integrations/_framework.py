"""What the LangChain and LlamaIndex adapters share: opening the index, a text-only embedder over
a framework's own embedding model, and :func:`metadata_chunk`, which each framework's one converter
(``langchain._convert.document_to_chunk``, ``llama_index._convert.node_to_chunk``) uses for the items
its vector store keeps with their metadata verbatim."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._payload import payload_to_chunk
from ..errors import ConfigurationError, IndexNotFoundError, InvalidInputError
from ..ids import content_hash, file_sha256, stable_id
from ..retrievers.index import MultiModalIndex
from ..retrievers.manifest import describe_model
from ..types import Chunk, ImageChunk, TextChunk

__all__ = ["ForeignTextEmbedder", "image_key", "metadata_chunk", "open_store_index"]

#: Chunk fields taken from a framework item's metadata, with the types they must have.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "source": (str,), "page": (int,), "position": (int,), "section": (str,), "prev_id": (str,), "next_id": (str,),
    "image_path": (str,), "mime_type": (str,), "width": (int,), "height": (int,), "alt_text": (str,),
    "caption": (str,), "ocr_text": (str,), "content_hash": (str,), "ocr_confidence": (int, float),
}
#: Largest image file hashed for duplicate detection when added by path.
_MAX_HASHED = 256 << 20


class _ProbedDim:
    """``dim`` of a framework model, found by embedding one probe text on first use."""

    _dim: int | None = None

    def embed_query(self, text: str) -> np.ndarray:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed_query("dimension").shape[0])
        return self._dim


class ForeignTextEmbedder(_ProbedDim):
    """A framework's text embedding model (any LangChain ``Embeddings`` or LlamaIndex
    ``BaseEmbedding``) as the index's model: text only, identified by its class and model name."""

    def __init__(self, model: Any, framework: str) -> None:
        self.model = model
        self.framework = framework
        self._dim: int | None = None

    @property
    def name(self) -> str:
        cls = type(self.model)
        return f"{self.framework}:{cls.__module__}.{cls.__qualname__}"

    def identity(self) -> dict[str, Any]:
        tag = next((getattr(self.model, a) for a in ("model", "model_name") if isinstance(getattr(self.model, a, None), str)), None)
        return {"name": self.name, "pretrained": tag, "dim": self.dim, "weights": None}

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if hasattr(self.model, "embed_documents"):
            rows = self.model.embed_documents(list(texts))
        else:
            rows = self.model.get_text_embedding_batch(list(texts))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)

    def embed_query(self, text: str | None = None, *, image: Any = None) -> np.ndarray:
        if image is not None or not text:
            raise ConfigurationError(f"{self.name} embeds text only; searching by image needs a CLIP model")
        vec = self.model.embed_query(text) if hasattr(self.model, "embed_query") else self.model.get_query_embedding(text)
        return np.asarray(vec, dtype=np.float32).reshape(-1)

    def embed_images(self, images: Sequence[Any], *, on_error: str = "raise") -> Any:
        raise ConfigurationError(f"{self.name} embeds text only; images need a CLIP model (OpenCLIPEmbeddings / OpenCLIPEmbedding)")


class FrameworkTextModel(_ProbedDim):
    """A framework's text embedding model (a LangChain ``Embeddings`` or a LlamaIndex
    ``BaseEmbedding``) as an index's text model beside CLIP (:class:`~mm_rag_plugin.types.TextEmbedder`):
    rows L2-normalised, identified by its class and model name (``name=`` overrides the model name,
    for a model whose object does not say which weights it holds)."""

    def __init__(self, model: Any, framework: str, *, name: str | None = None) -> None:
        self.model = model
        self.framework = framework
        self.model_name = name or next(
            (getattr(model, a) for a in ("model", "model_name") if isinstance(getattr(model, a, None), str)), None
        )
        self._dim: int | None = None

    def identity(self) -> dict[str, Any]:
        cls = type(self.model)
        return {"kind": self.framework, "name": f"{cls.__module__}.{cls.__qualname__}", "model": self.model_name}

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        from ..embeddings.text_model import unit_rows

        if hasattr(self.model, "embed_documents"):
            rows = self.model.embed_documents(list(texts))
        else:
            rows = self.model.get_text_embedding_batch(list(texts))
        return unit_rows(np.asarray(rows, dtype=np.float32).reshape(len(texts), -1), self.framework)

    def embed_query(self, text: str) -> np.ndarray:
        from ..embeddings.text_model import unit_rows

        vec = self.model.embed_query(text) if hasattr(self.model, "embed_query") else self.model.get_query_embedding(text)
        return unit_rows(vec, self.framework)[0]


def as_text_model(model: Any, framework: str) -> Any:
    """A store's ``text_embedder=``: a :class:`~mm_rag_plugin.types.TextEmbedder` as it is, a
    framework's embedding model wrapped (:class:`FrameworkTextModel`), ``None`` as it is."""
    if model is None or (callable(getattr(model, "identity", None)) and hasattr(model, "embed_documents")):
        return model
    return FrameworkTextModel(model, framework)


def open_store_index(
    embedder: Any,
    *,
    path: str | os.PathLike[str] | None = None,
    index: MultiModalIndex | None = None,
    create: bool = True,
    model_arg: str = "embedder=",
    text_embedder: Any = None,
    **kwargs: Any,
) -> MultiModalIndex:
    """The index a framework vector store works on: *index* as given (checked against *embedder*),
    or one opened at *path* / ``url=`` / ``client=`` (in memory when none). Without *embedder*, an
    existing index loads its own model. *model_arg* names the store's own model argument in
    errors (``embedding=`` for LangChain, ``embed_model=`` for LlamaIndex)."""
    if index is not None:
        if path is not None or any(kwargs.get(k) is not None for k in ("url", "client")):
            raise ConfigurationError("pass index= or path= / url= / client=, not both")
        if embedder is not None and not index.keyword_only and index.embedder is not embedder:
            index.attach(embedder)
        if text_embedder is not None and index.text_embedder is not text_embedder:
            index.attach_text(text_embedder)
        return index
    if text_embedder is not None:
        kwargs["text_embedder"] = text_embedder
    kwargs.setdefault("show_progress", False)
    if embedder is None and kwargs.get("dim") is None and not kwargs.get("keyword_only"):
        try:
            opened = MultiModalIndex(path, embedder=None, create=False, **kwargs)
        except IndexNotFoundError:
            if not create:
                raise
            raise ConfigurationError(
                f"{path if path is not None else 'a new in-memory index'}: a new index needs its model: pass "
                f"{model_arg} (a CLIP model embeds text and images), or dim= for vectors you supply, or keyword_only=True"
            ) from None
    else:
        opened = MultiModalIndex(path, embedder=embedder, create=create, **kwargs)
    try:
        if opened.embedder is None and not opened.keyword_search_only:
            model = opened.model or {}
            if model.get("name") is None:  # built from vectors the caller supplies (dim=): no model to load
                return opened
            if ":" in str(model.get("name")) and not str(model.get("name")).startswith("local-dir:"):
                raise ConfigurationError(
                    f"{opened.where}: the index was built with {describe_model(model)}; pass that embedding model"
                )
            from ..retrievers.manifest import load_model

            opened.attach(load_model(model))
        tm = opened.text_model
        if tm is not None and opened.text_embedder is None and tm.get("kind") == "sentence-transformers":
            from ..embeddings.text_model import load_text_model

            opened.attach_text(load_text_model(tm))  # any other text model must be passed (text_embedder=)
    except BaseException:
        opened.close()
        raise
    return opened


def _fields(meta: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: meta[k] for k, types in _FIELD_TYPES.items() if isinstance(meta.get(k), types) and not isinstance(meta.get(k), bool)}
    bbox = meta.get("bbox")
    if isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox):
        out["bbox"] = tuple(float(v) for v in bbox)
    return out


def metadata_chunk(key: str, text: str, metadata: Mapping[str, Any]) -> Chunk:
    """A framework item (text and metadata) as a chunk with id *key*, its metadata kept verbatim.
    ``kind: "image"`` with an ``image_path`` makes an image chunk (the text becomes its caption
    unless the metadata holds caption / OCR text)."""
    if not isinstance(text, str):
        raise InvalidInputError(f"item {key!r}: the text must be a str, got {type(text).__name__}")
    meta = dict(metadata)
    fields = _fields(meta)
    if meta.get("kind") == "image":
        if not fields.get("image_path"):
            raise InvalidInputError(f"item {key!r}: an image needs metadata['image_path']", source=str(meta.get("source", key)))
        if text and not any(fields.get(f) for f in ("caption", "alt_text", "ocr_text")):
            fields["caption"] = text
        image = payload_to_chunk({"kind": "image", **fields}, id=key)
        assert isinstance(image, ImageChunk)
        if not image.content_hash:
            image = dataclasses.replace(image, content_hash=_file_hash(image.image_path))
        return dataclasses.replace(image, metadata=meta)
    fields.setdefault("source", "")
    known = {k: v for k, v in fields.items() if k in TextChunk.__dataclass_fields__}
    return TextChunk(id=key, text=text, **known, metadata=meta)


def image_key(chunk: ImageChunk) -> str:
    """An id for an image added without one, from what it is: its bytes' hash and its source
    (a file too large to hash in memory is hashed from disk; one that cannot be read gets a
    random id, and fails when it is embedded)."""
    digest = chunk.content_hash
    if not digest:
        try:
            digest = file_sha256(chunk.image_path)
        except OSError:
            return str(uuid.uuid4())
    return stable_id("image", digest, chunk.source)


def _file_hash(path: str) -> str:
    try:
        p = Path(path)
        if p.is_file() and p.stat().st_size <= _MAX_HASHED:
            return content_hash(p.read_bytes())
    except OSError:
        pass
    return ""
