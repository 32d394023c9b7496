"""LangChain agent tools, called the way an agent calls them (tool-call dicts -> ToolMessage),
with a fixed-hit retriever, the extractive fallback, GeminiGenerator on the fake Gemini server,
and a real index built with the tiny CLIP model."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_tests.unit_tests import ToolsUnitTests

from mm_rag_plugin.errors import StoreError
from mm_rag_plugin.generators import GeminiGenerator
from mm_rag_plugin.integrations.langchain.tools import (
    MultiModalAnswerTool,
    MultiModalSearchTool,
    create_multimodal_answer_tool,
    create_multimodal_search_tool,
)
from tests._generator_helpers import image_hit, text_hit, write_png
from tests.integration.fake_gemini import FakeGemini, Reply


class FixedRetriever:
    """An input double: fixed hits, filtered by kind/source like the real retriever; records calls."""

    def __init__(self, hits, delay: float = 0.0, error: Exception | None = None):
        self.hits, self.delay, self.error = hits, delay, error
        self.calls: list[dict] = []
        self.threads: list[int] = []

    def retrieve(self, query=None, *, image=None, k=None, filters=None):
        self.calls.append({"query": query, "k": k, "filters": filters})
        self.threads.append(threading.get_ident())
        if self.delay:
            time.sleep(self.delay)
        if self.error:
            raise self.error
        hits = [h for h in self.hits if all(getattr(h.chunk, f) == v for f, v in (filters or {}).items())]
        return hits[:k]


@pytest.fixture
def hits(tmp_path):
    png = write_png(tmp_path / "chart.png")
    return [
        text_hit("t1", "Sales rose in March.", source="q1.pdf", page=3, score=0.03),
        image_hit("i1", png, source="q1.pdf", page=4, caption="Figure 1: monthly sales", score=0.02),
    ]


def call(tool, args, id="call_1"):
    return tool.invoke({"name": tool.name, "args": args, "id": id, "type": "tool_call"})


def test_search_tool_call_returns_content_and_documents(hits):
    retriever = FixedRetriever(hits)
    msg = call(create_multimodal_search_tool(retriever), {"query": "monthly sales", "k": 2})
    assert isinstance(msg, ToolMessage)
    assert msg.tool_call_id == "call_1" and msg.name == "multimodal_search" and msg.status == "success"
    lines = msg.content.splitlines()
    assert lines[0].startswith("2 result(s) for 'monthly sales'")
    assert lines[1] == "[1] text | source: q1.pdf | page: 3 | score: 0.03"
    assert (
        lines[3]
        == f"[2] image | source: q1.pdf | page: 4 | image_path: {hits[1].chunk.image_path} | score: 0.02"
    )
    docs = msg.artifact
    assert all(isinstance(d, Document) for d in docs)
    assert [d.id for d in docs] == ["t1", "i1"]
    assert docs[1].metadata["kind"] == "image" and docs[1].metadata["image_path"] == hits[1].chunk.image_path
    assert docs[0].metadata["score"] == 0.03
    assert retriever.calls == [{"query": "monthly sales", "k": 2, "filters": None}]


def test_search_tool_passes_filters(hits):
    retriever = FixedRetriever(hits)
    msg = call(MultiModalSearchTool(retriever), {"query": "chart", "kind": "image", "source": "q1.pdf"})
    assert retriever.calls[0]["filters"] == {"kind": "image", "source": "q1.pdf"}
    assert retriever.calls[0]["k"] == 5  # the default
    assert [d.id for d in msg.artifact] == ["i1"]


def test_tool_call_schema_is_what_an_agent_needs(hits):
    tool = MultiModalSearchTool(FixedRetriever(hits))
    schema = tool.tool_call_schema.model_json_schema()
    assert schema["required"] == ["query"]
    assert schema["properties"]["k"]["minimum"] == 1 and schema["properties"]["k"]["maximum"] == 50
    assert schema["properties"]["k"]["default"] == 5
    assert schema["properties"]["kind"]["anyOf"][0]["enum"] == ["text", "image"]
    fn = convert_to_openai_tool(tool)["function"]
    assert fn["name"] == "multimodal_search" and "images" in fn["description"]
    assert set(fn["parameters"]["properties"]) == {"query", "k", "kind", "source"}
    answer = convert_to_openai_tool(MultiModalAnswerTool(FixedRetriever(hits), generator=_extractive()))
    assert answer["function"]["name"] == "multimodal_answer"
    assert answer["function"]["parameters"]["required"] == ["question"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"query": "x", "k": 0}, "argument 'k': must be a whole number from 1 to 50, got 0"),
        ({"query": "x", "k": "abc"}, "argument 'k': must be a whole number from 1 to 50, got 'abc'"),
        ({"query": "x", "kind": "video"}, "argument 'kind': must be 'text' or 'image'"),
        ({"query": ""}, "argument 'query': must not be empty"),
        ({"k": 2}, "argument 'query': is required"),
        ({"query": "x", "top_k": 2}, "unknown argument(s) 'top_k'; accepted: query, k, kind, source"),
    ],
)
async def test_bad_arguments_come_back_as_error_messages(hits, args, fragment):
    retriever = FixedRetriever(hits)
    tool = MultiModalSearchTool(retriever)
    for msg in (
        call(tool, args),
        await tool.ainvoke({"name": tool.name, "args": args, "id": "c2", "type": "tool_call"}),
    ):
        assert isinstance(msg, ToolMessage) and msg.status == "error"
        assert msg.content.startswith("Error: invalid arguments for multimodal_search: ")
        assert fragment in msg.content
    assert retriever.calls == []  # rejected before searching


def test_library_errors_come_back_as_error_messages(hits):
    tool = MultiModalSearchTool(FixedRetriever(hits, error=StoreError("the index folder is locked")))
    msg = call(tool, {"query": "sales"})
    assert msg.status == "error"
    assert msg.content == "Error: multimodal_search failed: the index folder is locked"


def test_programming_errors_are_not_hidden(hits):
    tool = MultiModalSearchTool(FixedRetriever(hits, error=KeyError("bug")))
    with pytest.raises(KeyError):
        call(tool, {"query": "sales"})


async def test_ainvoke_does_not_block_the_event_loop(hits):
    retriever = FixedRetriever(hits, delay=0.3)
    tool = MultiModalSearchTool(retriever)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    msg = await tool.ainvoke({"name": tool.name, "args": {"query": "sales"}, "id": "c1", "type": "tool_call"})
    task.cancel()
    assert msg.status == "success" and len(msg.artifact) == 2
    assert ticks >= 10  # the loop kept running while the retriever slept in its thread
    assert retriever.threads[0] != threading.get_ident()


def test_plain_invoke_returns_the_text(hits):
    # without a tool call id LangChain returns the content only (the artifact is dropped)
    out = MultiModalSearchTool(FixedRetriever(hits)).invoke({"query": "sales", "k": 1})
    assert out.startswith("1 result(s) for 'sales'")


async def test_a_plain_string_input_is_the_query_or_the_question(hits):
    retriever = FixedRetriever(hits)
    search = MultiModalSearchTool(retriever)
    assert search.invoke("monthly sales").startswith("2 result(s) for 'monthly sales'")
    assert (await search.ainvoke("monthly sales")).startswith("2 result(s) for 'monthly sales'")
    assert search.run("monthly sales").startswith("2 result(s)")
    assert [c["query"] for c in retriever.calls] == ["monthly sales"] * 3
    answer = MultiModalAnswerTool(retriever, generator=_extractive())
    assert "Sales rose in March." in answer.invoke("How did sales go?")
    assert retriever.calls[-1]["query"] == "How did sales go?"
    assert search.invoke("  ").startswith("Error: invalid arguments for multimodal_search: argument 'query'")


def test_old_class_names_are_gone(hits):
    """The deprecated ``Multimodal*`` spellings were removed (0.1.0 keeps one name per thing)."""
    import mm_rag_plugin.integrations.langchain as package
    from mm_rag_plugin.integrations.langchain import tools

    for old in ("MultimodalSearchTool", "MultimodalAnswerTool", "MultimodalRetriever"):
        with pytest.raises(AttributeError):
            getattr(tools, old)
        with pytest.raises(AttributeError):
            getattr(package, old)
    assert not [name for name in dir(package) if name.startswith("Multimodal")]


def _extractive():
    from mm_rag_plugin.generators import ExtractiveGenerator

    return ExtractiveGenerator()


def test_answer_tool_without_api_key_answers_extractively(hits, monkeypatch):
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(var, raising=False)
    tool = create_multimodal_answer_tool(FixedRetriever(hits))
    msg = call(tool, {"question": "How did sales develop?", "k": 2}, id="call_9")
    assert msg.status == "success" and msg.tool_call_id == "call_9"
    assert msg.content.startswith("No answer generator was used (no Gemini API key is configured).")
    assert (
        "Sources:\n[1] text | source: q1.pdf | page: 3\n[2] image | source: q1.pdf | page: 4" in msg.content
    )
    art = msg.artifact
    assert art["generated"] is False and art["model"] is None
    assert [c["id"] for c in art["citations"]] == ["t1", "i1"]
    assert [d.id for d in art["documents"]] == ["t1", "i1"]


@pytest.fixture
def server():
    with FakeGemini() as fake:
        yield fake


def gemini(server, **kw):
    return GeminiGenerator(
        api_key="AIzaFAKE-tools-key", base_url=server.url, timeout=5, retry_initial_delay=0.01, **kw
    )


async def test_answer_tool_with_gemini_on_the_fake_server(hits, server):
    server.default = Reply.answer("Sales rose in March [1]; the chart shows it [2].")
    tool = MultiModalAnswerTool(FixedRetriever(hits), generator=gemini(server))
    for msg in (
        call(tool, {"question": "How did sales develop?", "kind": "", "k": 2}),
        await tool.ainvoke(
            {
                "name": tool.name,
                "args": {"question": "How did sales develop?"},
                "id": "a",
                "type": "tool_call",
            }
        ),
    ):
        assert msg.status == "success"
        assert msg.content.splitlines() == [
            "Sales rose in March [1]; the chart shows it [2].",
            "",
            "Sources:",
            "[1] text | source: q1.pdf | page: 3",
            f"[2] image | source: q1.pdf | page: 4 | image_path: {hits[1].chunk.image_path}",
        ]
        assert msg.artifact["generated"] is True and msg.artifact["model"] == "gemini-2.5-flash"
        assert [c["number"] for c in msg.artifact["citations"]] == [1, 2]
    assert len(server.requests) == 2
    req = server.requests[0]
    assert "Question: How did sales develop?" in req.text
    assert req.images == [("image/png", Path(hits[1].chunk.image_path).read_bytes())]


def test_answer_tool_reports_a_failed_generation(hits, server):
    server.default = Reply.error(500, "backend exploded")
    tool = MultiModalAnswerTool(FixedRetriever(hits), generator=gemini(server, max_retries=1))
    msg = call(tool, {"question": "How did sales develop?"})
    assert msg.status == "error"
    assert msg.content.startswith(
        "Error: multimodal_answer failed: Gemini request to 'gemini-2.5-flash' failed after 2 attempt(s)"
    )
    assert "AIzaFAKE" not in msg.content
    assert len(server.requests) == 2


def test_search_tool_on_a_real_index(tmp_path, embedder):
    retrievers = pytest.importorskip("mm_rag_plugin.retrievers")
    from mm_rag_plugin.ids import content_hash
    from mm_rag_plugin.testing import draw_shape
    from mm_rag_plugin.types import ImageChunk, TextChunk

    chunks = []
    for color, kind in [("red", "circle"), ("blue", "square"), ("green", "triangle")]:
        path = tmp_path / f"{color}_{kind}.png"
        draw_shape(color, kind, size=64).save(path)
        chunks.append(
            ImageChunk(
                id=f"{color}_{kind}",
                source="shapes.pdf",
                image_path=str(path),
                page=1,
                content_hash=content_hash(path.read_bytes()),
                width=64,
                height=64,
            )
        )
    chunks.append(TextChunk(id="t1", text="Notes about the weather in spring.", source="notes.txt"))
    with retrievers.MultiModalIndex(
        tmp_path / "index", embedder=embedder, show_progress=False
    ) as index:
        assert index.add(chunks).ok
        tool = create_multimodal_search_tool(retrievers.FusedRetriever(index))
        msg = call(tool, {"query": "a red circle", "kind": "image", "k": 2})
        assert msg.status == "success"
        assert msg.artifact[0].id == "red_circle" and len(msg.artifact) == 2
        assert all(d.metadata["kind"] == "image" for d in msg.artifact)
        assert msg.content.splitlines()[1].startswith(
            f"[1] image | source: shapes.pdf | page: 1 | image_path: {tmp_path / 'red_circle.png'} | score: "
        )
        text_only = call(tool, {"query": "weather in spring", "kind": "text"})
        assert [d.id for d in text_only.artifact] == ["t1"]


def test_source_as_shown_in_results_filters_a_real_index(tmp_path, embedder):
    """Stored sources are absolute paths; the agent may give the file name or the path shown."""
    from mm_rag_plugin.ids import content_hash
    from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
    from mm_rag_plugin.testing import draw_shape
    from mm_rag_plugin.types import ImageChunk, TextChunk

    report, other = tmp_path / "docs" / "report.pdf", tmp_path / "docs" / "old" / "other.pdf"
    chunks = [
        TextChunk(id="r1", text="a red circle in the report", source=str(report), page=1),
        TextChunk(id="o1", text="a red circle elsewhere", source=str(other), page=1),
    ]
    for color, kind, source in (("red", "circle", report), ("red", "square", other)):
        path = tmp_path / f"{color}_{kind}.png"
        draw_shape(color, kind, size=64).save(path)
        chunks.append(ImageChunk(id=f"{color}_{kind}", source=str(source), image_path=str(path), page=2,
                                 content_hash=content_hash(path.read_bytes()), width=64, height=64))
    with MultiModalIndex(tmp_path / "index", embedder=embedder, show_progress=False) as index:
        assert index.add(chunks).ok
        retriever = FusedRetriever(index, near_duplicate_threshold=None)
        search = create_multimodal_search_tool(retriever)
        everything = call(search, {"query": "a red circle", "k": 10})
        assert {d.id for d in everything.artifact} == {"r1", "o1", "red_circle", "red_square"}
        for name in ("report.pdf", str(report), "docs/report.pdf"):
            msg = call(search, {"query": "a red circle", "k": 10, "source": name})
            assert msg.status == "success" and {d.id for d in msg.artifact} == {"r1", "red_circle"}, name
            assert f"source: {report}" in msg.content
        images = call(search, {"query": "a red circle", "source": "old/other.pdf", "kind": "image"})
        assert [d.id for d in images.artifact] == ["red_square"]
        missing = call(search, {"query": "a red circle", "source": "nope.pdf"})
        assert missing.status == "error"
        assert "no indexed document matches 'nope.pdf'" in missing.content
        assert "Indexed files: other.pdf, report.pdf" in missing.content
        answer = create_multimodal_answer_tool(retriever, _extractive())
        cited = call(answer, {"question": "what is red?", "source": "other.pdf", "k": 10})
        assert {d.id for d in cited.artifact["documents"]} == {"o1", "red_square"}


class TestSearchToolStandard(ToolsUnitTests):
    """LangChain's standard tool unit tests."""

    @property
    def tool_constructor(self):
        return MultiModalSearchTool

    @property
    def tool_constructor_params(self) -> dict:
        return {"retriever": FixedRetriever([text_hit("t1", "Sales rose in March.")])}

    @property
    def tool_invoke_params_example(self) -> dict:
        return {"query": "sales in March", "k": 3, "kind": "text", "source": "report.pdf"}


