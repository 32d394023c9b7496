"""LlamaIndex ``BasePydanticVectorStore`` over the multimodal index (Qdrant Edge or Qdrant by URL).

``MultiModalVectorStore`` stores ``TextNode`` and ``ImageNode`` (with their embeddings, or embedded
by the index's model when they come without), answers ``VectorStoreQuery`` in the modes
``DEFAULT`` (dense), ``HYBRID`` (dense text, dense image and BM25 lists fused by RRF; ``alpha``
weighs dense against keywords), ``SPARSE`` / ``TEXT_SEARCH`` (BM25) and ``MMR``
(``mmr_threshold`` is the relevance weight), translates ``MetadataFilters`` (``==``, ``!=``, ranges,
``in``, ``nin``, ``any``, ``all``, ``contains``, ``is_empty``; AND / OR / NOT, nested), and deletes by
``ref_doc_id`` or node ids. Nodes round-trip whole (relationships and excluded keys included).

A node that LlamaIndex's node parser cut from a document :class:`~.readers.MMRagReader` read (its
``ref_doc_id`` is the chunk id the reader recorded in its metadata) gets an id derived from that
document, its place in it and its content instead of the parser's random UUID, so inserting the
same files again replaces their nodes instead of adding them twice.

For ``MultiModalVectorStoreIndex``, one index serves both stores:
``text_store = MultiModalVectorStore(path="ix", embed_model=clip)`` and
``image_store = text_store.image_store()`` (same index, images only).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..._optional import require

require("llama_index.core", extra="llamaindex", package="llama-index-core")

from llama_index.core.bridge.pydantic import PrivateAttr  # noqa: E402
from llama_index.core.schema import BaseNode, RelatedNodeInfo  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict  # noqa: E402

from ...embeddings.batch import embed_chunks  # noqa: E402
from ...errors import ConfigurationError, InvalidInputError  # noqa: E402
from ...ids import content_hash, stable_id  # noqa: E402
from ...retrievers._filters import Condition, all_of, any_of, none_of, parse_filters  # noqa: E402
from ...retrievers.fusion import DEFAULT_RRF_K  # noqa: E402
from ...retrievers.index import MultiModalIndex  # noqa: E402
from ...retrievers.keyed import KeyedStore, Stored  # noqa: E402
from ...retrievers.search import STORE_DEFAULTS, SearchOptions  # noqa: E402
from ...types import Chunk  # noqa: E402
from .._framework import ForeignTextEmbedder, as_text_model, open_store_index  # noqa: E402
from ._convert import chunk_to_node, node_to_chunk  # noqa: E402

__all__ = ["MultiModalVectorStore"]

logger = logging.getLogger(__name__)

FRAMEWORK = "llama_index"
#: Node-content keys LlamaIndex adds to metadata dicts (not the user's metadata).
_NODE_KEYS = ("_node_content", "_node_type", "document_id", "doc_id", "ref_doc_id")


class MultiModalVectorStore(BasePydanticVectorStore):
    """Text and image nodes in one CLIP space with BM25 beside it, for any LlamaIndex index.

    ``MultiModalVectorStore(path="ix", embed_model=OpenCLIPEmbedding(...))`` (a folder, Qdrant
    Edge), ``url=`` / ``client=`` (a Qdrant server), neither (in memory), or ``index=`` an open
    :class:`~mm_rag_plugin.MultiModalIndex`. ``embed_model``: the model whose embeddings the nodes
    carry (recorded by a new index and checked against an existing one; any LlamaIndex embedding
    works for text). Without it an existing index loads its own model; a new one needs it, or
    ``dim=`` for vectors from a model the index does not record. ``kind="text"`` / ``"image"``
    restricts the store to one kind of node. ``text_embedder``: a text model beside CLIP (any
    LlamaIndex ``BaseEmbedding``, or a :class:`~mm_rag_plugin.types.TextEmbedder`): a new index
    stores its vectors too and hybrid queries add its ``text_model`` list.
    """

    stores_text: bool = True
    is_embedding_query: bool = True
    flat_metadata: bool = False

    _index: MultiModalIndex = PrivateAttr()
    _store: KeyedStore = PrivateAttr()
    _rrf_k: float = PrivateAttr()
    _embed_model: Any = PrivateAttr(default=None)

    def __init__(
        self,
        *,
        path: str | None = None,
        index: MultiModalIndex | None = None,
        embed_model: Any = None,
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        collection: str = "mm_rag",
        kind: Literal["text", "image"] | None = None,
        create: bool = True,
        rrf_k: float = DEFAULT_RRF_K,
        text_embedder: Any = None,
        **index_kwargs: Any,
    ) -> None:
        super().__init__(stores_text=True)
        from .embeddings import OpenCLIPEmbedding

        embedder: Any = None
        if isinstance(embed_model, OpenCLIPEmbedding):
            embedder = embed_model.embedder
        elif embed_model is not None:
            embedder = ForeignTextEmbedder(embed_model, FRAMEWORK)
        self._index = open_store_index(
            embedder, path=path, index=index, url=url, api_key=api_key, client=client,
            collection=collection, create=create, model_arg="embed_model=",
            text_embedder=as_text_model(text_embedder, FRAMEWORK), **index_kwargs,
        )
        self._store = KeyedStore(self._index, kind=kind)
        self._rrf_k = rrf_k
        self._embed_model = embed_model

    @classmethod
    def class_name(cls) -> str:
        return "MMRagMultiModalVectorStore"

    @property
    def client(self) -> Any:
        """The :class:`~mm_rag_plugin.MultiModalIndex` underneath."""
        return self._index

    @property
    def index(self) -> MultiModalIndex:
        return self._index

    @property
    def kind(self) -> str | None:
        return self._store.kind

    @property
    def embed_model(self) -> Any:
        """The LlamaIndex embedding model of this index: the ``embed_model`` given, else an
        :class:`~.embeddings.OpenCLIPEmbedding` over the model the index loaded (``None`` for a
        keyword-only index or one built from vectors supplied with ``dim=``)."""
        if self._embed_model is None:
            embedder = self._index.embedder
            if isinstance(embedder, ForeignTextEmbedder):
                self._embed_model = embedder.model
            elif embedder is not None:
                from .embeddings import OpenCLIPEmbedding

                self._embed_model = OpenCLIPEmbedding(embedder=embedder)  # type: ignore[arg-type]
        return self._embed_model

    def as_index(self, *, multimodal: bool = False, **kwargs: Any) -> Any:
        """A LlamaIndex index over this store that embeds queries with the index's own model:
        ``VectorStoreIndex.from_vector_store(store, embed_model=store.embed_model, **kwargs)``
        (LlamaIndex would otherwise take ``Settings.embed_model``, OpenAI by default). With
        ``multimodal=True`` a ``MultiModalVectorStoreIndex`` over this index's text and image stores
        (a CLIP model embeds both). ``Settings`` is left as it is."""
        model = kwargs.pop("embed_model", None) or self.embed_model
        if model is None:
            raise ConfigurationError(
                f"{self._index.where}: this index has no embedding model to search with; pass as_index(embed_model=...)"
            )
        if not multimodal:
            from llama_index.core import VectorStoreIndex

            return VectorStoreIndex.from_vector_store(self, embed_model=model, **kwargs)
        from llama_index.core.embeddings import MultiModalEmbedding
        from llama_index.core.indices.multi_modal import MultiModalVectorStoreIndex

        image_model = kwargs.pop("image_embed_model", None) or model
        if not isinstance(image_model, MultiModalEmbedding):
            raise ConfigurationError(
                f"{self._index.where}: as_index(multimodal=True) needs a model that embeds images (OpenCLIPEmbedding), "
                f"not {type(image_model).__name__}"
            )
        text_store = self if self.kind == "text" else self.text_store()
        return MultiModalVectorStoreIndex.from_vector_store(
            text_store, embed_model=model, image_vector_store=self.image_store(), image_embed_model=image_model, **kwargs
        )

    def image_store(self) -> MultiModalVectorStore:
        """The same index as a store of images only (``MultiModalVectorStoreIndex``'s image store)."""
        return self._sibling("image")

    def text_store(self) -> MultiModalVectorStore:
        """The same index as a store of text nodes only."""
        return self._sibling("text")

    def _sibling(self, kind: Literal["text", "image"]) -> MultiModalVectorStore:
        sibling = MultiModalVectorStore(index=self._index, kind=kind, rrf_k=self._rrf_k)
        sibling._embed_model = self._embed_model
        return sibling

    def close(self) -> None:
        self._index.close()

    # ------------------------------------------------------------------ writes
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Store *nodes* (replacing nodes with the same id); returns the ids of the nodes stored.
        Nodes without an embedding are embedded with the index's model; one that cannot be (an
        unreadable image, a zero or non-finite vector) is logged as a warning naming its file and
        left out, and the others are stored. Nodes cut from an :class:`MMRagReader` document get
        ids derived from it (their ``id_`` is set to it, see the module docstring)."""
        if add_kwargs:
            raise ConfigurationError(f"add(): unknown option(s) {sorted(add_kwargs)}")
        _derive_node_ids(nodes)
        items: list[tuple[str, Chunk, np.ndarray | None]] = []
        extra: list[dict[str, Any]] = []
        missing: list[int] = []
        for i, node in enumerate(nodes):
            if not isinstance(node, BaseNode):
                raise InvalidInputError(f"expected a LlamaIndex node, got {type(node).__name__}", source=f"nodes[{i}]")
            chunk = node_to_chunk(node, keyed=True, as_text=self.kind == "text")
            if self.kind is not None and chunk.kind != self.kind:
                raise InvalidInputError(f"node {node.node_id}: a {chunk.kind} node in a store of {self.kind} nodes")
            vector = None if node.embedding is None else np.asarray(node.embedding, dtype=np.float32)
            if vector is None and not self._index.keyword_only:
                missing.append(i)
            items.append((node.node_id, chunk, vector))
            extra.append({"ref_doc_id": node.ref_doc_id, "node": _node_record(node)})
        failed: set[int] = set()
        if missing:
            embedder = self._index.embedder
            if embedder is None:
                raise ConfigurationError("nodes without embeddings need the index's model (pass embed_model=)")
            embedded = embed_chunks(embedder, [items[i][1] for i in missing])
            for i, vector in zip(missing, embedded.vectors, strict=True):
                items[i] = (items[i][0], items[i][1], vector)
            for e in embedded.errors:
                failed.add(missing[e.index])
                logger.warning("node %s not stored: %s", items[missing[e.index]][0], e)
        keep = [i for i in range(len(items)) if i not in failed]
        return self._store.put([items[i] for i in keep], framework=FRAMEWORK, extra=[extra[i] for i in keep])

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return await _in_thread(self.add, nodes, **kwargs)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document *ref_doc_id*."""
        if delete_kwargs:
            raise ConfigurationError(f"delete(): unknown option(s) {sorted(delete_kwargs)}")
        self._store.delete_where((Condition("ref_doc_id", "eq", str(ref_doc_id)),))

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await _in_thread(self.delete, ref_doc_id, **delete_kwargs)

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete nodes by id, or every node the filters match (both: nodes matching both)."""
        if delete_kwargs:
            raise ConfigurationError(f"delete_nodes(): unknown option(s) {sorted(delete_kwargs)}")
        if node_ids is None and filters is None:
            raise InvalidInputError("delete_nodes() needs node_ids or filters (refusing to delete everything)")
        conditions = _conditions(filters)
        if node_ids is not None:
            conditions = (*conditions, Condition("key", "any", tuple(str(i) for i in node_ids)))
        self._store.delete_where(conditions)

    async def adelete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        await _in_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    def clear(self) -> None:
        self._store.clear()

    async def aclear(self) -> None:
        await _in_thread(self.clear)

    # ------------------------------------------------------------------ reads
    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        if node_ids is None and filters is None:
            raise InvalidInputError("get_nodes() needs node_ids or filters")
        if filters is None:
            return [_node(s) for s in self._store.get([str(i) for i in node_ids or []])]
        conditions = _conditions(filters)
        if node_ids is not None:
            conditions = (*conditions, Condition("key", "any", tuple(str(i) for i in node_ids)))
        return [_node(s) for s in self._store.get_where(conditions)]

    async def aget_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        return await _in_thread(self.get_nodes, node_ids, filters)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Answer *query* in its mode (DEFAULT, HYBRID, SPARSE / TEXT_SEARCH, MMR), ranked by the
        searcher every entry point shares: DEFAULT, SPARSE and MMR return what their list holds
        (no duplicate removal), HYBRID ranks as ``FusedRetriever`` does (duplicate removal on).
        ``vector_store_kwargs`` may set the searcher's options (``dedupe``,
        ``near_duplicate_threshold``, ``quotas``, ``score_threshold``, ``min_similarity``,
        ``rrf_k``, ``weights``, ``fusion``)."""
        mode = VectorStoreQueryMode(query.mode)
        conditions = _conditions(query.filters)
        if query.node_ids:
            conditions = (*conditions, Condition("key", "any", tuple(query.node_ids)))
        if query.doc_ids:
            conditions = (*conditions, Condition("ref_doc_id", "any", tuple(query.doc_ids)))
        k = query.similarity_top_k
        vector = None if query.query_embedding is None else np.asarray(query.query_embedding, dtype=np.float32)
        text = None
        if mode == VectorStoreQueryMode.DEFAULT:
            if vector is None:
                raise InvalidInputError("a DEFAULT (dense) query needs query_embedding")
            options = _options("dense", k, kwargs)
        elif mode in (VectorStoreQueryMode.SPARSE, VectorStoreQueryMode.TEXT_SEARCH):
            text, vector = query.query_str, None
            options = _options("keyword", query.sparse_top_k or k, kwargs)
        elif mode == VectorStoreQueryMode.HYBRID:
            text = query.query_str
            if query.alpha is not None:
                if not 0.0 <= query.alpha <= 1.0:
                    raise InvalidInputError(f"alpha must be between 0 and 1, got {query.alpha}")
                kwargs.setdefault("weights", {"dense_text": query.alpha, "dense_image": query.alpha, "bm25": 1.0 - query.alpha})
            kwargs.setdefault("rrf_k", self._rrf_k)
            if query.sparse_top_k:
                kwargs.setdefault("prefetch_k", query.sparse_top_k)
            options = _options("hybrid", query.hybrid_top_k or k, kwargs)
        elif mode == VectorStoreQueryMode.MMR:
            factor = kwargs.pop("mmr_prefetch_factor", 4.0)
            fetch_k = kwargs.pop("mmr_prefetch_k", None) or int(k * factor)
            if vector is None:
                raise InvalidInputError("an MMR query needs query_embedding")
            lam = kwargs.pop("mmr_threshold", None)  # as LlamaIndex's own stores take it (vector_store_kwargs)
            lam = query.mmr_threshold if lam is None else lam
            kwargs.update(prefetch_k=max(fetch_k, k), lambda_mult=0.5 if lam is None else lam)
            options = _options("mmr", k, kwargs)
        else:
            raise ConfigurationError(
                f"query mode {mode.value!r} is not supported; use default, hybrid, sparse, text_search or mmr"
            )
        found = self._store.search(options, vector=vector, text=text, conditions=conditions)
        return VectorStoreQueryResult(
            nodes=[_node(s) for s in found], similarities=[float(s.score or 0.0) for s in found], ids=[s.key for s in found]
        )

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await _in_thread(self.query, query, **kwargs)


