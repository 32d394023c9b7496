"""LlamaIndex agent tools (FunctionTool, QueryEngineTool), called the way an agent calls them:
``tool(**kwargs)``, ``tool.call``, ``await tool.acall``, LlamaIndex's own ``call_tool`` helpers,
and the OpenAI tool schema; bad arguments come back as ``ToolOutput(is_error=True)``."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from llama_index.core.base.response.schema import Response
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.tools import FunctionTool, QueryEngineTool, ToolOutput
from llama_index.core.tools.calling import acall_tool, call_tool

from mm_rag_plugin.errors import StoreError
from mm_rag_plugin.generators import ExtractiveGenerator, GeminiGenerator
from mm_rag_plugin.integrations.llama_index._convert import hit_to_node_with_score
from mm_rag_plugin.integrations.llama_index.tools import (
    create_multimodal_answer_tool,
    create_multimodal_query_engine_tool,
    create_multimodal_search_tool,
)
from tests._generator_helpers import image_hit, text_hit, write_png
from tests.integration.fake_gemini import FakeGemini, Reply


class FixedRetriever:
    """An input double implementing types.Retriever: fixed hits, filtered like the real one."""

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
    png = write_png(tmp_path / "plot.png")
    return [
        text_hit("t1", "Errors fell by half.", source="a.pdf", page=1, score=0.03),
        image_hit("i1", png, source="a.pdf", page=2, caption="Error plot", score=0.02),
    ]


def test_search_tool_call_returns_text_and_nodes(hits):
    retriever = FixedRetriever(hits)
    tool = create_multimodal_search_tool(retriever)
    assert isinstance(tool, FunctionTool)
    for out in (tool(query="error plot", k=2), tool.call(query="error plot", k=2), tool("error plot", 2)):
        assert isinstance(out, ToolOutput) and not out.is_error
        assert out.tool_name == "multimodal_search"
        lines = out.content.splitlines()
        assert lines[1] == "[1] text | source: a.pdf | page: 1 | score: 0.03"
        assert (
            lines[3]
            == f"[2] image | source: a.pdf | page: 2 | image_path: {hits[1].chunk.image_path} | score: 0.02"
        )
        assert all(isinstance(n, NodeWithScore) for n in out.raw_output)
        assert [n.node.node_id for n in out.raw_output] == ["t1", "i1"]
        assert out.raw_output[1].node.image_path == hits[1].chunk.image_path
    assert retriever.calls == [{"query": "error plot", "k": 2, "filters": None}] * 3


def test_search_tool_filters(hits):
    retriever = FixedRetriever(hits)
    out = create_multimodal_search_tool(retriever).call(query="plot", kind="Image", source="a.pdf")
    assert retriever.calls == [{"query": "plot", "k": 5, "filters": {"kind": "image", "source": "a.pdf"}}]
    assert [n.node.node_id for n in out.raw_output] == ["i1"]


def test_metadata_and_openai_schema(hits):
    tool = create_multimodal_search_tool(FixedRetriever(hits), name="docs_search")
    assert tool.metadata.name == "docs_search"
    fn = tool.metadata.to_openai_tool()["function"]
    assert fn["name"] == "docs_search" and "images" in fn["description"]
    params = fn["parameters"]
    assert params["required"] == ["query"]
    assert params["properties"]["k"]["minimum"] == 1 and params["properties"]["k"]["maximum"] == 50
    assert params["properties"]["kind"]["anyOf"][0]["enum"] == ["text", "image"]
    assert set(params["properties"]) == {"query", "k", "kind", "source"}
    answer = create_multimodal_answer_tool(FixedRetriever(hits), ExtractiveGenerator())
    assert answer.metadata.to_openai_tool()["function"]["parameters"]["required"] == ["question"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"query": "x", "k": 0}, "argument 'k': must be a whole number from 1 to 50, got 0"),
        ({"query": "x", "k": "abc"}, "argument 'k': must be a whole number from 1 to 50, got 'abc'"),
        ({"query": "x", "kind": "video"}, "argument 'kind': must be 'text' or 'image'"),
        ({"query": "  "}, "argument 'query': must not be empty"),
        ({"k": 3}, "argument 'query': is required"),
        ({"query": "x", "top_k": 3}, "unknown argument(s) 'top_k'; accepted: query, k, kind, source"),
    ],
)
async def test_bad_arguments_return_error_outputs(hits, args, fragment):
    retriever = FixedRetriever(hits)
    tool = create_multimodal_search_tool(retriever)
    for out in (tool(**args), await tool.acall(**args), call_tool(tool, args), await acall_tool(tool, args)):
        assert isinstance(out, ToolOutput) and out.is_error
        assert out.content.startswith("Error: invalid arguments for multimodal_search: ")
        assert fragment in out.content
        assert out.exception is not None
    assert retriever.calls == []


def test_library_errors_return_error_outputs(hits):
    out = create_multimodal_search_tool(FixedRetriever(hits, error=StoreError("index is locked")))(query="x")
    assert out.is_error and out.content == "Error: multimodal_search failed: index is locked"
    assert isinstance(out.exception, StoreError)


async def test_async_call_does_not_block_the_event_loop(hits):
    retriever = FixedRetriever(hits, delay=0.3)
    tool = create_multimodal_search_tool(retriever)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    out = await acall_tool(tool, {"query": "errors", "k": 1})
    task.cancel()
    assert not out.is_error and [n.node.node_id for n in out.raw_output] == ["t1"]
    assert ticks >= 10
    assert retriever.threads[0] != threading.get_ident()


def test_plain_functions_return_the_text(hits):
    tool = create_multimodal_search_tool(FixedRetriever(hits))
    assert tool.fn(query="errors", k=1).startswith("1 result(s) for 'errors'")
    assert asyncio.run(tool.async_fn(query="errors", k=1)) == tool.fn(query="errors", k=1)


def test_answer_tool_without_api_key_answers_extractively(hits, monkeypatch):
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(var, raising=False)
    out = create_multimodal_answer_tool(FixedRetriever(hits))(question="What happened to errors?")
    assert not out.is_error
    assert out.content.startswith("No answer generator was used (no Gemini API key is configured).")
    assert out.content.endswith(
        f"[2] image | source: a.pdf | page: 2 | image_path: {hits[1].chunk.image_path}"
    )
    assert out.raw_output["generated"] is False
    assert [c["id"] for c in out.raw_output["citations"]] == ["t1", "i1"]
    assert [n.node.node_id for n in out.raw_output["source_nodes"]] == ["t1", "i1"]


@pytest.fixture
def server():
    with FakeGemini() as fake:
        yield fake


async def test_answer_tool_with_gemini_on_the_fake_server(hits, server):
    server.default = Reply.answer("They fell by half [1].")
    gen = GeminiGenerator(
        api_key="AIzaFAKE-li-tools", base_url=server.url, timeout=5, retry_initial_delay=0.01
    )
    tool = create_multimodal_answer_tool(FixedRetriever(hits), gen)
    for out in (
        tool.call(question="What happened to errors?"),
        await tool.acall(question="What happened to errors?"),
    ):
        assert not out.is_error
        assert out.content == "They fell by half [1].\n\nSources:\n[1] text | source: a.pdf | page: 1"
        assert out.raw_output["generated"] is True
        assert out.raw_output["citations"][0]["id"] == "t1"
    assert len(server.requests) == 2
    assert "Question: What happened to errors?" in server.requests[0].text
    assert [img for _, img in server.requests[0].images] == [Path(hits[1].chunk.image_path).read_bytes()]

    server.default = Reply.error(500)
    gen_no_retry = GeminiGenerator(api_key="AIzaFAKE-li-tools", base_url=server.url, timeout=5, max_retries=0)
    failed = create_multimodal_answer_tool(FixedRetriever(hits), gen_no_retry)(question="again?")
    assert failed.is_error and failed.content.startswith("Error: multimodal_answer failed: Gemini request")
    assert "AIzaFAKE" not in failed.content


class NodeRetriever(BaseRetriever):
    """A LlamaIndex retriever double: fixed nodes."""

    def __init__(self, nodes: list[NodeWithScore]) -> None:
        super().__init__()
        self._nodes = nodes

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return list(self._nodes)


def _query_tool(hits, server):
    pytest.importorskip("llama_index.llms.google_genai")
    from google.genai import types as genai_types
    from llama_index.llms.google_genai import GoogleGenAI

    from mm_rag_plugin.integrations.llama_index.query_engine import MultiModalQueryEngine

    llm = GoogleGenAI(
        model="gemini-2.5-flash",
        api_key="li-key",
        max_retries=0,
        http_options=genai_types.HttpOptions(base_url=server.url, timeout=5000),
    )
    engine = MultiModalQueryEngine(
        retriever=NodeRetriever([hit_to_node_with_score(h) for h in hits]), llm=llm
    )
    server.default = Reply.answer("See the plot [2].")
    return create_multimodal_query_engine_tool(engine)


def _check_query_output(out):
    assert not out.is_error and out.content == "See the plot [2]."
    assert isinstance(out.raw_output, Response)
    assert out.raw_output.metadata["citations"][0]["node_id"] == "i1"


def test_query_engine_tool_on_the_fake_server(hits, server):
    # sync: GoogleGenAI's sync chat runs its own event loop, so no loop may be running here
    tool = _query_tool(hits, server)
    assert isinstance(tool, QueryEngineTool)
    fn = tool.metadata.to_openai_tool()["function"]
    assert fn["name"] == "multimodal_query" and fn["parameters"]["required"] == ["input"]
    _check_query_output(tool(input="What does the plot show?"))
    _check_query_output(call_tool(tool, {"input": "What does the plot show?"}))
    assert len(server.requests) == 2
    empty = tool(input="   ")
    assert empty.is_error and "argument 'input': must not be empty" in empty.content
    assert len(server.requests) == 2  # nothing was sent


async def test_query_engine_tool_async(hits, server):
    tool = _query_tool(hits, server)
    _check_query_output(await acall_tool(tool, {"input": "What does the plot show?"}))
    assert "Question: What does the plot show?" in server.requests[-1].text
    empty = await tool.acall(input="")
    assert empty.is_error and "argument 'input'" in empty.content


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
                page=2,
                content_hash=content_hash(path.read_bytes()),
                width=64,
                height=64,
            )
        )
    chunks.append(TextChunk(id="t1", text="A recipe for sourdough bread.", source="notes.txt"))
    with retrievers.MultiModalIndex(
        tmp_path / "index", embedder=embedder, show_progress=False
    ) as index:
        assert index.add(chunks).ok
        tool = create_multimodal_search_tool(retrievers.FusedRetriever(index))
        out = tool(query="a blue square", kind="image", k=1)
        assert not out.is_error
        assert [n.node.node_id for n in out.raw_output] == ["blue_square"]
        assert out.content.splitlines()[1].startswith(
            f"[1] image | source: shapes.pdf | page: 2 | image_path: {tmp_path / 'blue_square.png'} | score: "
        )
        assert [n.node.node_id for n in tool(query="sourdough bread", source="notes.txt").raw_output] == [
            "t1"
        ]


# -- streaming query engine (streamGenerateContent on the fake server) -------------------------
def _streaming_engine(hits, server):
    pytest.importorskip("llama_index.llms.google_genai")
    from google.genai import types as genai_types
    from llama_index.llms.google_genai import GoogleGenAI

    from mm_rag_plugin.integrations.llama_index.query_engine import MultiModalQueryEngine

    llm = GoogleGenAI(
        model="gemini-2.5-flash",
        api_key="li-key",
        max_retries=0,
        http_options=genai_types.HttpOptions(base_url=server.url, timeout=5000),
    )
    server.default = Reply.stream("Errors fell ", "by half [1], ", "see the plot [2].")
    nodes = [hit_to_node_with_score(h) for h in hits]
    return MultiModalQueryEngine(retriever=NodeRetriever(nodes), llm=llm, streaming=True)


def test_query_engine_streams_with_citations_at_the_end(hits, server):
    from llama_index.core.base.response.schema import StreamingResponse

    resp = _streaming_engine(hits, server).query("What happened to errors?")
    assert isinstance(resp, StreamingResponse)
    assert resp.metadata == {"citations": []}  # nothing read yet
    pieces = list(resp.response_gen)
    assert pieces == ["Errors fell ", "by half [1], ", "see the plot [2]."]
    assert [(c["number"], c["node_id"]) for c in resp.metadata["citations"]] == [(1, "t1"), (2, "i1")]
    assert [n.node.node_id for n in resp.source_nodes] == ["t1", "i1"]
    (req,) = server.requests
    assert req.method_name == "streamGenerateContent"
    assert "Question: What happened to errors?" in req.text
    assert [img for _, img in req.images] == [Path(hits[1].chunk.image_path).read_bytes()]


async def test_query_engine_streams_async(hits, server):
    from llama_index.core.base.response.schema import AsyncStreamingResponse

    resp = await _streaming_engine(hits, server).aquery("What happened to errors?")
    assert isinstance(resp, AsyncStreamingResponse)
    pieces = [piece async for piece in resp.async_response_gen()]
    assert "".join(pieces) == "Errors fell by half [1], see the plot [2]."
    assert len(pieces) == 3
    assert [c["node_id"] for c in resp.metadata["citations"]] == ["t1", "i1"]
    assert server.requests[-1].method_name == "streamGenerateContent"


# -- plain strings, source names, Settings.llm, old names ---------------------------------------
async def test_a_plain_string_is_the_query_or_the_question(hits):
    retriever = FixedRetriever(hits)
    search = create_multimodal_search_tool(retriever)
    for out in (search("error plot"), search.call("error plot"), await search.acall("error plot")):
        assert not out.is_error and out.content.startswith("2 result(s) for 'error plot'")
    assert [c["query"] for c in retriever.calls] == ["error plot"] * 3
    answer = create_multimodal_answer_tool(retriever, ExtractiveGenerator())
    assert not answer("What fell?").is_error and retriever.calls[-1]["query"] == "What fell?"


def test_source_file_name_filters_a_real_index(tmp_path, embedder):
    from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
    from mm_rag_plugin.types import TextChunk

    a, b = tmp_path / "in" / "a.md", tmp_path / "in" / "sub" / "b.md"
    chunks = [
        TextChunk(id="a1", text="A recipe for sourdough bread.", source=str(a)),
        TextChunk(id="b1", text="Sourdough bread needs a starter.", source=str(b)),
    ]
    with MultiModalIndex(tmp_path / "index", embedder=embedder, show_progress=False) as index:
        assert index.add(chunks).ok
        tool = create_multimodal_search_tool(FusedRetriever(index, near_duplicate_threshold=None))
        assert {n.node.node_id for n in tool(query="sourdough bread").raw_output} == {"a1", "b1"}
        for name in ("b.md", "sub/b.md", str(b)):
            out = tool(query="sourdough bread", source=name)
            assert [n.node.node_id for n in out.raw_output] == ["b1"], name
        bad = tool(query="sourdough bread", source="c.md")
        assert bad.is_error and "Indexed files: a.md, b.md" in bad.content


def test_query_engine_uses_settings_llm_when_none_is_given(hits, monkeypatch):
    from llama_index.core import Settings
    from llama_index.core.llms import MockLLM

    from mm_rag_plugin.errors import ConfigurationError
    from mm_rag_plugin.integrations.llama_index.query_engine import MultiModalQueryEngine

    retriever = NodeRetriever([hit_to_node_with_score(h) for h in hits])
    monkeypatch.setenv("GOOGLE_API_KEY", "a-gemini-key")  # Settings.llm still comes first
    monkeypatch.setattr(Settings, "_llm", None)
    chosen = MockLLM(max_tokens=8)
    Settings.llm = chosen
    engine = MultiModalQueryEngine(retriever=retriever)
    assert engine.llm is chosen
    assert isinstance(engine.query("What fell?"), Response)
    own = MockLLM()
    assert MultiModalQueryEngine(retriever=retriever, llm=own).llm is own  # llm= wins
    monkeypatch.setattr(Settings, "_llm", None)
    monkeypatch.delenv("GOOGLE_API_KEY")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=r"set llama_index\.core\.Settings\.llm"):
        MultiModalQueryEngine(retriever=retriever)
    assert Settings._llm is None  # LlamaIndex's lazy OpenAI default was not resolved


def test_old_query_engine_name_is_gone():
    """The deprecated ``MultimodalQueryEngine`` spelling was removed."""
    import mm_rag_plugin.integrations.llama_index as package
    from mm_rag_plugin.integrations.llama_index import query_engine

    for where in (query_engine, package):
        with pytest.raises(AttributeError):
            where.MultimodalQueryEngine  # noqa: B018
    assert not [name for name in dir(package) if name.startswith("Multimodal")]
