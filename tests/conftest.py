"""Shared fixtures: a tiny trained open_clip model (built once per session) and the shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MM_RAG_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: public malformed and real test files (see its README)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA} (set MM_RAG_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A tiny open_clip model trained for ~10 s on coloured shapes; load with ``local-dir:``.

    Under pytest-xdist the workers share one: the first trains it under a file lock and the others
    wait for the lock (an event, not a time guess), so a busy machine trains once, not per worker."""
    import fcntl

    from mm_rag_plugin.testing import make_tiny_clip

    if worker_id == "master":
        return make_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's own
    folder = shared / "tiny_clip"
    with open(shared / "tiny_clip.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "done").is_file():
            make_tiny_clip(folder)
            (folder / "done").touch()
    return folder


@pytest.fixture(scope="session")
def embedder(tiny_clip_dir: Path):
    """An :class:`OpenCLIPEmbedder` on the tiny trained model (CPU)."""
    from mm_rag_plugin import OpenCLIPEmbedder

    return OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu", batch_size=8)


@pytest.fixture
def model_env(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``$MM_RAG_MODEL`` set to the tiny model, and no Gemini key (extractive answers)."""
    monkeypatch.setenv("MM_RAG_MODEL", f"local-dir:{tiny_clip_dir}")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    return f"local-dir:{tiny_clip_dir}"
