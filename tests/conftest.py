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


#: Where the xdist controller put the tiny model it trained before the workers started.
_TINY_CLIP_ENV = "MM_RAG_TEST_TINY_CLIP"
_TRAINED = pytest.StashKey[Path]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under pytest-xdist, the controller trains the tiny model once, before the workers start:
    outside every test, so no test's time limit covers it (on a busy machine it takes minutes),
    and the workers share it (they inherit the environment variable naming its folder)."""
    config = session.config
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return  # a worker, or no workers: the fixture trains it when a test first needs it
    if os.environ.get(_TINY_CLIP_ENV):
        return
    import tempfile

    from mm_rag_plugin.testing import make_tiny_clip

    folder = Path(tempfile.mkdtemp(prefix="mm-rag-tiny-clip-"))
    make_tiny_clip(folder)
    os.environ[_TINY_CLIP_ENV] = str(folder)
    config.stash[_TRAINED] = folder


def pytest_sessionfinish(session: pytest.Session) -> None:
    import shutil

    folder = session.config.stash.get(_TRAINED, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(_TINY_CLIP_ENV, None)


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny open_clip model trained for ~10 s on coloured shapes; load with ``local-dir:``
    (trained once by the xdist controller, see :func:`pytest_sessionstart`, else here)."""
    from mm_rag_plugin.testing import make_tiny_clip

    shared = os.environ.get(_TINY_CLIP_ENV)
    if shared and (Path(shared) / "open_clip_config.json").is_file():
        return Path(shared)
    return make_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


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
