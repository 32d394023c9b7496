"""The LangChain loader and LlamaIndex reader over the core readers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mm_rag_plugin.errors import InvalidInputError


@pytest.fixture
def folder(shared_data: Path, tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    shutil.copy(shared_data / "pdfs/text_figures/ppsf__google-doc-document.pdf", d / "a.pdf")
    shutil.copy(shared_data / "clip_skimage/images/coffee.png", d / "b.png")
    shutil.copy(shared_data / "clip_skimage/images/coffee.png", d / "c.png")  # duplicate image
    (d / "d.pdf").write_bytes(b"%PDF-1.4 broken")
    return d


def test_langchain_loader(folder: Path, tmp_path: Path) -> None:
    from langchain_core.documents import Document

    from mm_rag_plugin.integrations.langchain._convert import document_to_chunk
    from mm_rag_plugin.integrations.langchain.loaders import MMRagLoader

    loader = MMRagLoader(folder, ocr=False, workers=0, show_progress=False, blob_dir=str(tmp_path / "b"))
    docs = list(loader.lazy_load())
    assert all(isinstance(d, Document) for d in docs)
    images = [d for d in docs if d.metadata["kind"] == "image"]
    texts = [d for d in docs if d.metadata["kind"] == "text"]
    assert texts and "Beautiful is better than ugly" in " ".join(d.page_content for d in texts)
    assert len(images) == 3 and all(Path(d.metadata["image_path"]).exists() for d in images)
    assert images[-1].metadata["duplicate_of"] == images[-2].id  # c.png repeats b.png
    assert [e.source for e in loader.errors] == [str(folder / "d.pdf")]
    assert document_to_chunk(texts[0]).id == texts[0].id
    with pytest.raises(InvalidInputError, match=r"d\.pdf"):
        list(MMRagLoader(folder, ocr=False, workers=0, show_progress=False, on_error="raise").lazy_load())


def test_llama_index_reader(folder: Path, tmp_path: Path) -> None:
    from llama_index.core.schema import Document, ImageDocument

    from mm_rag_plugin.integrations.llama_index.readers import MMRagReader

    reader = MMRagReader(ocr=False, workers=0, show_progress=False, blob_dir=str(tmp_path / "b"))
    docs = reader.load_data(folder, extra_info={"collection": "test"})
    imgs = [d for d in docs if isinstance(d, ImageDocument)]
    assert len(imgs) == 3 and all(d.image_path and Path(d.image_path).exists() for d in imgs)
    assert all(isinstance(d, Document) for d in docs)
    assert all(d.metadata["collection"] == "test" for d in docs)
    assert [e.source for e in reader.errors] == [str(folder / "d.pdf")]
    again = MMRagReader(ocr=False, workers=0, show_progress=False, blob_dir=str(tmp_path / "b")).load_data(
        folder
    )
    assert [d.doc_id for d in again] == [d.doc_id for d in docs]  # stable ids
