"""An index object that is dropped, collected or replaced by a re-run notebook cell lets its folder go;
a folder this process already has open is shared, not refused."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mm_rag_plugin import MultiModalIndex, MultiModalRAG, TextChunk
from mm_rag_plugin.errors import StoreError

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _other_process_can_open(folder: Path) -> bool:
    """Whether a fresh process can take the folder's lock now (the lock is per process)."""
    code = (
        "import sys; from mm_rag_plugin import MultiModalIndex\n"
        "MultiModalIndex(sys.argv[1], create=False, keyword_only=True).close()\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=_env())
    return r.returncode == 0


def test_a_dropped_index_lets_its_folder_go(tmp_path) -> None:
    folder = tmp_path / "ix"
    ix = MultiModalIndex(folder, keyword_only=True)
    ix.add([TextChunk(id="a", text="a red circle", source="a.txt")])
    del ix
    gc.collect()
    assert _other_process_can_open(folder)  # no close(): the lock went with the object
    ix = MultiModalIndex(folder)
    assert len(ix) == 1
    ix.close()


def test_a_rerun_cell_shares_the_open_folder(tmp_path) -> None:
    folder = tmp_path / "ix"
    # a notebook cell run twice: the first object is still bound while the second is made
    ix = MultiModalIndex(folder, keyword_only=True)
    ix.add([TextChunk(id="a", text="a red circle", source="a.txt")])
    ix = MultiModalIndex(folder, keyword_only=True)
    ix.add([TextChunk(id="b", text="a blue bar", source="b.txt")])
    again = MultiModalIndex(os.path.relpath(folder))  # another spelling of the same folder
    assert len(again) == 2
    again.close()
    assert len(ix) == 2  # closing one sharer leaves the others open
    assert not _other_process_can_open(folder)
    del ix
    gc.collect()
    assert _other_process_can_open(folder)


def test_pipeline_and_vector_stores_rerun_twice_without_close(tmp_path, tiny_clip_dir, model_env) -> None:
    from mm_rag_plugin.integrations.langchain import OpenCLIPEmbeddings
    from mm_rag_plugin.integrations.langchain.vectorstores import MultiModalVectorStore as LangChainStore
    from mm_rag_plugin.integrations.llama_index import MultiModalVectorStore as LlamaIndexStore

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Zanzibar\n\nThe zanzibar report says errors fell by half.\n")
    for _ in range(2):
        rag = MultiModalRAG(tmp_path / "rag")
        rag.ingest(docs)
        ix = MultiModalIndex(tmp_path / "rag")
        lc = LangChainStore(OpenCLIPEmbeddings(model_name=model_env), path=str(tmp_path / "lc"))
        lc.add_texts(["zanzibar"], ids=["z"])
        li = LlamaIndexStore(path=str(tmp_path / "lc"))  # the LangChain store's folder, shared
        assert len(li.index) == 1
    assert len(rag.index) == len(ix) > 0
    del rag, ix, lc, li
    gc.collect()
    assert _other_process_can_open(tmp_path / "rag") and _other_process_can_open(tmp_path / "lc")


def test_another_process_is_named_as_another_process(tmp_path) -> None:
    folder = tmp_path / "ix"
    MultiModalIndex(folder, keyword_only=True).close()
    from mm_rag_plugin.retrievers._lock import FolderLock

    lock = FolderLock(folder)  # a lock this process holds outside any index object
    lock.acquire()
    try:
        with pytest.raises(StoreError, match=r"already open in this process: close\(\) it"):
            MultiModalIndex(folder)
    finally:
        lock.release()
    code = (
        "import sys; from mm_rag_plugin import MultiModalIndex\n"
        "try:\n    MultiModalIndex(sys.argv[1])\nexcept Exception as e:\n    print(e)\n"
    )
    with MultiModalIndex(folder):
        out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=_env()).stdout
    assert f"in use by pid {os.getpid()} (" in out and "(another process)" in out