# ---------------------------------------------------------------------- nodes <-> records
def _derive_node_ids(nodes: Sequence[Any]) -> None:
    """Give each node cut from a document :class:`MMRagReader` read (the node's ``ref_doc_id``
    equals the chunk id in its metadata) an id derived from the document id, the node's type, its
    character span, its content and its rank among equal nodes of this call; the PREVIOUS / NEXT /
    PARENT / CHILD links between these nodes follow. Other nodes keep their ids."""
    renamed: dict[str, str] = {}
    seen: Counter[tuple[Any, ...]] = Counter()
    for node in nodes:
        if not isinstance(node, BaseNode):
            continue  # refused by the caller
        parent = node.ref_doc_id
        if parent is None or node.node_id == parent or node.metadata.get("id") != parent:
            continue
        span = (getattr(node, "start_char_idx", None), getattr(node, "end_char_idx", None))  # TextNode and its kin
        key = (parent, type(node).__name__, *span, content_hash(node.get_content()))
        new = stable_id("llama_index node", *key, seen[key])
        seen[key] += 1
        renamed[node.node_id] = new
        node.id_ = new
    if not renamed:
        return
    for node in nodes:
        if not isinstance(node, BaseNode):
            continue
        for rel, info in node.relationships.items():
            for one in info if isinstance(info, list) else [info]:
                if isinstance(one, RelatedNodeInfo) and one.node_id in renamed:
                    node.relationships[rel] = _renamed(info, renamed)
                    break


