from __future__ import annotations

import logging

import pytest

from mm_rag_plugin.errors import ConfigurationError, InvalidInputError
from mm_rag_plugin.generators import (
    AnswerGenerator,
    ExtractiveGenerator,
    GeminiGenerator,
    answer,
    default_generator,
)
from tests._generator_helpers import image_hit, text_hit, write_png

LONG = (
    "The warranty covers parts for two years. Shipping is free in the EU. "
    "Batteries are covered for six months only. Returns need the original box. "
) * 3


def test_extractive_answer_quotes_best_passages_with_sources(tmp_path):
    png = write_png(tmp_path / "chart.png")
    hits = [
        text_hit("t1", LONG, source="manual.pdf", page=7),
        image_hit("i1", png, source="manual.pdf", page=8, caption="Battery warranty table"),
        text_hit("t2", "Unrelated", source="other.md", page=None),
        text_hit("t3", "Fourth", source="x.md"),
    ]
    gen = ExtractiveGenerator(max_passages=3, max_chars=120)
    ans = gen.generate("How long are batteries covered?", hits)
    assert ans.generated is False and ans.model is None
    assert ans.text.startswith("No answer generator was used (no Gemini API key is configured)")
    assert "[1] Passage from manual.pdf, page 7: ... Batteries are covered for six months only." in ans.text
    assert f"[2] Image from manual.pdf, page 8 ({png}): Battery warranty table" in ans.text  # issue 30: no "image from image"
    assert "[3] Passage from other.md: Unrelated" in ans.text and "Fourth" not in ans.text
    assert [c.number for c in ans.citations] == [1, 2, 3]
    assert [c.hit.id for c in ans.citations] == ["t1", "i1", "t2"]
    assert ans.sources == tuple(hits)


def test_extractive_without_hits_says_so():
    ans = ExtractiveGenerator().generate("q?", [])
    assert "Nothing relevant was retrieved" in ans.text and ans.citations == ()


def test_extractive_stream_and_async():
    hits = [text_hit("t", "Paris is the capital of France.")]
    gen = ExtractiveGenerator()
    stream = gen.stream("capital?", hits)
    with pytest.raises(RuntimeError, match="iterated"):
        _ = stream.answer
    assert "".join(stream) == stream.answer.text
    assert isinstance(gen, AnswerGenerator)


async def test_extractive_async():
    hits = [text_hit("t", "Paris is the capital of France.")]
    gen = ExtractiveGenerator()
    ans = await gen.agenerate("capital?", hits)
    stream = gen.astream("capital?", hits)
    assert "".join([d async for d in stream]) == ans.text == stream.answer.text


def test_extractive_rejects_bad_input():
    with pytest.raises(InvalidInputError):
        ExtractiveGenerator().generate("", [])
    with pytest.raises(InvalidInputError):
        ExtractiveGenerator(max_passages=0)


@pytest.fixture
def no_keys(monkeypatch):
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)


def test_default_generator_without_key_is_extractive(no_keys, caplog):
    with caplog.at_level(logging.WARNING):
        gen = default_generator()
    assert isinstance(gen, ExtractiveGenerator)
    assert "answering extractively" in caplog.text


def test_default_generator_with_env_key_is_gemini(no_keys, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "env-secret-123")
    gen = default_generator()
    assert isinstance(gen, GeminiGenerator)
    assert "env-secret-123" not in repr(gen)


def test_gemini_without_key_explains(no_keys):
    with pytest.raises(ConfigurationError, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        GeminiGenerator()


def test_gemini_bad_config(no_keys):
    with pytest.raises(ConfigurationError, match="model"):
        GeminiGenerator("", api_key="k")
    with pytest.raises(ConfigurationError, match="timeout"):
        GeminiGenerator(api_key="k", timeout=0)
    with pytest.raises(ConfigurationError, match="project"):
        GeminiGenerator(vertexai=True)
    with pytest.raises(ConfigurationError, match="string"):
        GeminiGenerator(api_key=12345)


def test_gemini_repr_hides_key(no_keys):
    gen = GeminiGenerator("gemini-2.5-pro", api_key="AIza-very-secret")
    assert "AIza-very-secret" not in repr(gen) and "api_key=<set>" in repr(gen)
    assert "AIza-very-secret" not in str(vars(gen))
    assert "gemini-2.5-pro" in repr(gen)


class _FixedRetriever:
    def __init__(self, hits):
        self.hits = hits
        self.calls = []

    def retrieve(self, query=None, *, image=None, k=None, filters=None):
        self.calls.append((query, image, k, filters))
        return self.hits


def test_answer_helper_uses_retriever_and_fallback(no_keys):
    retriever = _FixedRetriever([text_hit("t", "The answer is 42.")])
    ans = answer("What is the answer?", retriever, k=3, filters={"kind": "text"})
    assert retriever.calls == [("What is the answer?", None, 3, {"kind": "text"})]
    assert ans.generated is False and "The answer is 42." in ans.text


def test_answer_helper_rejects_non_retriever():
    with pytest.raises(InvalidInputError, match="retrieve"):
        answer("q?", object())
    with pytest.raises(InvalidInputError, match="generator"):
        answer("q?", _FixedRetriever([]), generator=object())
