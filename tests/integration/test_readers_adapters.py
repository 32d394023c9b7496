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


def _reader(tmp_path: Path, **kwargs):
    from mm_rag_plugin.integrations.llama_index.readers import MMRagReader

    return MMRagReader(ocr=False, blob_dir=str(tmp_path / "b"), **kwargs)


def test_llama_index_reader_errors_accumulate_across_calls(
    folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reader = _reader(tmp_path, workers=0)
    assert reader.load_data(folder / "d.pdf") == []
    with caplog.at_level("WARNING", logger="mm_rag_plugin"):
        assert reader.load_data(folder / "d.pdf") == []
    assert any("d.pdf" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert reader.load_data(folder / "b.png")  # a good file does not clear the failures
    assert [e.source for e in reader.errors] == [str(folder / "d.pdf")] * 2


@pytest.mark.filterwarnings("ignore:Specified num_workers exceed")  # on a one-CPU machine
def test_simple_directory_reader_with_worker_processes(
    folder: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """SimpleDirectoryReader(num_workers=2) runs file_extractor in daemonic pool workers, which may
    not start processes: the reader reads in the worker and gives what one process gives."""
    from llama_index.core import SimpleDirectoryReader

    def load(num_workers: int, reader, **kwargs):
        extractor = {".pdf": reader, ".png": reader}
        sdr = SimpleDirectoryReader(input_dir=str(folder), file_extractor=extractor, **kwargs)
        return sdr.load_data(num_workers=num_workers)

    reader = _reader(tmp_path, workers=2)
    one = load(1, reader)
    capfd.readouterr()
    two = load(2, reader)
    out, err = capfd.readouterr()
    assert {d.metadata["file_name"] for d in one} == {"a.pdf", "b.png", "c.png"}
    assert [(d.doc_id, d.text, d.metadata) for d in two] == [(d.doc_id, d.text, d.metadata) for d in one]
    assert [e.source for e in reader.errors] == [str(folder / "d.pdf")]  # from the in-process run
    # in the workers the reader is a copy: the broken file is reported through SimpleDirectoryReader
    assert f"Failed to load file {folder / 'd.pdf'}" in out + err
    with pytest.raises(Exception, match="Error loading file") as info:
        load(2, _reader(tmp_path, workers=2), raise_on_error=True)
    assert "d.pdf" in str(info.value.__cause__)


def test_loaders_on_a_missing_path_raise_file_not_found(tmp_path: Path) -> None:
    from mm_rag_plugin.integrations.langchain.loaders import MMRagLoader
    from mm_rag_plugin.readers.loader import DocumentLoader, PathNotFoundError, load_documents

    missing = tmp_path / "no" / "such.pdf"
    for load in (
        lambda: MMRagLoader(missing).load(),
        lambda: _reader(tmp_path).load_data(missing),
        lambda: _reader(tmp_path, paths=[tmp_path, missing]).load_data(),
        lambda: load_documents(missing),
        lambda: DocumentLoader(str(tmp_path / "no" / "*.pdf")).load(),
    ):
        with pytest.raises(FileNotFoundError, match=r"no[/\\]") as info:
            load()
        assert isinstance(info.value, (PathNotFoundError, InvalidInputError))
        assert info.value.filename == info.value.source and str(tmp_path / "no") in info.value.filename
    assert load_documents(str(tmp_path / "*.pdf")).chunks == []  # a pattern matching nothing


def test_no_progress_bar_unless_asked(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from mm_rag_plugin.integrations.langchain.loaders import MMRagLoader
    from mm_rag_plugin.readers.loader import DocumentLoader

    (tmp_path / "a.md").write_text("# A\n\nalpha\n")
    capfd.readouterr()
    assert DocumentLoader(tmp_path, workers=0).load().chunks
    assert MMRagLoader(tmp_path, workers=0).load()
    assert _reader(tmp_path, workers=0).load_data(tmp_path)
    assert capfd.readouterr().err == ""
    DocumentLoader(tmp_path, workers=0, show_progress=True).load()
    assert "reading: 100%" in capfd.readouterr().err
