"""One embedding loop, one error rule (``embed_chunks``): a mixed batch of texts and images with a
truncated image from the shared data gives vectors for the good items and one error, naming the
file, for the bad one; ingest, both framework vector stores and reindexing keep and refuse the
same items."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document
from llama_index.core.schema import ImageNode, TextNode
from PIL import Image

from mm_rag_plugin import InvalidInputError, MultiModalIndex
from mm_rag_plugin.embeddings.batch import embed_chunks
from mm_rag_plugin.ids import content_hash
from mm_rag_plugin.types import ImageChunk, TextChunk

TRUNCATED = "truncated_image.png"  # the shared data's PNG cut off mid-IDAT


@pytest.fixture
def files(tmp_path: Path, shared_data: Path) -> dict[str, Path]:
    good = tmp_path / "red.png"
    Image.new("RGB", (48, 48), "red").save(good)
    bad = tmp_path / TRUNCATED
    shutil.copy(shared_data / "malformed_images" / "files" / TRUNCATED, bad)
    return {"good": good, "bad": bad}


def _image(path: Path) -> ImageChunk:
    return ImageChunk(id=path.name, source=str(path), image_path=str(path), content_hash=content_hash(path.read_bytes()))


def _batch(files: dict[str, Path]) -> list[TextChunk | ImageChunk]:
    return [
        TextChunk(id="note", text="a note about a red square", source="note.txt"),
        _image(files["bad"]),
        _image(files["good"]),
    ]


def test_the_good_items_have_vectors_and_the_truncated_image_is_one_error(embedder, files, shared_data: Path) -> None:
    bad = shared_data / "malformed_images" / "files" / TRUNCATED
    chunks = [
        TextChunk(id="note", text="a note about a red square", source="note.txt"),
        _image(bad),
        _image(files["good"]),
        TextChunk(id="t2", text="a blue circle", source="b.txt"),
    ]
    out = embed_chunks(embedder, chunks)
    assert [v is not None for v in out.vectors] == [True, False, True, True]
    for v in (out.vectors[0], out.vectors[2], out.vectors[3]):
        assert v is not None and v.dtype == np.float32 and abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
    np.testing.assert_allclose(out.vectors[0], embedder.embed_texts([chunks[0].text])[0], atol=1e-6)
    np.testing.assert_allclose(out.vectors[2], embedder.embed_image(str(files["good"])), atol=1e-6)
    assert len(out.errors) == 1
    err = out.errors[0]
    assert err.index == 1 and err.source == str(bad) and "truncated" in err.error
    assert str(err).startswith(f"{bad}: ") and "\n" not in str(err)


def test_an_image_inside_a_document_names_the_document_and_the_image(embedder, files) -> None:
    inside = ImageChunk(id="fig", source="report.pdf", image_path=str(files["bad"]), content_hash="x", page=2)
    out = embed_chunks(embedder, [inside])
    assert out.vectors == [None]
    assert str(out.errors[0]).startswith(f"report.pdf: image {files['bad']}: ")


def test_ingest_stores_and_reindex_keep_and_refuse_the_same_items(embedder, files, tmp_path, caplog) -> None:
    from mm_rag_plugin.integrations.langchain import OpenCLIPEmbeddings
    from mm_rag_plugin.integrations.langchain.vectorstores import MultiModalVectorStore as LCStore
    from mm_rag_plugin.integrations.llama_index import OpenCLIPEmbedding
    from mm_rag_plugin.integrations.llama_index.vector_stores import MultiModalVectorStore as LIStore

    good, bad = str(files["good"]), str(files["bad"])
    kept = {"note", "red.png"}

    # ingest (MultiModalIndex.add): the error is a FileError of the bad file, the rest stored
    with MultiModalIndex(tmp_path / "ix", embedder=embedder) as index:
        report = index.add(_batch(files))
        assert report.added == 2 and [e.source for e in report.errors] == [bad]
        assert "truncated" in report.errors[0].error
        assert len(index) == 2 and index.with_source(bad) == {}
        assert index.with_source("note.txt") and index.with_source(good)

    # LangChain: the good items are stored, then one error lists the bad one
    lc = LCStore(OpenCLIPEmbeddings(embedder=embedder))
    docs = [
        Document(id="note", page_content="a note about a red square", metadata={"source": "note.txt"}),
        Document(id=TRUNCATED, page_content="", metadata={"kind": "image", "image_path": bad}),
        Document(id="red.png", page_content="", metadata={"kind": "image", "image_path": good}),
    ]
    with pytest.raises(InvalidInputError, match=r"1 of 3 items could not be embedded \(2 stored\)") as err:
        lc.add_documents(docs)
    assert TRUNCATED in str(err.value) and "\n" not in str(err.value)
    assert {d.id for d in lc.get_by_ids(["note", TRUNCATED, "red.png"])} == kept
    lc.close()

    # LlamaIndex: no longer raises on the first bad image; add() returns the ids stored, and logs
    # one warning line naming the bad file
    li = LIStore(embed_model=OpenCLIPEmbedding(embedder=embedder))
    nodes = [
        TextNode(id_="note", text="a note about a red square", metadata={"source": "note.txt"}),
        ImageNode(id_=TRUNCATED, image_path=bad),
        ImageNode(id_="red.png", image_path=good),
    ]
    caplog.set_level(logging.WARNING, logger="mm_rag_plugin.integrations.llama_index.vector_stores")
    assert li.add(nodes) == ["note", "red.png"]
    warned = [r.getMessage() for r in caplog.records if r.name.endswith("llama_index.vector_stores")]
    assert len(warned) == 1 and TRUNCATED in warned[0] and "truncated" in warned[0] and "\n" not in warned[0]
    assert {n.node_id for n in li.get_nodes(node_ids=["note", TRUNCATED, "red.png"])} == kept
    li.close()


@pytest.fixture(scope="module")
def other_embedder(tmp_path_factory):
    """Another tiny model (random weights, another seed): a model to reindex with."""
    from mm_rag_plugin import OpenCLIPEmbedder
    from mm_rag_plugin.testing import make_tiny_clip

    folder = make_tiny_clip(tmp_path_factory.mktemp("other_clip"), train_steps=0, seed=1)
    return OpenCLIPEmbedder(f"local-dir:{folder}", device="cpu", batch_size=8)


def test_reindex_refuses_the_same_item(other_embedder, files, tmp_path) -> None:
    from mm_rag_plugin.finetune.reindexing import reindex

    # a keyword-only index reads no image, so it holds the truncated one; reindexing embeds it
    with MultiModalIndex(tmp_path / "ix", keyword_only=True) as index:
        assert index.add(_batch(files)).added == 3
    bad = str(files["bad"])

    with pytest.raises(InvalidInputError, match=r"1 point cannot be embedded: ") as err:
        reindex(tmp_path / "ix", other_embedder)
    assert f"{bad}: " in str(err.value) and "truncated" in str(err.value)
    assert "\n" not in str(err.value)

    report = reindex(tmp_path / "ix", other_embedder, skip_unreadable=True)
    assert report.points == 2 and report.embedded == 0  # both embedded by the first run, kept
    assert len(report.skipped) == 1 and report.skipped[0].startswith(f"{bad}: ") and "truncated" in report.skipped[0]
    with MultiModalIndex(tmp_path / "ix", embedder=other_embedder, create=False) as index:
        assert len(index) == 2 and index.with_source(bad) == {}
        assert index.with_source("note.txt") and index.with_source(str(files["good"]))


def test_reindex_names_an_image_the_index_refuses(embedder, other_embedder, files, tmp_path, shared_data) -> None:
    from mm_rag_plugin.finetune.reindexing import reindex

    Image.new("RGB", (48, 48), "blue").save(files["bad"])
    with MultiModalIndex(tmp_path / "ix", embedder=embedder) as index:
        assert index.add(_batch(files)).added == 3
    shutil.copy(shared_data / "malformed_images" / "files" / TRUNCATED, files["bad"])  # not the image indexed
    report = reindex(tmp_path / "ix", other_embedder, skip_unreadable=True)
    assert report.points == 2 and report.skipped == (f"{files['bad']}: image not read: the index refuses its file",)
