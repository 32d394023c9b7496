"""The LlamaIndex adapter used through LlamaIndex itself (indices, retrievers, batching)."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.embeddings import MultiModalEmbedding
from llama_index.core.indices import MultiModalVectorStoreIndex
from llama_index.core.schema import ImageNode, TextNode

from mm_rag_plugin.integrations.llama_index import OpenCLIPEmbedding
from mm_rag_plugin.testing import draw_shape

SHAPES = [("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "circle")]


@pytest.fixture
def embed_model(embedder) -> OpenCLIPEmbedding:
    return OpenCLIPEmbedding(embedder=embedder, embed_batch_size=3)


@pytest.fixture
def image_files(tmp_path: Path) -> list[str]:
    paths = []
    for color, kind in SHAPES:
        p = tmp_path / f"{color}_{kind}.png"
        draw_shape(color, kind).save(p)
        paths.append(str(p))
    return paths


def test_is_a_llamaindex_multimodal_embedding(embed_model: OpenCLIPEmbedding, embedder) -> None:
    assert isinstance(embed_model, MultiModalEmbedding)
    assert embed_model.model_name == embedder.model_name
    vec = embed_model.get_text_embedding("a red circle")
    assert len(vec) == 64 and abs(np.linalg.norm(vec) - 1) < 1e-5


def test_batches_really_run_batched(embed_model: OpenCLIPEmbedding, image_files: list[str], monkeypatch) -> None:
    calls: list[int] = []
    real = embed_model.embedder._encode_pixel_batch
    monkeypatch.setattr(embed_model.embedder, "_encode_pixel_batch", lambda px: calls.append(len(px)) or real(px))
    embed_model.embedder.clear_cache()
    out = embed_model.get_image_embedding_batch(image_files)
    assert len(out) == 4 and calls == [3, 1]  # two forward passes for four images at batch size 3


def test_text_to_image_retrieval_in_a_multimodal_index(embed_model: OpenCLIPEmbedding, image_files) -> None:
    # LlamaIndex's vector indices skip nodes without text, images included: give each a caption
    nodes = [ImageNode(image_path=p, id_=Path(p).stem, text="a shape") for p in image_files]
    nodes.append(TextNode(text="notes about shapes", id_="note"))
    index = MultiModalVectorStoreIndex(nodes, embed_model=embed_model, image_embed_model=embed_model)
    retriever = index.as_retriever(similarity_top_k=1, image_similarity_top_k=1)
    hits = retriever.text_to_image_retrieve("a green triangle")
    assert [h.node.node_id for h in hits] == ["green_triangle"]
    img_hits = retriever.image_to_image_retrieve(image_files[1])
    assert img_hits[0].node.node_id == "blue_square"


def test_vector_store_index_over_text(embed_model: OpenCLIPEmbedding) -> None:
    nodes = [TextNode(text=f"a {c} {k}", id_=f"{c}-{k}") for c, k in SHAPES]
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    hits = index.as_retriever(similarity_top_k=1).retrieve("a yellow circle")
    assert hits[0].node.node_id == "yellow-circle"
    assert Settings is not None


def test_image_inputs_as_bytesio(embed_model: OpenCLIPEmbedding, image_files) -> None:
    data = Path(image_files[0]).read_bytes()
    np.testing.assert_allclose(
        embed_model.get_image_embedding(BytesIO(data)), embed_model.get_image_embedding(image_files[0]), atol=1e-6
    )


async def test_async_methods(embed_model: OpenCLIPEmbedding, image_files) -> None:
    assert await embed_model.aget_text_embedding("x") == embed_model.get_text_embedding("x")
    assert await embed_model.aget_query_embedding("x") == embed_model.get_query_embedding("x")
    assert await embed_model.aget_image_embedding(image_files[0]) == embed_model.get_image_embedding(image_files[0])
    many = await embed_model.aget_text_embedding_batch(["a", "b", "c", "d"])
    np.testing.assert_allclose(many, embed_model.get_text_embedding_batch(["a", "b", "c", "d"]), atol=1e-6)


def test_constructs_from_model_arguments(tiny_clip_dir: Path) -> None:
    m = OpenCLIPEmbedding(model_name=f"local-dir:{tiny_clip_dir}", device="cpu", embed_batch_size=5)
    assert m.embedder.batch_size == 5 and m.embed_batch_size == 5
