"""Fixtures of the reliability suite."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No API keys and no model in the environment: keyword-only runs, nothing to leak by accident."""
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "QDRANT_API_KEY", "MM_RAG_MODEL"):
        monkeypatch.delenv(var, raising=False)