def _renamed(info: Any, renamed: dict[str, str]) -> Any:
    if isinstance(info, list):
        return [_renamed(i, renamed) for i in info]
    return info.model_copy(update={"node_id": renamed.get(info.node_id, info.node_id)})


def _node_record(node: BaseNode) -> str:
    data = node_to_metadata_dict(node, remove_text=False, flat_metadata=False)
    return json.dumps({"_node_content": data["_node_content"], "_node_type": data["_node_type"]})


def _node(stored: Stored) -> BaseNode:
    record = stored.payload.get("node")
    if stored.framework == FRAMEWORK and isinstance(record, str):
        node = metadata_dict_to_node(json.loads(record))
        node.metadata = {k: v for k, v in (stored.payload.get("metadata") or {}).items() if k not in _NODE_KEYS}
        return node
    node = chunk_to_node(stored.chunk)
    node.id_ = stored.key
    return node


# ---------------------------------------------------------------------- filters
_RANGE = {FilterOperator.GT: "gt", FilterOperator.GTE: "gte", FilterOperator.LT: "lt", FilterOperator.LTE: "lte"}


def _conditions(filters: MetadataFilters | None) -> tuple[Condition, ...]:
    if filters is None:
        return ()
    if not isinstance(filters, MetadataFilters):
        raise InvalidInputError(f"filters must be LlamaIndex MetadataFilters, got {type(filters).__name__}", source="filters")
    return (_group(filters),)