def test_tools_take_the_stores_own_retrievers(tmp_path, embedder) -> None:
    from langchain_core.retrievers import BaseRetriever

    from mm_rag_plugin.errors import ConfigurationError
    from mm_rag_plugin.integrations.langchain import (
        MultiModalRetriever,
        MultiModalVectorStore,
        OpenCLIPEmbeddings,
    )
    from mm_rag_plugin.retrievers import FusedRetriever

    store = MultiModalVectorStore(OpenCLIPEmbeddings(embedder=embedder), path=str(tmp_path / "ix"))
    try:
        store.add_texts(["Fault E-217: the inverter lost grid voltage.", "Monthly solar output chart."],
                        [{"source": "faults.md"}, {"source": "solar.md"}], ids=["a", "b"])
        for retriever in (store.as_retriever(), MultiModalRetriever(retriever=FusedRetriever(store.index))):
            msg = call(create_multimodal_search_tool(retriever), {"query": "fault E-217", "k": 1})
            assert msg.status != "error" and "faults.md" in msg.content and "solar.md" not in msg.content
            assert [d.page_content for d in msg.artifact] == ["Fault E-217: the inverter lost grid voltage."]
        answer = call(create_multimodal_answer_tool(store.as_retriever(), _extractive()), {"question": "What is E-217?"})
        assert answer.status != "error" and "faults.md" in answer.content
        with pytest.raises(ConfigurationError, match=r"as_retriever\(\) without search_type"):
            create_multimodal_search_tool(store.as_retriever(search_type="mmr"))

        class Other(BaseRetriever):
            def _get_relevant_documents(self, query, *, run_manager):
                return []

        with pytest.raises(ConfigurationError, match=r"pass store\.as_retriever\(\), MultiModalRetriever"):
            create_multimodal_search_tool(Other())
    finally:
        store.close()
