"""LangChain ``VectorStore`` over the multimodal index (Qdrant Edge in a folder, or Qdrant by URL).

``MultiModalVectorStore`` is what ``langchain_qdrant.QdrantVectorStore`` users expect, plus images:
``add_texts`` / ``add_documents`` / ``add_images(uris)``, ``from_texts`` / ``from_documents``,
similarity and MMR search (by text, vector, or image), ``delete(ids)``, ``get_by_ids``, the async
twins, and ``as_retriever`` whose default ``search_type="hybrid"`` fuses dense CLIP and BM25 lists by
RRF (``"similarity"``, ``"mmr"`` and ``"similarity_score_threshold"`` work as usual).

Filters: a dict over your documents' metadata (``{"lang": "en"}``, ``{"page": {"gte": 2}}``,
``{"$or": [...]}``; see :mod:`mm_rag_plugin.retrievers._filters`) or a qdrant ``models.Filter`` with
``metadata.``-prefixed keys, as langchain-qdrant users write it.

Documents keep the ids and metadata they were added with. Documents of an index ingested from files
(``mm-rag ingest``) carry the library's chunk metadata (``source``, ``page``, ``kind``,
``image_path`` ...) and are addressed by their point ids.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from ..._optional import require

require("langchain_core", extra="langchain")

from langchain_core.callbacks import (  # noqa: E402
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever  # noqa: E402
from pydantic import model_validator  # noqa: E402

from ...embeddings.batch import ChunkError, embed_chunks  # noqa: E402
from ...errors import ConfigurationError, InvalidInputError  # noqa: E402
from ...retrievers._filters import parse_filters  # noqa: E402
from ...retrievers.fusion import DEFAULT_RRF_K  # noqa: E402
from ...retrievers.index import MultiModalIndex  # noqa: E402
from ...retrievers.keyed import KeyedStore, Stored  # noqa: E402
from ...retrievers.search import STORE_DEFAULTS, SearchOptions  # noqa: E402
from ...types import Chunk  # noqa: E402
from .._framework import ForeignTextEmbedder, as_text_model, image_key, open_store_index  # noqa: E402
from ._convert import document_to_chunk, image_to_chunk  # noqa: E402

__all__ = ["MultiModalVectorStore", "MultiModalVectorStoreRetriever"]

FRAMEWORK = "langchain"


class MultiModalVectorStore(VectorStore):
    """A LangChain vector store of text and images in one CLIP space, with BM25 beside it.

    ``MultiModalVectorStore(embedding, path="index/")`` keeps the index in a folder (Qdrant Edge);
    ``url=`` / ``client=`` uses a Qdrant server; neither: in memory. ``index=`` wraps an open
    :class:`~mm_rag_plugin.MultiModalIndex` (one built by ``mm-rag ingest``, say). *embedding*:
    :class:`~.embeddings.OpenCLIPEmbeddings` (text and images), or any LangChain ``Embeddings``
    (text only). Without one, an existing index loads the model it was built with. The index
    records its model and refuses another. ``text_embedder``: a text model beside CLIP (any
    LangChain ``Embeddings``, or a :class:`~mm_rag_plugin.types.TextEmbedder`): a new index stores
    its vectors too and hybrid search adds its ``text_model`` list; an index that has one needs it.
    """

    def __init__(
        self,
        embedding: Embeddings | None = None,
        *,
        text_embedder: Any = None,
        path: str | None = None,
        index: MultiModalIndex | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        collection: str = "mm_rag",
        create: bool = True,
        rrf_k: float = DEFAULT_RRF_K,
        **index_kwargs: Any,
    ) -> None:
        from .embeddings import OpenCLIPEmbeddings

        if embedding is not None and not isinstance(embedding, Embeddings):
            raise ConfigurationError(f"embedding must be a LangChain Embeddings, got {type(embedding).__name__}")
        embedder: Any = None
        if isinstance(embedding, OpenCLIPEmbeddings):
            embedder = embedding.embedder
        elif embedding is not None:
            embedder = ForeignTextEmbedder(embedding, FRAMEWORK)
        self.index = open_store_index(
            embedder, path=path, index=index, url=url, api_key=api_key, client=client,
            collection=collection, create=create, model_arg="embedding=",
            text_embedder=as_text_model(text_embedder, FRAMEWORK), **index_kwargs,
        )
        if embedding is None and self.index.embedder is not None:
            embedding = OpenCLIPEmbeddings(embedder=self.index.embedder)  # type: ignore[arg-type]
        self._embedding = embedding
        self.store = KeyedStore(self.index)
        self.rrf_k = rrf_k

    # ------------------------------------------------------------------ basics
    @property
    def embeddings(self) -> Embeddings | None:
        return self._embedding

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # scores are cosine similarities in [-1, 1]
        return lambda score: max(0.0, min(1.0, (1.0 + float(score)) / 2.0))

    def close(self) -> None:
        """Release the index (its folder lock); an index passed as ``index=`` is closed too."""
        self.index.close()

    def __enter__(self) -> MultiModalVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store *texts*; returns their ids (generated UUIDs where none are given)."""
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise InvalidInputError(f"got {len(texts)} texts but {len(metadatas)} metadatas")
        docs = [Document(page_content=t, metadata=dict(metadatas[i]) if metadatas else {}) for i, t in enumerate(texts)]
        return self.add_documents(docs, ids=ids, **kwargs)

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Store documents (texts; and images: ``metadata["kind"] == "image"`` with ``image_path``)
        under ``ids=`` or their ``Document.id`` (else new UUIDs). An id already stored is replaced."""
        ids = kwargs.pop("ids", None)
        _no_options("add_documents", kwargs)
        if ids is not None and len(ids) != len(documents):
            raise InvalidInputError(f"got {len(documents)} documents but {len(ids)} ids")
        keys = [
            str(ids[i]) if ids is not None and ids[i] is not None else doc.id or str(uuid.uuid4())
            for i, doc in enumerate(documents)
        ]
        chunks: list[Chunk] = []
        for i, (key, doc) in enumerate(zip(keys, documents, strict=True)):
            if not isinstance(doc, Document):
                raise InvalidInputError(f"expected a LangChain Document, got {type(doc).__name__}", source=f"documents[{i}]")
            chunks.append(document_to_chunk(doc, key=key))
        return self._put(keys, chunks)

    def add_images(
        self,
        uris: Sequence[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store image files (LangChain's OpenCLIP convention). Each image's document has
        ``metadata["kind"] == "image"`` and ``metadata["image_path"]``, beside the metadata given.
        Without ``ids``, an image's id is derived from its bytes and its ``source`` (the metadata's,
        else the file's path), so adding the same image again replaces it. Unreadable images are
        reported together after the readable ones are stored."""
        _no_options("add_images", kwargs)
        if isinstance(uris, (str, bytes)):
            uris = [uris]
        uris = list(uris)
        for name, seq in (("metadatas", metadatas), ("ids", ids)):
            if seq is not None and len(seq) != len(uris):
                raise InvalidInputError(f"got {len(uris)} images but {len(seq)} {name}")
        keys: list[str] = []
        chunks: list[Chunk] = []
        for i, uri in enumerate(uris):
            meta = dict(metadatas[i]) if metadatas else {}
            given = ids[i] if ids else None
            chunk = image_to_chunk("" if given is None else str(given), uri, meta)
            if given is None:  # an id from what the image is: the same file added again replaces it
                chunk = dataclasses.replace(chunk, id=image_key(chunk))
            keys.append(chunk.id)
            chunks.append(chunk)
        return self._put(keys, chunks)

    def _put(self, keys: list[str], chunks: list[Chunk]) -> list[str]:
        if not chunks:
            return []
        vectors: list[np.ndarray | None] = [None] * len(chunks)
        errors: tuple[ChunkError, ...] = ()
        if not self.index.keyword_only:
            if self.index.embedder is None:
                raise ConfigurationError("this vector store has no embedding model (pass embedding=)")
            embedded = embed_chunks(self.index.embedder, chunks)
            vectors, errors = embedded.vectors, embedded.errors
        failed = {e.index for e in errors}
        good = [(k, c, v) for n, (k, c, v) in enumerate(zip(keys, chunks, vectors, strict=True)) if n not in failed]
        self.store.put(good, framework=FRAMEWORK)
        if errors:
            raise InvalidInputError(
                f"{len(errors)} of {len(chunks)} items could not be embedded ({len(good)} stored): "
                + "; ".join(str(e) for e in errors[:10])
            )
        return keys

    async def aadd_texts(
        self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *, ids: list[str] | None = None, **kwargs: Any
    ) -> list[str]:
        return await _in_thread(self.add_texts, list(texts), metadatas, ids=ids, **kwargs)

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        return await _in_thread(self.add_documents, documents, **kwargs)

    async def aadd_images(self, uris: Sequence[str], metadatas: list[dict[str, Any]] | None = None, **kwargs: Any) -> list[str]:
        return await _in_thread(self.add_images, uris, metadatas, **kwargs)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete the documents with these ids (unknown ids are ignored). ``delete(filter=...)``
        deletes every document the filter matches."""
        flt = kwargs.pop("filter", None)
        _no_options("delete", kwargs)
        if ids is None and flt is None:
            raise InvalidInputError("delete() needs ids or filter= (refusing to delete everything)")
        if ids is not None:
            self.store.delete([str(i) for i in ids])
        if flt is not None:
            self.store.delete_where(parse_filters(flt, scope="metadata"))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [self._document(s) for s in self.store.get([str(i) for i in ids])]

    # ------------------------------------------------------------------ searches
    def _document(self, stored: Stored) -> Document:
        return Document(id=stored.key, page_content=stored.chunk.text, metadata=stored.user_metadata)

    def _query_vector(self, query: str) -> list[float]:
        if self._embedding is None:
            raise ConfigurationError("dense search needs the index's model (pass embedding=)")
        return self._embedding.embed_query(query)

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        """Documents by cosine similarity to the query's embedding, with the similarity."""
        return self.similarity_search_with_score_by_vector(self._query_vector(query), k, **kwargs)

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, **kwargs)]

    def similarity_search_with_score_by_vector(
        self, embedding: Sequence[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents by cosine similarity to *embedding*, with the similarity. Options: ``filter``,
        ``score_threshold``, and the searcher's post-processing (``dedupe``,
        ``near_duplicate_threshold``, ``quotas``, ``min_similarity``; off by default here)."""
        flt = kwargs.pop("filter", None)
        options = _options("dense", "similarity_search", k, kwargs)
        found = self.store.search(options, vector=np.asarray(embedding), conditions=parse_filters(flt, scope="metadata"))
        return [(self._document(s), float(s.score or 0.0)) for s in found]

    def similarity_search_by_image(self, image: Any, k: int = 4, **kwargs: Any) -> list[Document]:
        """Documents (texts and images) nearest to an image (a path, bytes or PIL image)."""
        if self.index.embedder is None or isinstance(self.index.embedder, ForeignTextEmbedder):
            raise ConfigurationError("searching by image needs a CLIP model (embedding=OpenCLIPEmbeddings(...))")
        return self.similarity_search_by_vector(self.index.embedder.embed_query(None, image=image).tolist(), k, **kwargs)

    def hybrid_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """Dense (text->text, text->image) and BM25 lists fused by weighted RRF: what
        :meth:`as_retriever` does by default, ranked as ``FusedRetriever`` ranks with the same
        options (its defaults: exact and near-duplicate removal on). ``weights={"dense_text": 1,
        "dense_image": 1, "bm25": 1}``, ``rrf_k``, ``fetch_k`` (depth of each list), ``filter``,
        ``image=`` (query by text and image), ``score_threshold``, ``quotas``, ``dedupe``,
        ``near_duplicate_threshold``, ``min_similarity``, ``fusion``."""
        flt, image = kwargs.pop("filter", None), kwargs.pop("image", None)
        kwargs.setdefault("rrf_k", self.rrf_k)
        options = _options("hybrid", "hybrid_search", k, kwargs)
        vector = None
        if not self.index.keyword_search_only and self.index.embedder is not None:
            vector = self.index.embedder.embed_query(query or None, image=image)
        found = self.store.search(options, vector=vector, text=query, conditions=parse_filters(flt, scope="metadata"))
        return [self._document(s) for s in found]

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(self._query_vector(query), k, fetch_k, lambda_mult, **kwargs)

    def max_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """*k* of the *fetch_k* nearest documents, chosen by maximal marginal relevance."""
        flt = kwargs.pop("filter", None)
        if isinstance(fetch_k, bool) or not isinstance(fetch_k, int) or fetch_k < 1:
            raise InvalidInputError(f"fetch_k must be an integer >= 1, got {fetch_k!r}")
        kwargs.update(fetch_k=max(fetch_k, k), lambda_mult=lambda_mult)
        options = _options("mmr", "max_marginal_relevance_search", k, kwargs)
        found = self.store.search(options, vector=np.asarray(embedding), conditions=parse_filters(flt, scope="metadata"))
        return [self._document(s) for s in found]

    # async searches run the sync ones in a worker thread (embedding is CPU/GPU work)
    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return await _in_thread(self.similarity_search, query, k, **kwargs)

    async def asimilarity_search_with_score(self, *args: Any, **kwargs: Any) -> list[tuple[Document, float]]:
        return await _in_thread(self.similarity_search_with_score, *args, **kwargs)

    async def ahybrid_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return await _in_thread(self.hybrid_search, query, k, **kwargs)

    async def amax_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        return await _in_thread(self.max_marginal_relevance_search, query, k, fetch_k, lambda_mult, **kwargs)

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        return await _in_thread(self.delete, ids, **kwargs)

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return await _in_thread(self.get_by_ids, ids)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> MultiModalVectorStore:
        """A new store (``path=``, ``url=`` ... as for the constructor) holding *texts*."""
        store = cls(embedding, **kwargs)
        try:
            store.add_texts(texts, metadatas, ids=ids)
        except BaseException:
            store.close()
            raise
        return store

    def as_retriever(self, **kwargs: Any) -> MultiModalVectorStoreRetriever:
        """A retriever; ``search_type``: ``"hybrid"`` (default: dense + BM25 fused by RRF),
        ``"similarity"``, ``"mmr"`` or ``"similarity_score_threshold"``; ``search_kwargs``: ``k``,
        ``filter``, and per type ``fetch_k`` / ``lambda_mult`` / ``score_threshold`` / ``weights``."""
        tags = kwargs.pop("tags", None) or []
        tags.extend(self._get_retriever_tags())
        return MultiModalVectorStoreRetriever(vectorstore=self, tags=tags, **kwargs)


#: The searcher's post-processing options every search type accepts.
_POST = {"dedupe", "near_duplicate_threshold", "quotas", "min_similarity"}
#: search_kwargs each search type accepts.
_SEARCH_KWARGS = {
    "hybrid": {"k", "filter", "weights", "rrf_k", "fetch_k", "image", "score_threshold", "fusion", *_POST},
    "similarity": {"k", "filter", "score_threshold", *_POST},
    "similarity_score_threshold": {"k", "filter", "score_threshold", *_POST},
    "mmr": {"k", "filter", "fetch_k", "lambda_mult", *_POST},
}
#: LangChain's names for the searcher's options.
_RENAMED = {"fetch_k": "prefetch_k"}


def _options(mode: str, where: str, k: Any, kwargs: dict[str, Any]) -> SearchOptions:
    """The store's defaults for *mode* (:data:`~mm_rag_plugin.retrievers.search.STORE_DEFAULTS`)
    with *k* and the options in *kwargs*; anything else is a :class:`ConfigurationError`."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be an integer >= 1, got {k!r}")
    accepted = {"hybrid": "hybrid", "dense": "similarity", "mmr": "mmr"}[mode]
    unknown = sorted(set(kwargs) - _SEARCH_KWARGS[accepted])
    if unknown:
        raise ConfigurationError(f"{where}(): unknown option(s) {unknown}; accepted: {sorted(_SEARCH_KWARGS[accepted] - {'k', 'filter'})}")
    changes = {_RENAMED.get(name, name): value for name, value in kwargs.items() if value is not None or name == "near_duplicate_threshold"}
    return STORE_DEFAULTS[mode].replace(k=k, **changes)