def _group(filters: MetadataFilters) -> Condition:
    parts = [_group(f) if isinstance(f, MetadataFilters) else _one(f) for f in filters.filters]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.OR:
        return any_of(*parts)
    if condition == FilterCondition.NOT:
        return none_of(*parts)
    return all_of(*parts)


def _one(f: Any) -> Condition:
    op = getattr(f, "operator", FilterOperator.EQ)
    key, value = f.key, f.value
    if op == FilterOperator.EQ or op == FilterOperator.CONTAINS:
        spec: Any = value
    elif op in _RANGE:
        spec = {_RANGE[op]: value}
    elif op == FilterOperator.NE:
        spec = {"ne": value}
    elif op in (FilterOperator.IN, FilterOperator.ANY):
        spec = {"in": list(value)}
    elif op == FilterOperator.NIN:
        spec = {"nin": list(value)}
    elif op == FilterOperator.ALL:
        return all_of(*(_one(MetadataFilter(key=key, value=v)) for v in value))
    elif op == FilterOperator.IS_EMPTY:
        return all_of(*(Condition(k, "empty", True) for k in _keys(key)))
    else:
        raise InvalidInputError(f"filter {key!r}: operator {op.value!r} is not supported", source="filters")
    (cond,) = parse_filters({key: spec}, scope="metadata")
    return cond


def _keys(key: str) -> list[str]:
    from ...retrievers._filters import CHUNK_KEYS

    return [key, f"metadata.{key}"] if key in CHUNK_KEYS else [f"metadata.{key}"]


#: The searcher's options a query may set through ``vector_store_kwargs``.
_OPTIONS = {
    "dedupe", "near_duplicate_threshold", "quotas", "score_threshold", "min_similarity", "rrf_k", "weights",
    "fusion", "prefetch_k", "lambda_mult",
}


def _options(mode: str, k: int, kwargs: dict[str, Any]) -> SearchOptions:
    unknown = sorted(set(kwargs) - _OPTIONS)
    if unknown:
        raise ConfigurationError(f"query(): unknown option(s) {unknown}; accepted: {sorted(_OPTIONS)}")
    return STORE_DEFAULTS[mode].replace(k=k, **kwargs)


async def _in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    import asyncio
    from functools import partial

    return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args, **kwargs))

