"""The LangChain adapter through langchain-tests' standard suites, plus image embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from mm_rag_plugin.integrations.langchain import OpenCLIPEmbeddings
from mm_rag_plugin.testing import draw_shape

_MODEL: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _tiny_model(tiny_clip_dir: Path) -> None:
    _MODEL["name"] = f"local-dir:{tiny_clip_dir}"


class TestOpenCLIPEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[OpenCLIPEmbeddings]:
        return OpenCLIPEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model_name": _MODEL["name"], "device": "cpu"}

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        return {"MM_RAG_MODEL": _MODEL["name"], "MM_RAG_DEVICE": "cpu"}, {}, {"model_name": _MODEL["name"]}


class TestOpenCLIPEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[OpenCLIPEmbeddings]:
        return OpenCLIPEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model_name": _MODEL["name"], "device": "cpu"}


def test_text_query_finds_the_matching_image(embedder, tmp_path: Path) -> None:
    emb = OpenCLIPEmbeddings(embedder=embedder)
    paths = []
    for color, kind in [("red", "circle"), ("blue", "square"), ("green", "triangle")]:
        p = tmp_path / f"{color}_{kind}.png"
        draw_shape(color, kind).save(p)
        paths.append(str(p))
    vectors = emb.embed_image(paths)
    query = np.asarray(emb.embed_query("a blue square"))
    best = int(np.argmax(np.asarray(vectors) @ query))
    assert paths[best].endswith("blue_square.png")
    assert len(emb.embed_multimodal("blue", paths[0])) == embedder.dim


def test_works_as_a_langchain_vector_store_embedding(embedder) -> None:
    store = InMemoryVectorStore(OpenCLIPEmbeddings(embedder=embedder))
    store.add_texts(["a red circle", "a blue square", "a green triangle"], ids=["r", "b", "g"])
    assert store.similarity_search("a blue square", k=1)[0].id == "b"


async def test_async_image_embedding(embedder, tmp_path: Path) -> None:
    emb = OpenCLIPEmbeddings(embedder=embedder)
    p = tmp_path / "x.png"
    draw_shape("red", "circle").save(p)
    assert await emb.aembed_image([str(p)]) == emb.embed_image([str(p)])


async def test_one_image_uri_is_one_image_not_its_letters(embedder, tmp_path: Path) -> None:
    emb = OpenCLIPEmbeddings(embedder=embedder)
    p = tmp_path / "x.png"
    draw_shape("blue", "square").save(p)
    expected = emb.embed_image([str(p)])
    assert len(expected) == 1 and len(expected[0]) == embedder.dim
    for one in (str(p), p, p.read_bytes(), draw_shape("blue", "square")):
        assert np.allclose(emb.embed_image(one), expected, atol=1e-5)
    assert await emb.aembed_image(str(p)) == expected
    assert emb.embed_image((str(p), str(p))) == expected * 2