class MultiModalVectorStoreRetriever(VectorStoreRetriever):
    """``VectorStoreRetriever`` with the fused ``"hybrid"`` search (the default); unknown
    ``search_kwargs`` and ``k < 1`` are errors."""

    search_type: str = "hybrid"
    allowed_search_types: ClassVar[tuple[str, ...]] = ("hybrid", "similarity", "similarity_score_threshold", "mmr")

    @model_validator(mode="before")
    @classmethod
    def _check_kwargs(cls, values: Any) -> Any:
        if isinstance(values, dict):
            search_type = values.get("search_type", "hybrid")
            kwargs = values.get("search_kwargs") or {}
            if search_type in _SEARCH_KWARGS:
                _check_search_kwargs(search_type, kwargs)
        return values

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type != "hybrid":
            return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)
        args = self.search_kwargs | kwargs
        _check_search_kwargs("hybrid", args)
        return self.vectorstore.hybrid_search(query, **args)  # type: ignore[attr-defined]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type != "hybrid":
            return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)
        args = self.search_kwargs | kwargs
        _check_search_kwargs("hybrid", args)
        return await self.vectorstore.ahybrid_search(query, **args)  # type: ignore[attr-defined]


def _check_search_kwargs(search_type: str, kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(kwargs) - _SEARCH_KWARGS[search_type])
    if unknown:
        raise ConfigurationError(
            f"search_kwargs: unknown option(s) {unknown} for search_type={search_type!r}; "
            f"expected {sorted(_SEARCH_KWARGS[search_type])}"
        )
    k = kwargs.get("k", 4)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigurationError(f"search_kwargs: k must be an integer >= 1, got {k!r}")


def _no_options(where: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise ConfigurationError(f"{where}(): unknown option(s) {sorted(kwargs)}")


async def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from langchain_core.runnables.config import run_in_executor

    return await run_in_executor(None, fn, *args, **kwargs)

