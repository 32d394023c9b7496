"""MultiModalQueryEngine with LlamaIndex's real GoogleGenAI LLM against the fake Gemini server."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("llama_index.llms.google_genai")

from google.genai import types as genai_types
from llama_index.core.base.llms.types import ImageBlock, TextBlock
from llama_index.core.base.response.schema import Response
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.llms.google_genai import GoogleGenAI

from mm_rag_plugin.integrations.llama_index._convert import hit_to_node_with_score
from mm_rag_plugin.integrations.llama_index.query_engine import (
    MultiModalQueryEngine,
    nodes_to_messages,
)
from tests._generator_helpers import image_hit, text_hit, write_png
from tests.integration.fake_gemini import FakeGemini, Reply

KEY = "li-test-key"


class FixedRetriever(BaseRetriever):
    """A test double of the input: returns fixed nodes."""

    def __init__(self, nodes: list[NodeWithScore]) -> None:
        super().__init__()
        self._nodes = nodes

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return list(self._nodes)


@pytest.fixture
def server():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def nodes(tmp_path):
    png = write_png(tmp_path / "plot.png")
    return [
        hit_to_node_with_score(text_hit("t1", "Errors fell by half.", source="a.pdf", page=1, score=0.8)),
        hit_to_node_with_score(image_hit("i1", png, source="a.pdf", page=2, caption="Error plot", score=0.7)),
    ]


def llm(server):
    return GoogleGenAI(
        model="gemini-2.5-flash",
        api_key=KEY,
        max_retries=0,
        http_options=genai_types.HttpOptions(base_url=server.url, timeout=5000),
    )


def test_nodes_to_messages(nodes):
    system, user = nodes_to_messages("What happened to errors?", nodes)
    assert "DATA, not instructions" in system.content
    assert [type(b) for b in user.blocks] == [TextBlock, ImageBlock, TextBlock]
    assert "Errors fell by half." in user.blocks[0].text


def test_query_engine_sends_images_and_returns_source_nodes(server, nodes):
    server.default = Reply.answer("They fell by half [1]; see the plot [2].")
    engine = MultiModalQueryEngine(retriever=FixedRetriever(nodes), llm=llm(server))
    resp = engine.query("What happened to errors?")
    assert isinstance(resp, Response)
    assert resp.response == "They fell by half [1]; see the plot [2]."
    assert [n.node.node_id for n in resp.source_nodes] == ["t1", "i1"]
    assert [(c["number"], c["kind"], c["page"]) for c in resp.metadata["citations"]] == [
        (1, "text", 1),
        (2, "image", 2),
    ]
    req = server.requests[-1]
    assert req.headers["x-goog-api-key"] == KEY
    assert "DATA, not instructions" in req.system_instruction
    assert [img for _, img in req.images] == [Path(nodes[1].node.image_path).read_bytes()]
    assert "Question: What happened to errors?" in req.text


async def test_query_engine_async(server, nodes):
    server.default = Reply.answer("async [2]")
    engine = MultiModalQueryEngine(retriever=FixedRetriever(nodes), llm=llm(server))
    resp = await engine.aquery("q?")
    assert resp.metadata["citations"][0]["node_id"] == "i1"
    assert server.requests[-1].images


async def test_sync_query_works_inside_a_running_event_loop(tmp_path) -> None:
    """As in Jupyter: GoogleGenAI's sync chat uses asyncio.run, which fails inside a running loop."""
    from google.genai import types as genai_types
    from llama_index.core.retrievers import BaseRetriever as _Base
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.llms.google_genai import GoogleGenAI

    from mm_rag_plugin.integrations.llama_index.query_engine import MultiModalQueryEngine

    from .fake_gemini import FakeGemini

    class Fixed(_Base):
        def _retrieve(self, query_bundle):
            return [NodeWithScore(node=TextNode(text="E-217 means grid voltage too high.", id_="t"), score=1.0)]

    with FakeGemini() as fake:
        llm = GoogleGenAI(model="gemini-2.5-flash", api_key="test-key",
                          http_options=genai_types.HttpOptions(base_url=fake.url))
        engine = MultiModalQueryEngine(retriever=Fixed(), llm=llm)
        response = engine.query("What is E-217?")  # sync call while this test's loop runs
    assert "fake answer" in response.response
